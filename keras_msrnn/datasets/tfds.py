"""TensorFlow Datasets: builders of this library's data sets, and a reader of TFDS videos.

Importing this module registers one TFDS builder per data set of
`keras_msrnn.datasets` (needs `pip install "keras-msrnn[tfds]"`):

| TFDS name | data set | splits | files in the manual folder |
|---|---|---|---|
| `msrnn_moving_mnist` | `MovingMNIST` | train, test | MNIST's image IDX files |
| `msrnn_taxibj` | `TaxiBJ` | train, test | `BJ13_M32x32_T30_InOut.h5` ... `BJ16_...` |
| `msrnn_kth` | `KTH` | train, test | the KTH videos (and `00sequences.txt`) |
| `msrnn_radar_germany` | `RadarGermany` | train, valid, test | `RYDL.hdf5`, `RYDL_keys.txt` |
| `msrnn_radar_knmi` | `RadarSequences(source="knmi")` | train, test | KNMI HDF5 scans |
| `msrnn_radar_fmi` | `RadarSequences(source="fmi")` | train, test | FMI PGM scans |

Every example is one window, `{"frames": (input_length + output_length,
height, width, channels) float32 in [0, 1]}`, exactly the frames
`keras_msrnn.datasets.get_dataset(name, split, ...)` yields, in its order.
The data stay where they are: TFDS reads them from its manual folder, which
for these builders is the folder the `keras_msrnn.datasets` class reads.

Example:

```python
import tensorflow_datasets as tfds
import keras_msrnn.datasets.tfds  # registers the builders

test = tfds.load(
    "msrnn_moving_mnist",
    split="test",
    download_and_prepare_kwargs={
        "download_config": tfds.download.DownloadConfig(manual_dir="mnist/")
    },
)
batches = keras_msrnn.datasets.tfds.from_tfds(test, input_length=10, output_length=10)
```

The default configuration, `msrnn`, is MS-RNN's protocol of the data set
(`keras_msrnn.recipes.DATASETS`: lengths and options); pass
`config=WindowConfig(...)` to `tfds.builder` for others.
"""

from __future__ import annotations

import dataclasses

import numpy as np

try:
    import tensorflow as tf
    import tensorflow_datasets as tfds
except ImportError:
    raise ImportError(
        'keras_msrnn.datasets.tfds needs TensorFlow Datasets: pip install "keras-msrnn[tfds]".'
    ) from None

from keras_msrnn import recipes
from keras_msrnn.datasets.registry import DATASETS, get_dataset
from keras_msrnn.frames import to_unit_frames
from keras_msrnn.validation import positive_int

# Sequences read from the data set class per call while generating examples.
READ_CHUNK = 64
SPLITS = {"radar_germany": ("train", "valid", "test")}
FILES = {
    "moving_mnist": "MNIST's train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz",
    "taxibj": "TaxiBJ's BJ13..BJ16_M32x32_T30_InOut.h5 and BJ_Holiday.txt",
    "kth": "KTH's videos (walking, jogging, running ... *.avi) and 00sequences.txt",
    "radar_germany": "RainNet's RYDL.hdf5 and RYDL_keys.txt",
    "radar_knmi": "KNMI's RAD_NL25_RAP_5min_*.h5 scans",
    "radar_fmi": "FMI's dated folders of PGM scans",
}


@dataclasses.dataclass
class WindowConfig(tfds.core.BuilderConfig):
    """Which windows a builder writes.

    Args:
        input_length: int. Context frames of a window.
        output_length: int. Future frames of a window.
        max_sequences: int. Write only the first `max_sequences` windows
            of each split (None: all).
        seed: int. Seed of generated data (Moving MNIST's training
            sequences), so that a rebuild writes the same examples.
        options: dict. More arguments of the `keras_msrnn.datasets` class
            (e.g. `{"speed_range": (2, 6)}` for Moving MNIST).
    """

    input_length: int = 10
    output_length: int = 10
    max_sequences: int | None = None
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)


def protocol_config(dataset_name):
    """The `msrnn` configuration: MS-RNN's lengths and options for the data set."""
    for protocol in recipes.DATASETS.values():
        if protocol.dataset["name"] == dataset_name:
            options = {
                key: value
                for key, value in protocol.dataset["config"].items()
                if key != "num_sequences"  # the training pass size, not a split's size
            }
            return WindowConfig(
                name="msrnn",
                description=f"MS-RNN's protocol: {protocol.title}.",
                input_length=protocol.input_length,
                output_length=protocol.output_length,
                options=options,
            )
    return WindowConfig(
        name="msrnn", description="5 -> 5, the radar protocol.", input_length=5, output_length=5
    )


class KerasMSRNNBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The TFDS builder of one `keras_msrnn.datasets` data set (`DATASET_NAME`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Windows of keras_msrnn.datasets."}
    DATASET_NAME = None

    def _info(self):
        config = self.builder_config
        length = config.input_length + config.output_length
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "frames": tfds.features.Tensor(
                        shape=(length, None, None, None),
                        dtype=np.float32,
                        encoding=tfds.features.Encoding.ZLIB,
                    )
                }
            ),
            supervised_keys=None,
            disable_shuffling=True,  # the order of keras_msrnn.datasets
            homepage="https://arxiv.org/abs/2206.03010",
        )

    def _split_generators(self, dl_manager):
        data_dir = str(dl_manager.manual_dir)
        return {
            split: self._generate_examples(data_dir, split)
            for split in SPLITS.get(self.DATASET_NAME, ("train", "test"))
        }

    def _generate_examples(self, data_dir, split):
        config = self.builder_config
        dataset = get_dataset(
            self.DATASET_NAME,
            split,
            data_dir=data_dir,
            input_length=config.input_length,  # the data set class checks them
            output_length=config.output_length,
            max_sequences=config.max_sequences,
            seed=config.seed,
            **config.options,
        )
        source = f"{self.name} {split}"
        for start in range(0, dataset.sequence_count, READ_CHUNK):
            indices = np.arange(start, min(start + READ_CHUNK, dataset.sequence_count))
            frames = to_unit_frames(dataset.load_sequences(indices), source)
            for index, window in zip(indices, frames):
                yield int(index), {"frames": window}


