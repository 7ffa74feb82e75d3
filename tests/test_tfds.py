"""TensorFlow Datasets: builders write keras_msrnn.datasets' windows; the reader batches videos."""

import re

import keras
import numpy as np
import pytest

import keras_msrnn
from keras_msrnn.datasets import get_dataset
from tests.conftest import fast_subset

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")
msrnn_tfds = pytest.importorskip("keras_msrnn.datasets.tfds")


def build(tmp_path, name, manual_dir, **config):
    builder = tfds.builder(
        name,
        config=msrnn_tfds.WindowConfig(name="small", **config),
        data_dir=str(tmp_path / "tfds"),
    )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def windows(builder, split):
    return np.stack([example["frames"] for example in tfds.as_numpy(builder.as_dataset(split))])


OPTIONS = {"moving_mnist": {"speed_range": (2, 6)}, "radar_knmi": {"frame_size": 32}}
OPTIONS["radar_fmi"] = OPTIONS["radar_knmi"]


@pytest.mark.parametrize(
    "dataset,folder",
    fast_subset(
        [("moving_mnist", "mnist"), ("radar_knmi", "radar_knmi"), ("radar_fmi", "radar_fmi")],
        {("moving_mnist", "mnist")},
    ),
)
def test_builders_write_the_windows_of_keras_msrnn_datasets(dataset, folder, tmp_path, shared_data):
    options = OPTIONS[dataset]
    lengths = {"input_length": 3, "output_length": 2}
    builder = build(
        tmp_path,
        f"msrnn_{dataset}",
        shared_data / folder,
        max_sequences=5,
        options=options,
        **lengths,
    )
    assert set(builder.info.splits) == {"train", "test"}
    for split in ("train", "test"):
        want = get_dataset(
            dataset,
            split,
            data_dir=str(shared_data / folder),
            max_sequences=5,
            seed=0,  # WindowConfig's
            **lengths,
            **options,
        ).as_numpy()
        got = windows(builder, split)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_default_configuration_is_the_msrnn_protocol():
    mnist = tfds.builder("msrnn_moving_mnist").builder_config
    assert (mnist.name, mnist.input_length, mnist.output_length) == ("msrnn", 10, 10)
    assert mnist.options == {"speed_range": [2, 6]}
    taxibj = tfds.builder("msrnn_taxibj").builder_config
    assert (taxibj.input_length, taxibj.output_length, taxibj.options) == (
        4,
        4,
        {"protocol": "msrnn"},
    )
    assert set(msrnn_tfds.BUILDERS) == set(keras_msrnn.datasets.dataset_names())


def test_a_builder_without_its_files_names_them(tmp_path):
    (tmp_path / "empty").mkdir()
    instructions = (
        "Put TaxiBJ's BJ13..BJ16_M32x32_T30_InOut.h5 and BJ_Holiday.txt in the manual folder (the "
        "folder keras_msrnn.datasets reads for 'taxibj') and pass it as "
        "DownloadConfig(manual_dir=...)."
    )
    with pytest.raises(AssertionError, match=re.escape(instructions)):
        build(tmp_path, "msrnn_taxibj", tmp_path / "empty")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "BJ_Holiday.txt").write_text("20130101\n")
    with pytest.raises(FileNotFoundError, match="BJ13_M32x32_T30_InOut.h5"):
        build(tmp_path, "msrnn_taxibj", partial)


def moving_mnist_like(sequences):
    """Examples shaped as TFDS's own `moving_mnist`: `image_sequence` (20, 64, 64, 1) uint8."""
    return tf.data.Dataset.from_tensor_slices({"image_sequence": sequences})


@pytest.fixture
def mnist_test_sequences(shared_data):
    data = get_dataset("moving_mnist", "test", data_dir=str(shared_data / "mnist"), max_sequences=5)
    return data.load_sequences(np.arange(5))  # (5, 20, 64, 64, 1) uint8


def test_reader_gives_the_batches_of_keras_msrnn_datasets(mnist_test_sequences, shared_data):
    assert mnist_test_sequences.dtype == np.uint8
    batches = list(
        msrnn_tfds.from_tfds(moving_mnist_like(mnist_test_sequences), 10, 10, batch_size=2)
    )
    data = get_dataset(
        "moving_mnist", "test", data_dir=str(shared_data / "mnist"), max_sequences=5, batch_size=2
    )
    assert len(batches) == len(data) == 3
    for index, ((context, future), target) in enumerate(batches):
        (want_context, want_future), _ = data[index]
        np.testing.assert_array_equal(context.numpy(), want_context)
        np.testing.assert_array_equal(future.numpy(), want_future)
        np.testing.assert_array_equal(target.numpy(), want_future)


def test_reader_cuts_overlapping_windows_and_drops_short_videos(mnist_test_sequences):
    # 20 frames, windows of 3 + 2 every 4 frames: starts 0, 4, 8, 12 (16 + 5 > 20).
    batches = msrnn_tfds.from_tfds(
        moving_mnist_like(mnist_test_sequences), 3, 2, batch_size=100, window_shift=4
    )
    (context, future), _ = next(iter(batches))
    assert context.shape == (5 * 4, 3, 64, 64, 1) and future.shape == (20, 2, 64, 64, 1)
    frames = mnist_test_sequences.astype("float32") / 255
    np.testing.assert_allclose(context.numpy()[5], frames[1, 4:7])  # video 1, second window
    np.testing.assert_allclose(future.numpy()[5], frames[1, 7:9])
    too_long = msrnn_tfds.from_tfds(moving_mnist_like(mnist_test_sequences), 15, 10)
    assert list(too_long) == []


def test_reader_feeds_fit_on_every_backend(mnist_test_sequences):
    batches = msrnn_tfds.from_tfds(moving_mnist_like(mnist_test_sequences[:2, :4]), 2, 2, 2)
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=2, scales=(1, 2, 1), input_length=2, output_length=2
    )
    model.build((None, 2, 64, 64, 1))
    model.compile(optimizer="adam")
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    loss = model.fit(batches, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.mark.parametrize(
    "examples,options,message",
    [
        (
            {"a": np.zeros((1, 4, 8, 8, 1), "uint8"), "b": np.zeros((1, 4, 8, 8, 1), "uint8")},
            {},
            "The examples hold 2 (time, height, width, channels) videos; name one with "
            "`feature=`. Features: a (4, 8, 8, 1), b (4, 8, 8, 1).",
        ),
        (
            {"label": np.zeros((1,), "int64")},
            {},
            "The examples hold no (time, height, width, channels) videos; name one with "
            "`feature=`. Features: label ().",
        ),
        (
            {"video": np.zeros((1, 4, 8, 8, 1), "uint8"), "label": np.zeros((1,), "int64")},
            {"feature": "label"},
            "Feature 'label' is not a (time, height, width, channels) video; the examples "
            "hold: video (4, 8, 8, 1), label ().",
        ),
        (
            {"video": np.zeros((1, 4, 8, 8, 1), "int16")},
            {},
            "Feature 'video' holds int16 frames; expected uint8 or floats.",
        ),
        (
            {"video": np.zeros((1, 4, 8, 8, 1), "uint8")},
            {"window_shift": 0},
            "`window_shift` must be a positive int. Received: window_shift=0",
        ),
    ],
)
def test_reader_refuses_what_it_cannot_read_in_one_line(examples, options, message):
    dataset = tf.data.Dataset.from_tensor_slices(examples)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        msrnn_tfds.from_tfds(dataset, 2, 2, **options)
