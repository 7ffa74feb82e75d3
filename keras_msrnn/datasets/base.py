"""The batching contract shared by every keras_msrnn data set."""

import math
import os

import keras
import numpy as np

from keras_msrnn.frames import to_unit_frames
from keras_msrnn.validation import positive_int  # noqa: F401 - also the data sets' import

DATA_DIR_VARIABLE = "KERAS_MSRNN_DATA"


def default_data_dir(name):
    """`$KERAS_MSRNN_DATA/<name>`, else `~/.keras/datasets/keras_msrnn/<name>`."""
    root = os.environ.get(DATA_DIR_VARIABLE) or os.path.join(
        os.path.expanduser("~"), ".keras", "datasets", "keras_msrnn"
    )
    return os.path.join(root, name)


def require_files(data_dir, file_names, dataset, hint=""):
    """Paths of `file_names` in `data_dir`; names every missing one if any are."""
    paths = [os.path.join(data_dir, name) for name in file_names]
    missing = [name for name, path in zip(file_names, paths) if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(
            f"{dataset}: missing {', '.join(missing)} in {os.path.abspath(data_dir)}. "
            f"Put the files there (or pass `data_dir=`){hint}."
        )
    return paths


class SequenceDataset(keras.utils.PyDataset):
    """Batches `((context, future), future)` of float32 frames in `[0, 1]`.

    Subclasses provide `num_sequences` and `load_sequences(indices, epoch)`,
    which returns `(len(indices), input_length + output_length, H, W, C)`
    frames as uint8 (scaled by 1/255) or as floats already in `[0, 1]`.
    `epoch` is the epoch the sequences are read for: generated data sets
    draw from it, stored ones ignore it.

    Batch `index` of epoch `epoch` is a pure function of the two
    (`batch(index, epoch)`), whatever was read before, so a resumed training
    run reads exactly the batches an uninterrupted one would.

    Args:
        batch_size: int. Sequences per batch.
        input_length: int. Context frames per sequence.
        output_length: int. Future frames per sequence.
        shuffle: bool. Reshuffle the sequence order every epoch.
        seed: int. Seed of the shuffling (and of any random generation).
        drop_remainder: bool. Drop the last incomplete batch.
        max_sequences: int. Use only the first `max_sequences` sequences
            (in the data set's order), e.g. to evaluate on part of a test
            split.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).
    """

    radar = False  # radar data sets: rain-rate scores apply (keras_msrnn.evaluate)

    def __init__(
        self,
        batch_size=16,
        input_length=10,
        output_length=10,
        shuffle=False,
        seed=None,
        drop_remainder=False,
        max_sequences=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_sequences = (
            None if max_sequences is None else positive_int("max_sequences", max_sequences)
        )
        self.batch_size = positive_int("batch_size", batch_size)
        self.input_length = positive_int("input_length", input_length)
        self.output_length = positive_int("output_length", output_length)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_remainder = bool(drop_remainder)
        self.epoch = 0
        self._order = None

    @property
    def sequence_length(self):
        return self.input_length + self.output_length

    @property
    def num_sequences(self):
        raise NotImplementedError

    def load_sequences(self, indices, epoch=0):
        raise NotImplementedError

    @property
    def sequence_count(self):
        """Sequences this data set yields: `num_sequences`, capped by `max_sequences`."""
        return (
            self.num_sequences
            if self.max_sequences is None
            else min(self.max_sequences, self.num_sequences)
        )

    def __len__(self):
        rounding = math.floor if self.drop_remainder else math.ceil
        return int(rounding(self.sequence_count / self.batch_size))

    def _sequence_order(self, epoch):
        if not self.shuffle:
            return None
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng(None if self.seed is None else [self.seed, epoch])
            self._order = (epoch, rng.permutation(self.sequence_count))
        return self._order[1]

    def batch_indices(self, index, epoch=None):
        """Sequence indices of batch `index` of `epoch` (default: the current one)."""
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} out of range for {len(self)} batches.")
        epoch = self.epoch if epoch is None else epoch
        start = index * self.batch_size
        stop = min(start + self.batch_size, self.sequence_count)
        order = self._sequence_order(epoch)
        return np.arange(start, stop) if order is None else order[start:stop]

    def batch(self, index, epoch):
        """Batch `index` of epoch `epoch`: `((context, future), future)`."""
        frames = to_unit_frames(
            self.load_sequences(self.batch_indices(index, epoch), epoch), type(self).__name__
        )
        context = frames[:, : self.input_length]
        future = frames[:, self.input_length : self.sequence_length]
        return (context, future), future

    def __getitem__(self, index):
        return self.batch(index, self.epoch)

    def on_epoch_end(self):
        self.epoch += 1

    def as_numpy(self, max_sequences=None):
        """All sequences (or the first `max_sequences`) as one float32 array."""
        count = (
            self.sequence_count
            if max_sequences is None
            else min(max_sequences, self.sequence_count)
        )
        return to_unit_frames(
            self.load_sequences(np.arange(count), self.epoch), type(self).__name__
        )

    def as_tf_dataset(self):
        """The same batches as a prefetching `tf.data.Dataset` (needs TensorFlow installed)."""
        from keras_msrnn.backend.tf_data import as_tf_dataset

        return as_tf_dataset(self)
