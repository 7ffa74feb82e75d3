import gzip
import os

import numpy as np
import pytest

import keras_msrnn
from keras_msrnn.datasets import MovingMNIST
from keras_msrnn.datasets.moving_mnist import read_idx_images


@pytest.fixture
def mnist_dir(shared_data):
    return str(shared_data / "mnist")


def test_batches_are_context_future_pairs_in_unit_range(mnist_dir):
    data = MovingMNIST("train", data_dir=mnist_dir, batch_size=3, num_sequences=7, seed=1)
    assert len(data) == 3
    (context, future), target = data[0]
    assert context.shape == (3, 10, 64, 64, 1) and future.shape == (3, 10, 64, 64, 1)
    assert context.dtype == np.float32 and target is future
    assert 0.0 <= context.min() and context.max() == 1.0
    assert data[2][0][0].shape[0] == 1  # the remainder batch
    with pytest.raises(IndexError):
        data[3]


def test_two_real_digits_move_at_the_standard_speed(mnist_dir):
    data = MovingMNIST("test", data_dir=mnist_dir, batch_size=1, num_digits=1, input_length=2, output_length=2)
    frames = data.as_numpy(max_sequences=8)[..., 0]
    digits = read_idx_images(os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz"))
    rows = np.argwhere(frames.max(axis=3) > 0)
    assert frames.shape == (8, 4, 64, 64)
    # Every frame holds one unaltered 28x28 MNIST test digit ...
    digit_sums = set(digits.reshape(len(digits), -1).sum(axis=1).tolist())
    for sequence in (frames * 255).round().astype(np.int64):
        for frame in sequence:
            assert int(frame.sum()) in digit_sums
    # ... moving about 3.6 px per frame (truncated positions: at most 4 per axis).
    assert len(rows) > 0
    first = np.array([np.argwhere(f > 0).min(axis=0) for f in frames[:, 0]])
    second = np.array([np.argwhere(f > 0).min(axis=0) for f in frames[:, 1]])
    step = np.abs(second - first)
    assert step.max() <= 5


def test_test_split_is_fixed_and_train_split_changes_per_epoch(mnist_dir):
    test_a = MovingMNIST("test", data_dir=mnist_dir, batch_size=4)
    test_b = MovingMNIST("test", data_dir=mnist_dir, batch_size=2, seed=99)
    np.testing.assert_array_equal(test_a[0][0][0][2:], test_b[1][0][0])
    test_a.on_epoch_end()
    np.testing.assert_array_equal(test_a[0][0][0][2:], test_b[1][0][0])
    train = MovingMNIST("train", data_dir=mnist_dir, batch_size=2, seed=5)
    again = MovingMNIST("train", data_dir=mnist_dir, batch_size=2, seed=5)
    first = train[0][0][0]
    np.testing.assert_array_equal(first, again[0][0][0])
    train.on_epoch_end()
    assert not np.array_equal(first, train[0][0][0])
    assert not np.array_equal(first, test_a[0][0][0][:2])


def test_msrnn_speed_rule_and_digit_count(mnist_dir):
    data = MovingMNIST("test", data_dir=mnist_dir, speed_range=(2, 6), num_digits=3, frame_size=48)
    frames = data.as_numpy(max_sequences=2)
    assert frames.shape == (2, 20, 48, 48, 1)
    with pytest.raises(ValueError, match="speed_range"):
        MovingMNIST("test", data_dir=mnist_dir, speed_range=(0, 2))
    with pytest.raises(ValueError, match="frame_size"):
        MovingMNIST("test", data_dir=mnist_dir, frame_size=20)


def test_reads_mnist_test_seq_layout_with_the_msrnn_split(tmp_path):
    sequences = np.random.default_rng(0).integers(0, 256, (20, 10, 64, 64), dtype=np.uint8)
    path = str(tmp_path / "mnist_test_seq.npy")
    np.save(path, sequences)
    every = MovingMNIST("all", sequences_file=path, batch_size=10)
    (context, future), _ = every[0]
    np.testing.assert_array_equal(context[3, :, :, :, 0], sequences[:10, 3] / np.float32(255))
    np.testing.assert_array_equal(future[3, :, :, :, 0], sequences[10:, 3] / np.float32(255))
    assert MovingMNIST("train", sequences_file=path).num_sequences == 7
    test = MovingMNIST("test", sequences_file=path, batch_size=3, shuffle=True, seed=0)
    assert test.num_sequences == 3
    assert sorted(float(c[0, 0, 0, 0]) for c in test[0][0][0]) == sorted(
        sequences[0, 7:, 0, 0] / np.float32(255)
    )


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing train-images-idx3-ubyte.gz in .*nowhere.*download=True"):
        MovingMNIST("train", data_dir=str(tmp_path / "nowhere"))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        MovingMNIST("test", data_dir=str(tmp_path))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a readable IDX file"):
        MovingMNIST("test", data_dir=str(tmp_path))
    np.save(tmp_path / "bad.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint8 frames shaped"):
        MovingMNIST("all", sequences_file=str(tmp_path / "bad.npy"))
    with pytest.raises(ValueError, match="split"):
        MovingMNIST("all", data_dir=str(tmp_path))


def test_a_tiny_model_trains_on_moving_mnist(mnist_dir):
    data = MovingMNIST(
        "train", data_dir=mnist_dir, batch_size=2, num_sequences=4, frame_size=32,
        input_length=2, output_length=2, seed=0,
    )
    model = keras_msrnn.MSStack(cell="convlstm", filters=2, scales=(1, 2, 1), input_length=2, output_length=2)
    model.compile(metrics=[keras_msrnn.metrics.FrameMSE()])
    history = model.fit(data, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert history.history["frame_mse"][-1] > 0


def test_as_tf_dataset_yields_the_same_batches(mnist_dir):
    import keras

    if keras.config.backend() != "tensorflow":
        pytest.skip("as_tf_dataset is for TensorFlow users")
    data = MovingMNIST("test", data_dir=mnist_dir, batch_size=2, num_sequences=3)
    batches = list(data.as_tf_dataset())
    assert len(batches) == 2
    np.testing.assert_array_equal(batches[1][0][0].numpy(), data[1][0][0])


def test_frame_windows_cut_sliding_windows_from_user_frames():
    video = np.arange(12 * 4 * 4, dtype=np.float32).reshape(12, 4, 4) / (12 * 16)
    data = keras_msrnn.datasets.FrameWindows(video, stride=3, input_length=2, output_length=3, batch_size=2)
    assert data.num_sequences == 3  # starts 0, 3, 6
    (context, future), _ = data[1]
    np.testing.assert_array_equal(context[0, :, :, :, 0], video[6:8])
    np.testing.assert_array_equal(future[0, :, :, :, 0], video[8:11])
    with pytest.raises(ValueError, match="shorter than input_length \\+ output_length = 20"):
        keras_msrnn.datasets.FrameWindows(video)
    with pytest.raises(ValueError, match="must be uint8 or float"):
        keras_msrnn.datasets.FrameWindows(np.zeros((30, 4, 4), np.int32))
