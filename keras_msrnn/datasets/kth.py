"""KTH human actions: grey 160x120 videos of 25 people doing 6 actions."""

import os
import re

import numpy as np

from keras_msrnn.datasets.base import SequenceDataset, default_data_dir, positive_int

CLASSES = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
TRAIN_PERSONS = range(1, 17)
TEST_PERSONS = range(17, 26)
SEQUENCE_INDEX = "00sequences.txt"
_VIDEO_NAME = re.compile(r"^person(?P<person>\d\d)_(?P<action>[a-z]+)_d(?P<scenario>\d)(_uncomp)?$")

# Window start steps: MS-RNN's only-run lists (3 for running, 10 otherwise),
# and OpenSTL's (3 for jogging and running, the window length otherwise).
PROTOCOLS = {
    "msrnn": {
        "classes": ("jogging", "running", "walking"),
        "steps": {"running": 3},
        "default_step": 10,
    },
    "openstl": {"classes": CLASSES, "steps": {"jogging": 3, "running": 3}, "default_step": None},
}


def parse_sequence_index(path):
    """`{video: [(first, last), ...]}` (1-based, inclusive) from `00sequences.txt`."""
    intervals = {}
    with open(path) as file:
        for line in file:
            parts = line.split("frames")
            if len(parts) != 2:
                continue
            ranges = re.findall(r"(\d+)\s*-\s*(\d+)", parts[1])
            intervals[parts[0].strip()] = [(int(a), int(b)) for a, b in ranges]
    return intervals


def _resize_gray(frame, frame_size):
    import cv2

    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(frame, (frame_size, frame_size), interpolation=cv2.INTER_AREA)


def read_video(path, frame_size):
    """All frames of an .avi (or a folder of PNG/JPG frames) as `(T, S, S)` uint8."""
    try:
        import cv2
    except ImportError:
        raise RuntimeError(
            "Reading KTH videos needs OpenCV: pip install 'keras-msrnn[video]'."
        ) from None
    if os.path.isdir(path):
        names = sorted(
            (n for n in os.listdir(path) if n.lower().endswith((".png", ".jpg", ".jpeg"))),
            key=lambda n: int(re.sub(r"\D", "", n) or 0),
        )
        frames = [cv2.imread(os.path.join(path, n), cv2.IMREAD_GRAYSCALE) for n in names]
    else:
        capture = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
    if not frames or any(f is None for f in frames):
        raise ValueError(f"{path} could not be decoded (no frames or an unreadable image).")
    return np.stack([_resize_gray(f, frame_size) for f in frames])


class KTH(SequenceDataset):
    """KTH actions with the person split 1-16 (train) / 17-25 (test).

    Videos are read from `data_dir` as `<class>/personXX_<class>_dY[_uncomp].avi`
    or as frame folders `<class>/personXX_<class>_dY/<k>.png` (MS-RNN's
    `kth_160_png` export, or OpenSTL's `image_XXXX.jpg`). Frames are made
    grey and resized to `frame_size` squared (stretching 160x120, as both
    protocols do). With `00sequences.txt` in `data_dir`, windows stay inside
    the official subsequence intervals; otherwise they span whole videos.

    - `protocol="msrnn"`: jogging, running, walking; 88x88; 10 -> 10; window
      starts every 3 frames (running) or 10 (jogging, walking).
    - `protocol="openstl"`: all six classes; 128x128; 10 -> 20; starts every
      3 frames (jogging, running) or every window length (the others).

    Args:
        split: `"train"` or `"test"`.
        protocol: `"msrnn"` or `"openstl"`; sets the defaults below.
        data_dir: the KTH folder. Defaults to `$KERAS_MSRNN_DATA/kth`.
        classes: actions to keep (defaults to the protocol's).
        frame_size: int. Output height and width.
        **kwargs: `SequenceDataset` arguments.
    """

    def __init__(
        self,
        split="train",
        protocol="msrnn",
        data_dir=None,
        classes=None,
        frame_size=None,
        **kwargs,
    ):
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"`protocol` must be one of {tuple(PROTOCOLS)}. Received: protocol={protocol!r}"
            )
        kwargs.setdefault("input_length", 10)
        kwargs.setdefault("output_length", 10 if protocol == "msrnn" else 20)
        super().__init__(**kwargs)
        if split not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test'. Received: split={split!r}")
        rules = PROTOCOLS[protocol]
        self.classes = tuple(classes or rules["classes"])
        unknown = set(self.classes) - set(CLASSES)
        if unknown:
            raise ValueError(f"Unknown KTH classes {sorted(unknown)}; choose from {CLASSES}.")
        self.frame_size = positive_int(
            "frame_size", frame_size or (88 if protocol == "msrnn" else 128)
        )
        self.split, self.protocol = split, protocol
        data_dir = data_dir or default_data_dir("kth")
        persons = set(TRAIN_PERSONS if split == "train" else TEST_PERSONS)
        self.videos = self._find_videos(data_dir, persons)
        if not self.videos:
            raise FileNotFoundError(
                f"KTH: no videos of classes {list(self.classes)} for persons "
                f"{min(persons)}-{max(persons)} "
                f"in {os.path.abspath(data_dir)}. Put <class>/personXX_<class>_dY_uncomp.avi files "
                "(or frame folders) there, or pass data_dir=."
            )
        index_path = os.path.join(data_dir, SEQUENCE_INDEX)
        intervals = parse_sequence_index(index_path) if os.path.exists(index_path) else {}
        self.frames, self.windows = [], []
        for name, action, path in self.videos:
            frames = read_video(path, self.frame_size)
            step = rules["steps"].get(action, rules["default_step"] or self.sequence_length)
            for first, last in intervals.get(name, [(1, len(frames))]):
                last = min(last, len(frames))
                for start in range(first - 1, last - self.sequence_length + 1, step):
                    self.windows.append((len(self.frames), start))
            self.frames.append(frames)

    def _find_videos(self, data_dir, persons):
        videos = []
        for action in self.classes:
            folder = os.path.join(data_dir, action)
            if not os.path.isdir(folder):
                continue
            for entry in sorted(os.listdir(folder)):
                stem = entry[:-4] if entry.endswith(".avi") else entry
                match = _VIDEO_NAME.match(stem)
                if match and match["action"] == action and int(match["person"]) in persons:
                    name = stem.replace("_uncomp", "")
                    videos.append((name, action, os.path.join(folder, entry)))
        return videos

    @property
    def num_sequences(self):
        return len(self.windows)

    def load_sequences(self, indices, epoch=0):
        return np.stack(
            [
                self.frames[v][s : s + self.sequence_length]
                for v, s in (self.windows[i] for i in indices)
            ]
        )[..., None]
