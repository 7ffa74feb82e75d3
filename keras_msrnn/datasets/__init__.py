"""Spatiotemporal data sets as `keras.utils.PyDataset`s.

Every data set yields `((context, future), future)` batches of float32
frames in `[0, 1]`, channels-last, so `model.fit(dataset)` works on every
backend.
"""

from keras_msrnn.datasets.arrays import FrameWindows
from keras_msrnn.datasets.base import SequenceDataset
from keras_msrnn.datasets.kth import KTH
from keras_msrnn.datasets.moving_mnist import MovingMNIST
from keras_msrnn.datasets.radar import (
    RadarGermany,
    RadarImage,
    RadarSequences,
    read_fmi_pgm,
    read_knmi,
    read_radolan_ry,
)
from keras_msrnn.datasets.registry import DATASETS, dataset_names, get_dataset
from keras_msrnn.datasets.taxibj import TaxiBJ

__all__ = [
    "DATASETS",
    "KTH",
    "FrameWindows",
    "MovingMNIST",
    "RadarGermany",
    "RadarImage",
    "RadarSequences",
    "SequenceDataset",
    "TaxiBJ",
    "dataset_names",
    "get_dataset",
    "read_fmi_pgm",
    "read_knmi",
    "read_radolan_ry",
]
