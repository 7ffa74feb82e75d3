"""Losses of keras_msrnn (`keras_msrnn.losses.MSRNNLoss`, ...)."""

from keras_msrnn.models.losses import MSRNNLoss, frame_mae, frame_mse, msrnn_loss

__all__ = ["MSRNNLoss", "frame_mae", "frame_mse", "msrnn_loss"]
