"""Import of checkpoints from other implementations."""

from keras_msrnn.convert.msrnn import from_msrnn

__all__ = ["from_msrnn"]
