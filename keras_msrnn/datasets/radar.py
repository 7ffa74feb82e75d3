"""Weather radar: RADOLAN RY (Germany), RainNet's RYDL.hdf5, KNMI and FMI composites.

All loaders map radar onto MS-RNN's pixel scale `P = clip((dBZ + 10) / 70, 0, 1)`:
rain depths (mm per 5 min) become rain rates (x 12, mm/h), then
reflectivity through Germany's `Z = 256 R^1.42`; reflectivity products
(FMI) map directly. Missing pixels become 0 (no echo).
"""

import ast
import datetime
import glob
import gzip
import io
import os
import re
from typing import NamedTuple

import numpy as np

from keras_msrnn.datasets.base import SequenceDataset, default_data_dir, positive_int, require_files
from keras_msrnn.radar_units import dbz_to_pixel, describe, rain_to_pixel

RADOLAN_SIZE = 900
FIVE_MINUTES = datetime.timedelta(minutes=5)


# === Readers ===


class RadarImage(NamedTuple):
    """One radar composite with what it measures, when and where.

    Attributes:
        data: the values, `(rows, columns)` float32, north up; no-data is NaN.
        units: what `data` holds, e.g. `"mm per 5 min"` or `"dBZ"`.
        time: the end of the measurement interval (UTC), or None.
        grid: the grid's description: `projection` (a PROJ string),
            `pixel_size_km`, `shape`, and what else the file states
            (corner coordinates, radars).
        source: the product, e.g. `"DWD RADOLAN RY"`.
    """

    data: np.ndarray
    units: str
    time: datetime.datetime | None
    grid: dict
    source: str


# RADOLAN's polar stereographic grid on its sphere of radius 6370.04 km.
RADOLAN_GRID = {
    "projection": "+proj=stere +lat_0=90 +lat_ts=60 +lon_0=10 +a=6370040 +b=6370040 +units=m",
    "pixel_size_km": 1.0,
    "shape": (RADOLAN_SIZE, RADOLAN_SIZE),
}


def read_radolan_ry(path):
    """A RADOLAN RY composite `(900, 900)` in mm per 5 min, as a `RadarImage`.

    The file (optionally gzipped) is an ASCII header ending with byte 0x03,
    then 900x900 little-endian uint16: value `(v & 0x0FFF) * 0.01`, bit
    0x2000 no-data, 0x4000 negative, 0x8000 clutter (kept as measured).
    Rows run south to north in the file; they are flipped to north-up. The
    header gives the time (`RYddhhmm<station>MMYY`).
    """
    with open(path, "rb") as file:
        raw = file.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: corrupt gzip stream ({error}).") from None
    end = raw.find(b"\x03")
    if not raw.startswith(b"RY") or end < 0:
        raise ValueError(f"{path} is not a RADOLAN RY file (no 'RY' header ending in 0x03).")
    body = raw[end + 1 :]
    expected = RADOLAN_SIZE * RADOLAN_SIZE * 2
    if len(body) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: {len(body)} data bytes, expected {expected}."
        )
    words = np.frombuffer(body, "<u2").reshape(RADOLAN_SIZE, RADOLAN_SIZE)
    values = (words & 0x0FFF).astype(np.float32) * np.float32(0.01)
    values = np.where(words & 0x4000, -values, values)
    values[(words & 0x2000) != 0] = np.nan
    header = raw[:end].decode("ascii", "replace")
    time = _parse_time(header[2:8] + header[13:17], "%d%H%M%m%y")
    return RadarImage(values[::-1], "mm per 5 min", time, dict(RADOLAN_GRID), "DWD RADOLAN RY")


