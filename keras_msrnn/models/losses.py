"""Frame losses of spatiotemporal prediction."""

import keras
from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.metrics import formulas


def _as_tensors(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    return ops.convert_to_tensor(y_true, dtype=y_pred.dtype), y_pred


def frame_mse(y_true, y_pred):
    """Per-frame sum of squared errors, `(B, T)`: the field's "MSE per frame"."""
    return formulas.frame_mse(*_as_tensors(y_true, y_pred), ops)


def frame_mae(y_true, y_pred):
    """Per-frame sum of absolute errors, `(B, T)`: the field's "MAE per frame"."""
    return formulas.frame_mae(*_as_tensors(y_true, y_pred), ops)


def msrnn_loss(y_true, y_pred):
    """MS-RNN training loss per frame: `frame_mse + frame_mae`, shape `(B, T)`."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    return frame_mse(y_true, y_pred) + frame_mae(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-frame mean of squared errors, `(B, T)`: OpenSTL's training loss."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    return ops.mean(ops.square(y_pred - y_true), axis=(2, 3, 4))


@keras_msrnn_export
class MSRNNLoss(keras.losses.Loss):
    """The MS-RNN loss: per-frame pixel-sum MSE plus per-frame pixel-sum MAE.

    With `d = y_pred - y_true` over frames `(B, T, H, W, C)` the loss is
    `mean over (B, T) of [sum over (H, W, C) of d**2 + sum of |d|]`, exactly
    the reference's `loss.py`. Predictions are not clipped.

    Args:
        reduction: Keras loss reduction over the `(B, T)` per-frame values.
            Defaults to `"sum_over_batch_size"`, the mean over frames and
            samples.
        name: name of the loss.

    Example:

    ```python
    model.compile(optimizer="adam", loss=keras_msrnn.losses.MSRNNLoss())
    ```

    Reference:
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010), `loss.py` of
       the authors' code.
    """

    def __init__(self, reduction="sum_over_batch_size", name="msrnn_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def call(self, y_true, y_pred):
        return msrnn_loss(y_true, y_pred)