def _make_builder(dataset_name):
    class_name = "Msrnn" + "".join(part.title() for part in dataset_name.split("_"))
    return type(
        class_name,
        (KerasMSRNNBuilder,),
        {
            "DATASET_NAME": dataset_name,
            "BUILDER_CONFIGS": [protocol_config(dataset_name)],
            "MANUAL_DOWNLOAD_INSTRUCTIONS": (
                f"Put {FILES[dataset_name]} in the manual folder (the folder "
                f"keras_msrnn.datasets reads for {dataset_name!r}) and pass it as "
                "DownloadConfig(manual_dir=...)."
            ),
            "__doc__": f"`keras_msrnn.datasets` {dataset_name!r} as a TFDS data set.",
            "__module__": __name__,
        },
    )


BUILDERS = {name: _make_builder(name) for name in DATASETS}
globals().update({builder.__name__: builder for builder in BUILDERS.values()})


def video_feature(element_spec, feature=None):
    """The name of the video feature of a TFDS example spec.

    A video is a `(time, height, width, channels)` tensor. With `feature`
    given, that entry is checked; else the example must hold exactly one.

    Raises:
        ValueError: one line naming the problem and the example's features.
    """
    if not isinstance(element_spec, dict):
        raise ValueError(
            "from_tfds reads examples that are dicts of features (tfds.load without "
            f"as_supervised); got elements of {element_spec}."
        )
    shapes = {name: spec.shape for name, spec in element_spec.items() if hasattr(spec, "shape")}
    described = ", ".join(f"{name} {tuple(shape)}" for name, shape in shapes.items())
    if feature is not None:
        if feature not in shapes or shapes[feature].rank != 4:
            raise ValueError(
                f"Feature {feature!r} is not a (time, height, width, channels) video; the "
                f"examples hold: {described}."
            )
        return feature
    videos = [name for name, shape in shapes.items() if shape.rank == 4]
    if len(videos) != 1:
        found = "no" if not videos else f"{len(videos)}"
        raise ValueError(
            f"The examples hold {found} (time, height, width, channels) videos; name one with "
            f"`feature=`. Features: {described}."
        )
    return videos[0]


def from_tfds(
    dataset,
    input_length,
    output_length,
    batch_size=16,
    feature=None,
    window_shift=None,
    split="train",
    drop_remainder=False,
):
    """TFDS videos as this library's `((context, future), future)` batches.

    Every video of `dataset` is cut into windows of `input_length +
    output_length` frames, `window_shift` frames apart (videos too short for
    one window give none); frames become float32 in `[0, 1]` (uint8 divided
    by 255, floats as they are). The result feeds `model.fit` and
    `model.evaluate` on every backend.

    Args:
        dataset: a `tf.data.Dataset` of TFDS examples (`tfds.load(...)`), or
            a TFDS name, loaded with `split`.
        input_length: int. Context frames.
        output_length: int. Future frames.
        batch_size: int. Windows per batch.
        feature: str. The video feature; needed only where the examples
            hold several (TFDS's `moving_mnist`: `image_sequence`).
        window_shift: int. Frames between window starts. Defaults to the
            window length (windows do not overlap).
        split: str. The split to load when `dataset` is a name.
        drop_remainder: bool. Drop the last incomplete batch.

    Returns:
        A batched, prefetching `tf.data.Dataset`.

    Example:

    ```python
    import tensorflow_datasets as tfds
    from keras_msrnn.datasets.tfds import from_tfds

    test = from_tfds(tfds.load("moving_mnist", split="test"), 10, 10, batch_size=8)
    model.evaluate(test)
    ```
    """
    if isinstance(dataset, str):
        dataset = tfds.load(dataset, split=split)
    input_length = positive_int("input_length", input_length)
    output_length = positive_int("output_length", output_length)
    batch_size = positive_int("batch_size", batch_size)
    length = input_length + output_length
    shift = length if window_shift is None else positive_int("window_shift", window_shift)
    name = video_feature(dataset.element_spec, feature)
    dtype = dataset.element_spec[name].dtype
    if not (dtype == tf.uint8 or dtype.is_floating):
        raise ValueError(f"Feature {name!r} holds {dtype.name} frames; expected uint8 or floats.")
    divisor = 255.0 if dtype == tf.uint8 else 1.0  # as keras_msrnn.frames.to_unit_frames

    def windows(example):
        frames = tf.cast(example[name], tf.float32) / divisor
        return tf.data.Dataset.from_tensor_slices(
            tf.signal.frame(frames, length, shift, axis=0, pad_end=False)
        )

    def split_window(frames):
        future = frames[:, input_length:]
        return (frames[:, :input_length], future), future

    return (
        dataset.flat_map(windows)
        .batch(batch_size, drop_remainder=drop_remainder)
        .map(split_window, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
