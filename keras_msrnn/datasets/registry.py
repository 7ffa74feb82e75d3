"""The data sets by name: the one table the command line, recipes and evaluation share."""

from __future__ import annotations

from keras_msrnn.datasets.base import SequenceDataset
from keras_msrnn.datasets.kth import KTH
from keras_msrnn.datasets.moving_mnist import MovingMNIST
from keras_msrnn.datasets.radar import RadarGermany, RadarSequences
from keras_msrnn.datasets.taxibj import TaxiBJ

# name -> (class, fixed arguments)
DATASETS = {
    "moving_mnist": (MovingMNIST, {}),
    "taxibj": (TaxiBJ, {}),
    "kth": (KTH, {}),
    "radar_germany": (RadarGermany, {}),
    "radar_knmi": (RadarSequences, {"source": "knmi"}),
    "radar_fmi": (RadarSequences, {"source": "fmi"}),
}


def dataset_names() -> list[str]:
    return list(DATASETS)


def get_dataset(name: str, split: str = "train", **options) -> SequenceDataset:
    """The data set `name` (see `dataset_names()`) for `split`.

    Example:

    ```python
    test = keras_msrnn.datasets.get_dataset("moving_mnist", "test", max_sequences=1000)
    ```
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose from {', '.join(DATASETS)}.")
    dataset_class, fixed = DATASETS[name]
    try:
        return dataset_class(split=split, **fixed, **options)
    except TypeError as error:  # an option this data set does not take
        raise ValueError(f"Dataset {name!r}: {error}") from None
