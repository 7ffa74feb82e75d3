"""keras-msrnn: multi-scale recurrent spatiotemporal prediction for Keras 3.

Runs on TensorFlow, PyTorch and JAX (chosen by `KERAS_BACKEND`).
"""

from keras_msrnn import (
    cells,
    convert,
    datasets,
    frames,
    losses,
    metrics,
    models,
    ops,
    presets,
    recipes,
    training,
)
from keras_msrnn.evaluation import evaluate
from keras_msrnn.models import MSStack
from keras_msrnn.presets import (
    PresetError,
    from_preset,
    list_presets,
    publish_zoo,
    save_to_preset,
    upload_preset,
)
from keras_msrnn.version import __version__

__all__ = [
    "MSStack",
    "PresetError",
    "__version__",
    "cells",
    "convert",
    "datasets",
    "evaluate",
    "frames",
    "from_preset",
    "list_presets",
    "losses",
    "metrics",
    "models",
    "ops",
    "presets",
    "publish_zoo",
    "recipes",
    "save_to_preset",
    "training",
    "upload_preset",
]
