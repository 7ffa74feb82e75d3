import datetime
import gzip
import os

import numpy as np
import pytest

import keras_msrnn
from keras_msrnn.datasets import MovingMNIST
from keras_msrnn.datasets.moving_mnist import read_idx_images
from tests.conftest import fast_subset


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
    data = MovingMNIST(
        "test", data_dir=mnist_dir, batch_size=1, num_digits=1, input_length=2, output_length=2
    )
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
    with pytest.raises(
        FileNotFoundError, match=r"missing train-images-idx3-ubyte.gz in .*nowhere.*download=True"
    ):
        MovingMNIST("train", data_dir=str(tmp_path / "nowhere"))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20)
    )
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
        "train",
        data_dir=mnist_dir,
        batch_size=2,
        num_sequences=4,
        frame_size=32,
        input_length=2,
        output_length=2,
        seed=0,
    )
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=2, scales=(1, 2, 1), input_length=2, output_length=2
    )
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
    data = keras_msrnn.datasets.FrameWindows(
        video, stride=3, input_length=2, output_length=3, batch_size=2
    )
    assert data.num_sequences == 3  # starts 0, 3, 6
    (context, future), _ = data[1]
    np.testing.assert_array_equal(context[0, :, :, :, 0], video[6:8])
    np.testing.assert_array_equal(future[0, :, :, :, 0], video[8:11])
    with pytest.raises(ValueError, match="shorter than input_length \\+ output_length = 20"):
        keras_msrnn.datasets.FrameWindows(video)
    with pytest.raises(
        ValueError, match="int32 frames are read as 8-bit intensities 0..255, but they hold 0..300"
    ):
        keras_msrnn.datasets.FrameWindows(
            np.arange(30 * 16, dtype=np.int32).reshape(30, 4, 4) % 301
        )


# === TaxiBJ ===


def write_taxibj(folder, days=3, seed=0, drop_last_slot_of_day=None):
    """Four small files in the ST-ResNet schema: data (T, 2, 32, 32), date YYYYMMDDSS."""
    import h5py

    from keras_msrnn.datasets.taxibj import TAXIBJ_FILES

    rng = np.random.default_rng(seed)
    for year_index, name in enumerate(TAXIBJ_FILES):
        stamps = [
            f"201{3 + year_index}03{day + 1:02d}{slot:02d}".encode()
            for day in range(days)
            for slot in range(1, 49)
            if not (day == drop_last_slot_of_day and slot == 48)
        ]
        data = rng.uniform(-5, 1000, (len(stamps), 2, 32, 32)).astype(np.float64)
        with h5py.File(os.path.join(folder, name), "w") as file:
            file["data"], file["date"] = data, np.array(stamps)


def test_taxibj_protocols(tmp_path, shared_data):
    write_taxibj(str(tmp_path), drop_last_slot_of_day=1)
    shutil_copy = __import__("shutil").copy
    shutil_copy(shared_data / "taxibj" / "BJ_Holiday.txt", tmp_path)
    openstl = keras_msrnn.datasets.TaxiBJ(
        "train", "openstl", data_dir=str(tmp_path), test_windows=48, batch_size=4
    )
    (context, future), _ = openstl[0]
    assert context.shape == (4, 4, 32, 32, 2)
    assert 0 <= openstl.frames.min() and openstl.frames[
        : len(openstl.frames) - 48
    ].max() == pytest.approx(1.0)
    # Day 2 of each year is incomplete and dropped: 2 days x 48 slots per year.
    assert len(openstl.frames) == 4 * 2 * 48
    # Windows never span the gap between years or the dropped day.
    starts = openstl.starts
    assert all(
        openstl.times[s + 7] - openstl.times[s] == 7 * (openstl.times[1] - openstl.times[0])
        for s in starts
    )
    test = keras_msrnn.datasets.TaxiBJ("test", "openstl", data_dir=str(tmp_path), test_windows=48)
    assert test.num_sequences == 48
    msrnn = keras_msrnn.datasets.TaxiBJ(
        "test", "msrnn", data_dir=str(tmp_path), test_windows=48, batch_size=2
    )
    (context, future), _ = msrnn[0]
    assert context.shape == (2, 4, 32, 32, 1)
    # Newest first: the first context frame is the last slot of the window, 8-bit quantised inflow.
    window = openstl.frames[test.starts[0] : test.starts[0] + 8, ..., 0]
    np.testing.assert_allclose(context[0, 0, ..., 0], np.floor(window[-1] * 255) / 255, atol=1e-6)
    np.testing.assert_allclose(future[0, -1, ..., 0], np.floor(window[0] * 255) / 255, atol=1e-6)
    import datetime

    lines = (shared_data / "taxibj" / "BJ_Holiday.txt").read_text().split()
    assert len(msrnn.holidays) == len(set(lines))
    assert min(msrnn.holidays) == datetime.date(2013, 1, 1) and max(
        msrnn.holidays
    ) == datetime.date(2016, 6, 11)
    with pytest.raises(ValueError, match="protocol"):
        keras_msrnn.datasets.TaxiBJ("train", "simvp", data_dir=str(tmp_path))


