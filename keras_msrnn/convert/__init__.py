"""Import of checkpoints from other implementations."""

from keras_msrnn.convert.msrnn import from_msrnn, msrnn_variable, to_keras_layout, to_msrnn_layout
from keras_msrnn.convert.openstl import from_openstl

__all__ = ["from_msrnn", "from_openstl", "msrnn_variable", "to_keras_layout", "to_msrnn_layout"]
