"""TaxiBJ: crowd inflow and outflow over Beijing on a 32x32 grid, every 30 min."""

import datetime

import numpy as np

from keras_msrnn.datasets.base import SequenceDataset, default_data_dir, require_files

TAXIBJ_FILES = tuple(f"BJ{year}_M32x32_T30_InOut.h5" for year in (13, 14, 15, 16))
HOLIDAY_FILE = "BJ_Holiday.txt"
SLOTS_PER_DAY = 48
SLOT = datetime.timedelta(minutes=30)
TEST_WINDOWS = 48 * 7 * 4  # the last four weeks
PROTOCOLS = ("openstl", "msrnn")


def _slot_time(stamp):
    stamp = stamp.decode() if isinstance(stamp, bytes) else str(stamp)
    if len(stamp) != 10 or not stamp.isdigit() or not 1 <= int(stamp[8:]) <= SLOTS_PER_DAY:
        raise ValueError(f"bad TaxiBJ time stamp {stamp!r} (expected YYYYMMDDSS, slots 01-48)")
    day = datetime.datetime.strptime(stamp[:8], "%Y%m%d")
    return day + (int(stamp[8:]) - 1) * SLOT


def read_flow_file(path):
    """`(frames (T, 32, 32, 2) float32, times)` of one year, complete days only."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            data, stamps = np.asarray(file["data"], np.float32), np.asarray(file["date"])
    except (OSError, KeyError) as error:
        raise ValueError(f"{path} is not a TaxiBJ file with 'data' and 'date' ({error}).") from None
    if data.ndim != 4 or data.shape[1] < 2 or len(data) != len(stamps):
        raise ValueError(
            f"{path}: 'data' must be (T, 2, H, W) with one 'date' per frame; found {data.shape}."
        )
    stamps = [s.decode() if isinstance(s, bytes) else str(s) for s in stamps]
    per_day = {}
    for stamp in stamps:
        per_day[stamp[:8]] = per_day.get(stamp[:8], 0) + 1
    keep = [i for i, s in enumerate(stamps) if per_day[s[:8]] == SLOTS_PER_DAY]
    frames = np.maximum(data[keep, :2], 0).transpose(0, 2, 3, 1)
    return frames, [_slot_time(stamps[i]) for i in keep]


def read_holidays(path):
    with open(path) as file:
        return {
            datetime.datetime.strptime(line.strip(), "%Y%m%d").date()
            for line in file
            if line.strip()
        }


class TaxiBJ(SequenceDataset):
    """TaxiBJ crowd flows in the OpenSTL or the MS-RNN protocol.

    Both read the four ST-ResNet files `BJ13..BJ16_M32x32_T30_InOut.h5`
    (`data` `(T, 2, 32, 32)` inflow/outflow, `date` `YYYYMMDDSS` with 48
    half-hour slots a day), drop incomplete days and negative values, scale
    by the minimum and maximum of the training frames (everything except the
    last four weeks), and cut windows of consecutive half-hours (stride 1).
    The last `48 * 7 * 4 = 1344` windows are the test split.

    - `protocol="openstl"`: both flows (2 channels), 4 -> 4, forward time.
    - `protocol="msrnn"`: inflow only, the MS-RNN order: each window lists
      its slots newest first (the model predicts the older half from the
      newer), values quantised to 8 bits as the authors' loader does.

    `holidays` holds the dates of `BJ_Holiday.txt` when it is present.

    Args:
        split: `"train"` or `"test"`.
        protocol: `"openstl"` or `"msrnn"`.
        data_dir: folder with the four h5 files. Defaults to
            `$KERAS_MSRNN_DATA/taxibj`.
        **kwargs: `SequenceDataset` arguments; lengths default to 4 and 4.

    Reference:
     - [Zhang et al., ST-ResNet, 2017](https://arxiv.org/abs/1610.00081)
    """

    def __init__(
        self, split="train", protocol="openstl", data_dir=None, test_windows=TEST_WINDOWS, **kwargs
    ):
        kwargs.setdefault("input_length", 4)
        kwargs.setdefault("output_length", 4)
        super().__init__(**kwargs)
        if split not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"`protocol` must be one of {PROTOCOLS}. Received: protocol={protocol!r}"
            )
        self.split, self.protocol = split, protocol
        data_dir = data_dir or default_data_dir("taxibj")
        paths = require_files(
            data_dir, TAXIBJ_FILES, "TaxiBJ", hint=" (the ST-ResNet release of TaxiBJ)"
        )
        frames, times = [], []
        for path in paths:
            year_frames, year_times = read_flow_file(path)
            frames.append(year_frames)
            times += year_times
        frames = np.concatenate(frames)
        starts = self._window_starts(times)
        if len(starts) <= test_windows:
            raise ValueError(
                f"TaxiBJ in {data_dir} yields {len(starts)} windows, not more than the "
                f"{test_windows} test ones."
            )
        train_frames = frames[: len(frames) - test_windows]
        low, high = float(train_frames.min()), float(train_frames.max())
        frames = (frames - low) / max(high - low, 1e-12)
        if protocol == "msrnn":
            frames = (np.clip(frames[..., :1], 0, 1) * 255).astype(np.uint8)
        self.frames, self.scale = frames, (low, high)
        self.starts = starts[:-test_windows] if split == "train" else starts[-test_windows:]
        self.times = times
        holiday_path = f"{data_dir}/{HOLIDAY_FILE}"
        try:
            self.holidays = read_holidays(holiday_path)
        except FileNotFoundError:
            self.holidays = set()

    def _window_starts(self, times):
        """Indices that begin `sequence_length` consecutive half-hour slots."""
        length = self.sequence_length
        consecutive = np.array([b - a == SLOT for a, b in zip(times, times[1:])] + [False])
        run = np.zeros(len(times), np.int64)  # consecutive slots starting at i
        for index in range(len(times) - 1, -1, -1):
            run[index] = 1 + (run[index + 1] if consecutive[index] else 0)
        return np.flatnonzero(run >= length)

    @property
    def num_sequences(self):
        return len(self.starts)

    def load_sequences(self, indices, epoch=0):
        windows = np.stack(
            [self.frames[s : s + self.sequence_length] for s in self.starts[indices]]
        )
        return windows[:, ::-1] if self.protocol == "msrnn" else windows
