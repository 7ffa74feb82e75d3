"""Moving MNIST: two bouncing MNIST digits on a 64x64 canvas."""

import gzip
import os
import struct

import numpy as np

from keras_msrnn.datasets.base import (
    SequenceDataset,
    default_data_dir,
    positive_int,
    require_files,
)

MNIST_FILES = {
    "train": "train-images-idx3-ubyte.gz",
    "test": "t10k-images-idx3-ubyte.gz",
}
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MNIST_TEST_SEQ_URL = "http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy"
TEST_SPLIT_SEED = 20260
MSRNN_TRAIN_FRACTION = 0.7


def read_idx_images(path):
    """MNIST images `(N, 28, 28)` uint8 from an IDX file, gzipped or not."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable IDX file ({error}).") from error
    if len(data) < 16:
        raise ValueError(f"{path} is truncated: {len(data)} bytes, no IDX header.")
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x803:
        raise ValueError(f"{path} is not an IDX image file (magic {magic:#x}, expected 0x803).")
    expected = 16 + count * rows * cols
    if len(data) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: {len(data)} bytes, the header promises {expected}."
        )
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


def read_sequence_file(path):
    """Frames `(N, T, 64, 64)` from `mnist_test_seq.npy` (stored as `(T, N, 64, 64)`)."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable .npy file ({error}).") from error
    if array.ndim != 4 or array.dtype != np.uint8:
        raise ValueError(
            f"{path} must hold uint8 frames shaped (time, sequences, height, width) like "
            f"mnist_test_seq.npy; found {array.dtype} {array.shape}."
        )
    return np.swapaxes(array, 0, 1)


def bouncing_trajectories(position, velocity, length, canvas):
    """Top-left corners `(..., length, 2)` of digits bouncing in the frame.

    The OpenSTL rule: positions live in the unit square and move by a
    constant `velocity` per frame; a coordinate leaving `[0, 1]` is clamped
    and its velocity flips; pixel corners are `int(canvas * position)`,
    taken after each step.
    """
    corners = np.empty(position.shape[:-1] + (length, 2), np.int64)
    for step in range(length):
        position = position + velocity
        outside = (position <= 0) | (position >= 1)
        velocity = np.where(outside, -velocity, velocity)
        position = np.clip(position, 0, 1)
        corners[..., step, :] = (canvas * position).astype(np.int64)
    return corners