def test_taxibj_missing_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing BJ13_M32x32_T30_InOut.h5, BJ14"):
        keras_msrnn.datasets.TaxiBJ(data_dir=str(tmp_path))
    write_taxibj(str(tmp_path))
    (tmp_path / "BJ15_M32x32_T30_InOut.h5").write_bytes(b"\x89HDF\r\n truncated")
    with pytest.raises(ValueError, match="BJ15_M32x32_T30_InOut.h5 is not a TaxiBJ file"):
        keras_msrnn.datasets.TaxiBJ(data_dir=str(tmp_path), test_windows=10)


@pytest.mark.large
def test_a_tiny_model_trains_on_taxibj(tmp_path):
    write_taxibj(str(tmp_path), days=1)
    data = keras_msrnn.datasets.TaxiBJ(
        "train",
        data_dir=str(tmp_path),
        test_windows=8,
        batch_size=4,
        input_length=2,
        output_length=2,
    )
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=2, scales=(1, 2, 1), input_length=2, output_length=2
    )
    model.compile()
    assert np.isfinite(model.fit(data, epochs=1, steps_per_epoch=2, verbose=0).history["loss"][0])


# === KTH, on a real pedestrian video ===


@pytest.fixture
def kth_dir(tmp_path, shared_data):
    """A KTH layout holding the real vtest.avi as a test person's walking video."""
    folder = tmp_path / "kth"
    (folder / "walking").mkdir(parents=True)
    os.symlink(
        shared_data / "pedestrians_vtest" / "vtest.avi",
        folder / "walking" / "person17_walking_d1_uncomp.avi",
    )
    return folder


def test_kth_reads_real_video_with_protocol_windows(kth_dir, shared_data):
    data = keras_msrnn.datasets.KTH("test", "msrnn", data_dir=str(kth_dir), batch_size=2)
    (context, future), _ = data[0]
    assert context.shape == (2, 10, 88, 88, 1) and future.shape == (2, 10, 88, 88, 1)
    assert data.num_sequences == (795 - 20) // 10 + 1  # walking: a window every 10 frames
    reference = np.load(shared_data / "pedestrians_vtest" / "vtest_gray_120x160.npz")["frames"]
    # Same video: the grey frames agree with the published 120x160 grey copy.
    assert abs(float(context[0, 0].mean()) * 255 - float(reference[0].mean())) < 3
    openstl = keras_msrnn.datasets.KTH("test", "openstl", data_dir=str(kth_dir), frame_size=64)
    assert openstl[0][0][1].shape[1:] == (20, 64, 64, 1)
    assert openstl.num_sequences == (795 - 30) // 30 + 1  # walking steps by the window length