def read_knmi(path):
    """A KNMI 5-min accumulation `(765, 700)` in mm, as a `RadarImage`; missing is NaN."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            raw = np.asarray(file["image1/image_data"])
            geographic = file["geographic"].attrs
            grid = {
                "projection": _text(
                    file["geographic/map_projection"].attrs["projection_proj4_params"]
                ),
                "pixel_size_km": float(geographic["geo_pixel_size_x"][0]),
                "shape": tuple(raw.shape),
                "corners_lon_lat": np.asarray(geographic["geo_product_corners"])
                .reshape(4, 2)
                .tolist(),
            }
            end = _text(file["overview"].attrs["product_datetime_end"][0])
    except (OSError, KeyError) as error:
        raise ValueError(f"{path} is not a KNMI radar file ({error}).") from None
    values = raw.astype(np.float32) * np.float32(0.01)
    values[raw == 65535] = np.nan
    time = _parse_time(end.split(".")[0].title(), "%d-%b-%Y;%H:%M:%S")
    return RadarImage(values, "mm per 5 min", time, grid, "KNMI RAD_NL25_RAP")


def read_fmi_pgm(path):
    """An FMI composite (gzipped 8-bit PGM) in dBZ, as a `RadarImage`; no-data (255) is NaN."""
    from PIL import Image

    try:
        with gzip.open(path, "rb") as file:
            content = file.read()
        raw = np.asarray(Image.open(io.BytesIO(content)))
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} is not a gzipped PGM radar file ({error}).") from None
    dbz = raw.astype(np.float32) * np.float32(0.5) - np.float32(32)
    dbz[raw == 255] = np.nan
    comments = dict(_pgm_comments(content))
    grid = {"projection": comments.get("projection_name"), "shape": tuple(raw.shape)}
    if "metersperpixel_x" in comments:
        grid["pixel_size_km"] = float(comments["metersperpixel_x"]) / 1000
    time = _parse_time(comments.get("obstime", ""), "%Y%m%d%H%M")
    return RadarImage(dbz, "dBZ", time, grid, "FMI composite (lowest)")


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_time(text, pattern):
    try:
        return datetime.datetime.strptime(text.strip(), pattern)
    except ValueError:
        return None


def _pgm_comments(content):
    """`(key, value)` of the `# key value` lines of a PGM header."""
    for line in content[:4096].split(b"\n"):
        if line.startswith(b"# "):
            key, _, value = line[2:].decode("ascii", "replace").partition(" ")
            yield key, value.strip()


def rain_depth_to_pixel(mm_per_5min):
    """mm per 5 min -> mm/h -> dBZ (Z = 256 R^1.42) -> pixel; NaN -> 0."""
    depth = np.nan_to_num(np.asarray(mm_per_5min, np.float32), nan=0.0)
    return rain_to_pixel(np.maximum(depth, 0) * 12.0, "dwd").astype(np.float32)


def resize(frame, size):
    """Bilinear resize of one float frame to `size x size`."""
    from PIL import Image

    if frame.shape == (size, size):
        return frame.astype(np.float32)
    image = Image.fromarray(frame.astype(np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.BILINEAR), np.float32)


# === Data sets ===


def _time_windows(times, length, frame_stride, window_stride):
    """Starts of windows whose frames are `frame_stride` steps of 5 min apart."""
    position = {time: index for index, time in enumerate(times)}
    starts = []
    for index, time in enumerate(times):
        steps = [time + k * frame_stride * FIVE_MINUTES for k in range(length)]
        if all(step in position for step in steps):
            if not starts or index - starts[-1][0] >= window_stride:
                starts.append((index, [position[s] for s in steps]))
    return [frames for _, frames in starts]


class RadarSequences(SequenceDataset):
    """Real 5-minute radar sequences from KNMI (Netherlands) or FMI (Finland).

    Frames are converted to MS-RNN's pixel scale, resized to `frame_size`
    squared and cut into windows of frames `frame_stride` x 5 min apart.
    The split is by time: frames before `split_time` (by default the time
    that leaves `train_fraction` of the frames before it) are training data,
    the rest test; no window crosses the split or a gap.

    Args:
        source: `"knmi"` (`RAD_NL25_RAP_5min_YYYYmmddHHMM.h5`, mm per 5 min)
            or `"fmi"` (`YYYYmmddHHMM_fmi...pgm.gz`, dBZ, in any subfolders).
        split: `"train"` or `"test"`.
        data_dir: folder of the files. Defaults to
            `$KERAS_MSRNN_DATA/radar_<source>`.
        frame_size: int. Defaults to 128.
        frame_stride: int. 5-minute steps between frames. Defaults to 1.
        window_stride: int. Frames between window starts. Defaults to 1.
        train_fraction: float. Defaults to 0.7.
        **kwargs: `SequenceDataset` arguments; lengths default to 5 -> 5.

    Example:

    ```python
    train = keras_msrnn.datasets.RadarSequences("knmi", "train", data_dir="radar_knmi")
    ```
    """

    radar = True  # frames are rain on the dBZ pixel scale (keras_msrnn.radar_units)
    pixel_units = describe("dwd")

    PATTERNS = {
        "knmi": (r"RAD_NL25_RAP_5min_(\d{12})\.h5$", read_knmi, rain_depth_to_pixel),
        "fmi": (r"(\d{12})_fmi\..*\.pgm\.gz$", read_fmi_pgm, dbz_to_pixel),
    }

    def __init__(
        self,
        source="knmi",
        split="train",
        data_dir=None,
        frame_size=128,
        frame_stride=1,
        window_stride=1,
        train_fraction=0.7,
        split_time=None,
        **kwargs,
    ):
        kwargs.setdefault("input_length", 5)
        kwargs.setdefault("output_length", 5)
        super().__init__(**kwargs)
        if source not in self.PATTERNS:
            raise ValueError(
                f"`source` must be one of {tuple(self.PATTERNS)}. Received: source={source!r}"
            )
        if split not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
        pattern, reader, to_pixel = self.PATTERNS[source]
        data_dir = data_dir or default_data_dir(f"radar_{source}")
        files = {}
        for path in glob.glob(os.path.join(data_dir, "**", "*"), recursive=True):
            match = re.search(pattern, os.path.basename(path))
            if match:
                files[datetime.datetime.strptime(match[1], "%Y%m%d%H%M")] = path
        if not files:
            raise FileNotFoundError(
                f"Radar ({source}): no files matching {pattern!r} in {os.path.abspath(data_dir)}. "
                "Put the radar files there, or pass data_dir=."
            )
        times = sorted(files)
        if split_time is None:
            split_time = times[int(train_fraction * len(times))]
        times = [t for t in times if (t < split_time) == (split == "train")]
        self.frame_size = positive_int("frame_size", frame_size)
        self.source, self.split, self.split_time = source, split, split_time
        self.times = times
        self.frames = np.stack(
            [resize(to_pixel(reader(files[t]).data), self.frame_size) for t in times]
        )[..., None]
        self.windows = _time_windows(
            times,
            self.sequence_length,
            positive_int("frame_stride", frame_stride),
            positive_int("window_stride", window_stride),
        )
        if not self.windows:
            raise ValueError(
                f"Radar ({source}, {split}): {len(times)} frames give no window of "
                f"{self.sequence_length} "
                f"frames {frame_stride * 5} min apart."
            )

    @property
    def num_sequences(self):
        return len(self.windows)

    def load_sequences(self, indices, epoch=0):
        return np.stack([self.frames[self.windows[i]] for i in indices])


class RadarGermany(SequenceDataset):
    """MS-RNN's Germany set from RainNet's `RYDL.hdf5` (DWD RADOLAN RY).

    `RYDL.hdf5` maps timestamp keys to 900x900 rain depths in mm per 5 min;
    `RYDL_keys.txt` lists the keys as a Python literal, their first four
    characters being the year. The MS-RNN protocol: mm/5min -> mm/h -> dBZ
    -> pixel scale, frames every 30 min (every 6th key), 5 -> 5,
    non-overlapping windows, resized to 124x124; years 2006-2014 train,
    2015 valid, 2016-2017 test. Frames are read lazily.

    Args:
        split: `"train"`, `"valid"` or `"test"`.
        data_dir: folder with `RYDL.hdf5` and `RYDL_keys.txt`. Defaults to
            `$KERAS_MSRNN_DATA/radar_germany`.
        frame_size: int. Defaults to 124.
        frame_stride: int. Keys between frames. Defaults to 6 (30 min).
        **kwargs: `SequenceDataset` arguments; lengths default to 5 -> 5.
    """

    radar = True  # frames are rain on the dBZ pixel scale (keras_msrnn.radar_units)
    pixel_units = describe("dwd")

    YEARS = {"train": range(2006, 2015), "valid": range(2015, 2016), "test": range(2016, 2018)}

    def __init__(self, split="train", data_dir=None, frame_size=124, frame_stride=6, **kwargs):
        kwargs.setdefault("input_length", 5)
        kwargs.setdefault("output_length", 5)
        super().__init__(**kwargs)
        if split not in self.YEARS:
            raise ValueError(
                f"`split` must be one of {tuple(self.YEARS)}. Received: split={split!r}"
            )
        data_dir = data_dir or default_data_dir("radar_germany")
        self.path, keys_path = require_files(
            data_dir,
            ["RYDL.hdf5", "RYDL_keys.txt"],
            "RadarGermany",
            hint=" (RainNet's training data, Zenodo)",
        )
        with open(keys_path) as file:
            try:
                keys = ast.literal_eval(file.read())
            except (SyntaxError, ValueError) as error:
                raise ValueError(f"{keys_path} is not a Python list of keys ({error}).") from None
        years = self.YEARS[split]
        self.keys = [str(k) for k in keys if str(k)[:4].isdigit() and int(str(k)[:4]) in years]
        self.frame_size = positive_int("frame_size", frame_size)
        self.frame_stride = positive_int("frame_stride", frame_stride)
        span = self.sequence_length * self.frame_stride
        self.starts = list(range(0, len(self.keys) - span + 1, span))
        self._file = None

    @property
    def num_sequences(self):
        return len(self.starts)

    def _frame(self, key):
        import h5py

        if self._file is None:
            self._file = h5py.File(self.path, "r")
        if key not in self._file:
            raise ValueError(f"{self.path} has no frame {key!r} listed in RYDL_keys.txt.")
        frame = np.asarray(self._file[key], np.float32)
        if frame.ndim != 2:
            raise ValueError(f"{self.path}: frame {key!r} has shape {frame.shape}, expected 2-D.")
        return resize(rain_depth_to_pixel(frame), self.frame_size)

    def load_sequences(self, indices, epoch=0):
        stride = self.frame_stride
        return np.stack(
            [
                np.stack(
                    [
                        self._frame(k)
                        for k in self.keys[s : s + self.sequence_length * stride : stride]
                    ]
                )
                for s in (self.starts[i] for i in indices)
            ]
        )[..., None]
