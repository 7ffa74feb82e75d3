"""keras-msrnn: multi-scale recurrent spatiotemporal prediction for Keras 3.

Runs on TensorFlow, PyTorch and JAX (chosen by `KERAS_BACKEND`).
"""

from keras_msrnn import cells, datasets, losses, metrics, ops
from keras_msrnn.evaluation import evaluate
from keras_msrnn.models import MSStack
from keras_msrnn.presets import from_preset, list_presets, save_to_preset, upload_preset
from keras_msrnn.version import __version__

__all__ = [
    "MSStack",
    "__version__",
    "cells",
    "datasets",
    "evaluate",
    "from_preset",
    "list_presets",
    "losses",
    "metrics",
    "ops",
    "save_to_preset",
    "upload_preset",
]