def test_kth_sequence_index_and_person_split(kth_dir, shared_data):
    (kth_dir / "00sequences.txt").write_text("person17_walking_d1\t\tframes\t1-40, 101-160\r\n")
    data = keras_msrnn.datasets.KTH("test", "msrnn", data_dir=str(kth_dir), frame_size=32)
    assert [start for _, start in data.windows] == [0, 10, 20, 100, 110, 120, 130, 140]
    with pytest.raises(FileNotFoundError, match="no videos of classes .* persons 1-16"):
        keras_msrnn.datasets.KTH("train", "msrnn", data_dir=str(kth_dir))
    with pytest.raises(ValueError, match="Unknown KTH classes"):
        keras_msrnn.datasets.KTH("test", classes=["dancing"], data_dir=str(kth_dir))
    from keras_msrnn.datasets.kth import parse_sequence_index

    official = parse_sequence_index(str(shared_data / "kth" / "00sequences.txt"))
    assert len(official) == 599 - 1 or len(official) >= 598
    assert official["person01_boxing_d1"] == [(1, 95), (96, 185), (186, 245), (246, 360)]


@pytest.mark.large
def test_a_tiny_model_trains_on_kth(kth_dir):
    data = keras_msrnn.datasets.KTH(
        "test",
        "msrnn",
        data_dir=str(kth_dir),
        frame_size=16,
        batch_size=2,
        input_length=2,
        output_length=2,
    )
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=2, scales=(1, 2, 1), input_length=2, output_length=2
    )
    model.compile()
    assert np.isfinite(model.fit(data, epochs=1, steps_per_epoch=2, verbose=0).history["loss"][0])


# === Radar ===


def test_knmi_and_fmi_readers_give_units_time_and_grid(shared_data):
    knmi = keras_msrnn.datasets.read_knmi(
        str(shared_data / "radar_knmi" / "RAD_NL25_RAP_5min_201008260005.h5")
    )
    assert knmi.data.shape == (765, 700) and knmi.units == "mm per 5 min"
    assert knmi.time == datetime.datetime(2010, 8, 26, 0, 5)
    assert knmi.grid["projection"].startswith("+proj=stere") and knmi.grid["pixel_size_km"] == 1.0
    assert len(knmi.grid["corners_lon_lat"]) == 4
    path = sorted((shared_data / "radar_fmi" / "20160928").glob("*.pgm.gz"))[0]
    fmi = keras_msrnn.datasets.read_fmi_pgm(str(path))
    assert fmi.units == "dBZ" and fmi.time == datetime.datetime(2016, 9, 28, 14, 45)
    assert fmi.grid["pixel_size_km"] == pytest.approx(0.99967, abs=1e-5)


def test_radolan_ry_reader_on_the_real_frame(shared_data, tmp_path):
    path = shared_data / "radolan_ry" / "raa01-ry_10000-1408102050-dwd---bin.gz"
    image = keras_msrnn.datasets.read_radolan_ry(str(path))
    rain = image.data
    assert image.units == "mm per 5 min" and image.source == "DWD RADOLAN RY"
    assert image.time == datetime.datetime(2014, 8, 10, 20, 50)  # raa01-ry_10000-1408102050
    assert image.grid["shape"] == (900, 900) and "+lon_0=10" in image.grid["projection"]
    assert rain.shape == (900, 900)
    assert int(np.isnan(rain).sum()) == 202093
    assert float(np.nanmax(rain)) == pytest.approx(10.79)
    assert float((rain[~np.isnan(rain)] > 0).mean()) == pytest.approx(0.213, abs=5e-4)
    raw = gzip.decompress(path.read_bytes())
    (tmp_path / "short").write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        keras_msrnn.datasets.read_radolan_ry(str(tmp_path / "short"))
    (tmp_path / "other").write_bytes(b"RX" + raw[2:])
    with pytest.raises(ValueError, match="not a RADOLAN RY file"):
        keras_msrnn.datasets.read_radolan_ry(str(tmp_path / "other"))


