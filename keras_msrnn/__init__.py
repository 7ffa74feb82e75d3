"""keras-msrnn: multi-scale recurrent spatiotemporal prediction for Keras 3.

Runs on TensorFlow, PyTorch and JAX (chosen by `KERAS_BACKEND`).
"""

from keras_msrnn import cells, losses, ops
from keras_msrnn.models import MSStack
from keras_msrnn.version import __version__

__all__ = ["MSStack", "__version__", "cells", "losses", "ops"]