class MovingMNIST(SequenceDataset):
    """Moving MNIST sequences, generated from the real MNIST digits.

    Each sequence shows two digits of 28x28 bouncing in a 64x64 frame,
    composited with a pixel-wise maximum. `split="train"` draws new random
    sequences from the 60,000 training digits every epoch (`num_sequences`
    per epoch, 10,000 as in OpenSTL); `split="test"` is a fixed set made
    from the 10,000 test digits: sequence `i` is the same on every machine
    and epoch. The motion follows OpenSTL's generator (a step of 3.6 px per
    frame, `speed_range=(3.6, 3.6)`); `speed_range=(2, 6)` draws each digit's
    speed as MS-RNN's generator does.

    `sequences_file=` reads sequences stored in the layout of the standard
    `mnist_test_seq.npy` (`(20, N, 64, 64)` uint8) instead. With
    `split="train"` or `"test"` the file is split 70/30 in its order, as
    the MS-RNN code does; `split="all"` (OpenSTL's test protocol) yields
    every sequence.

    Args:
        split: `"train"`, `"test"` or, with `sequences_file`, `"all"`.
        data_dir: folder with `train-images-idx3-ubyte.gz` and
            `t10k-images-idx3-ubyte.gz`. Defaults to
            `$KERAS_MSRNN_DATA/moving_mnist` or
            `~/.keras/datasets/keras_msrnn/moving_mnist`.
        sequences_file: path of an `mnist_test_seq.npy`-style file.
        num_sequences: sequences per epoch (generated data only).
            Defaults to 10,000.
        frame_size: int. Canvas height and width. Defaults to 64.
        num_digits: int. Digits per sequence. Defaults to 2.
        speed_range: (low, high) speed in pixels per frame.
        download: bool. Fetch the MNIST files when they are missing.
        **kwargs: `SequenceDataset` arguments: `batch_size`, `input_length`,
            `output_length`, `shuffle`, `seed`, `drop_remainder`.

    Example:

    ```python
    train = keras_msrnn.datasets.MovingMNIST("train", batch_size=16)
    test = keras_msrnn.datasets.MovingMNIST("test", batch_size=16)
    model.fit(train, validation_data=test, epochs=10)
    ```

    Reference:
     - [Srivastava et al., 2015](https://arxiv.org/abs/1502.04681)
    """

    def __init__(
        self,
        split="train",
        data_dir=None,
        sequences_file=None,
        num_sequences=10000,
        frame_size=64,
        num_digits=2,
        speed_range=(3.6, 3.6),
        download=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        splits = ("train", "test", "all") if sequences_file else ("train", "test")
        if split not in splits:
            raise ValueError(f"`split` must be one of {splits}. Received: split={split!r}")
        self.split = split
        self.frame_size = positive_int("frame_size", frame_size)
        self.num_digits = positive_int("num_digits", num_digits)
        low, high = speed_range
        if not 0 < low <= high:
            raise ValueError(
                f"`speed_range` must be (low, high) with 0 < low <= high. Received: {speed_range!r}"
            )
        self.speed_range = (float(low), float(high))
        if sequences_file is not None:
            self.sequences = self._split_file(read_sequence_file(sequences_file), split)
            self.digits = None
            self._num_sequences = len(self.sequences)
            if self.sequences.shape[1] < self.sequence_length:
                raise ValueError(
                    f"{sequences_file} holds {self.sequences.shape[1]} frames per sequence; "
                    f"input_length + output_length = {self.sequence_length}."
                )
        else:
            self.sequences = None
            data_dir = data_dir or default_data_dir("moving_mnist")
            if download:
                _download_mnist(data_dir)
            (path,) = require_files(
                data_dir,
                [MNIST_FILES[split]],
                "MovingMNIST",
                hint=f" or pass download=True to fetch them from {MNIST_URL}",
            )
            self.digits = read_idx_images(path)
            if self.digits.shape[1] > self.frame_size:
                raise ValueError(f"`frame_size` must be at least {self.digits.shape[1]}.")
            self._num_sequences = positive_int("num_sequences", num_sequences)

    @staticmethod
    def _split_file(sequences, split):
        boundary = int(MSRNN_TRAIN_FRACTION * len(sequences))
        return {"train": sequences[:boundary], "test": sequences[boundary:], "all": sequences}[
            split
        ]

    @property
    def num_sequences(self):
        return self._num_sequences

    def _rng_keys(self, indices, epoch):
        if self.split == "test":
            return [[TEST_SPLIT_SEED, int(i)] for i in indices]
        if self.seed is None:
            return [None] * len(indices)
        return [[self.seed, epoch, int(i)] for i in indices]

    def load_sequences(self, indices, epoch=0):
        if self.sequences is not None:
            return np.asarray(self.sequences[indices, : self.sequence_length])[..., None]
        return self.generate(self._rng_keys(indices, epoch))

    def generate(self, rng_keys):
        """Sequences `(len(rng_keys), T, H, W, 1)` uint8, one per generator key."""
        digit_size = self.digits.shape[1]
        canvas = self.frame_size - digit_size
        shape = (len(rng_keys), self.num_digits)
        chosen = np.empty(shape, np.int64)
        position, theta, speed = np.empty(shape + (2,)), np.empty(shape), np.empty(shape)
        for sample, key in enumerate(rng_keys):
            rng = np.random.default_rng(key)
            chosen[sample] = rng.integers(0, len(self.digits), self.num_digits)
            position[sample] = rng.random((self.num_digits, 2))
            theta[sample] = rng.random(self.num_digits) * 2 * np.pi
            speed[sample] = rng.uniform(*self.speed_range, size=self.num_digits)
        velocity = np.stack([np.sin(theta), np.cos(theta)], -1) * (speed / canvas)[..., None]
        corners = bouncing_trajectories(position, velocity, self.sequence_length, canvas)
        frames = np.zeros(
            (len(rng_keys), self.sequence_length, self.frame_size, self.frame_size), np.uint8
        )
        for sample, digit in np.ndindex(*shape):
            image = self.digits[chosen[sample, digit]]
            for step, (top, left) in enumerate(corners[sample, digit]):
                window = frames[sample, step, top : top + digit_size, left : left + digit_size]
                np.maximum(window, image, out=window)
        return frames[..., None]


def _download_mnist(data_dir):
    import keras

    os.makedirs(data_dir, exist_ok=True)
    for name in MNIST_FILES.values():
        if not os.path.exists(os.path.join(data_dir, name)):
            keras.utils.get_file(name, MNIST_URL + name, cache_dir=data_dir, cache_subdir="")