@pytest.mark.large
def test_germany_protocol_on_rydl_hdf5_layout(tmp_path, shared_data):
    import h5py

    frame = keras_msrnn.datasets.read_radolan_ry(
        str(shared_data / "radolan_ry" / "raa01-ry_10000-1408102050-dwd---bin.gz")
    ).data
    start = __import__("datetime").datetime(2016, 1, 1)
    keys = [
        (start + __import__("datetime").timedelta(minutes=5 * i)).strftime("%Y%m%d%H%M")
        for i in range(130)
    ]
    keys = ["201412312355"] + keys  # a training-year key, left out of the test split
    with h5py.File(tmp_path / "RYDL.hdf5", "w") as file:
        for index, key in enumerate(keys):
            file[key] = np.nan_to_num(frame) * ((index // 6) % 2)
    (tmp_path / "RYDL_keys.txt").write_text(repr(keys))
    data = keras_msrnn.datasets.RadarGermany(
        "test", data_dir=str(tmp_path), frame_size=32, batch_size=2
    )
    assert data.num_sequences == 130 // 60  # non-overlapping windows of 10 frames, every 6th key
    (context, future), _ = data[0]
    assert context.shape == (2, 5, 32, 32, 1)
    # Frame k of the first window is 2016 key 6k (file index 6k + 1): rain on odd k only.
    assert float(context[0, 0].max()) == 0.0 and float(context[0, 1].max()) > 0
    from keras_msrnn.metrics import rain_to_pixel

    native = keras_msrnn.datasets.RadarGermany(
        "test", data_dir=str(tmp_path), frame_size=900, batch_size=1
    )
    # The wettest pixel, 10.79 mm in 5 min = 129.5 mm/h, on the dBZ pixel scale.
    assert float(native[0][0][0][0, 1].max()) == pytest.approx(
        float(rain_to_pixel(10.79 * 12, "dwd")), rel=1e-5
    )
    with pytest.raises(FileNotFoundError, match="RYDL.hdf5, RYDL_keys.txt"):
        keras_msrnn.datasets.RadarGermany(data_dir=str(tmp_path / "none"))
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=2, scales=(1, 2, 1), input_length=5, output_length=5
    )
    model.compile()
    assert np.isfinite(model.fit(data, epochs=1, steps_per_epoch=1, verbose=0).history["loss"][0])


@pytest.mark.parametrize(
    "source,folder",
    fast_subset([("knmi", "radar_knmi"), ("fmi", "radar_fmi")], set()),
)
def test_real_radar_sequences_split_by_time(source, folder, shared_data):
    train = keras_msrnn.datasets.RadarSequences(
        source, "train", data_dir=str(shared_data / folder), frame_size=32
    )
    test = keras_msrnn.datasets.RadarSequences(
        source, "test", data_dir=str(shared_data / folder), frame_size=32
    )
    assert max(train.times) < test.split_time <= min(test.times)
    (context, future), _ = test[0]
    assert context.shape[1:] == (5, 32, 32, 1)
    assert 0.0 <= float(context.min()) and 0.0 < float(context.max()) <= 1.0
    assert len(train.times) + len(test.times) == {"knmi": 92, "fmi": 80}[source]
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=2, scales=(1, 2, 1), input_length=5, output_length=5
    )
    model.compile()
    assert np.isfinite(model.fit(train, epochs=1, steps_per_epoch=1, verbose=0).history["loss"][0])


def test_radar_pixels_turn_back_into_rain_rates():
    from keras_msrnn import radar_units

    rain = np.array([0.0, 0.5, 2.0, 30.0])
    pixels = radar_units.rain_to_pixel(rain, "dwd")
    np.testing.assert_allclose(radar_units.pixel_to_rain(pixels, "dwd"), rain, rtol=1e-6)
    units = keras_msrnn.datasets.RadarGermany.pixel_units
    assert (
        units["pixel"] == "clip((dBZ + 10) / 70, 0, 1)"
        and "Z = 256 R^1.42" in units["z_r_relation"]
    )
    assert keras_msrnn.datasets.MovingMNIST.radar is False
