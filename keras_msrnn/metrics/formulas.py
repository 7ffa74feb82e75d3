"""Every forecast formula, written once for numpy arrays and Keras tensors.

Each function takes `xp`, the array namespace: `numpy` for offline
evaluation (`keras_msrnn.metrics.numpy_metrics`) or `keras.ops` for losses
and stateful metrics (`keras_msrnn.losses`, `keras_msrnn.metrics.FrameMSE`,
...). Frames are `(batch, time, height, width, channels)`; per-frame values
are `(batch, time)`. Arguments come in Keras order, `(y_true, y_pred)`.
"""

import math

FRAME_AXES = (2, 3, 4)
PSNR_EPSILON = 1e-5  # MS-RNN's, which keeps a perfect frame finite


def frame_mse(y_true, y_pred, xp):
    """Sum of squared errors over each frame's pixels and channels (the field's "MSE")."""
    return xp.sum(xp.square(y_pred - y_true), axis=FRAME_AXES)


def frame_mae(y_true, y_pred, xp):
    """Sum of absolute errors over each frame's pixels and channels (the field's "MAE")."""
    return xp.sum(xp.abs(y_pred - y_true), axis=FRAME_AXES)


def weighted_frame_mse(y_true, y_pred, weights, xp):
    """`frame_mse` with a weight per pixel (B-MSE)."""
    return xp.sum(weights * xp.square(y_pred - y_true), axis=FRAME_AXES)


def weighted_frame_mae(y_true, y_pred, weights, xp):
    """`frame_mae` with a weight per pixel (B-MAE)."""
    return xp.sum(weights * xp.abs(y_pred - y_true), axis=FRAME_AXES)


def psnr(y_true, y_pred, xp):
    """`10 log10(1 / (mean squared error + 1e-5))` per frame, data range 1."""
    mse = xp.mean(xp.square(y_pred - y_true), axis=FRAME_AXES)
    return (10.0 / math.log(10.0)) * xp.log(1.0 / (mse + PSNR_EPSILON))


def ssim_map(x, y, local_mean, covariance_scale, data_range):
    """The SSIM map of images `x` and `y` given their windowed mean `local_mean`.

    `covariance_scale` turns population into sample (co)variances where a
    convention asks for it; `data_range` sets the stabilising constants.
    """
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = covariance_scale * (local_mean(x * x) - mu_x * mu_x)
    var_y = covariance_scale * (local_mean(y * y) - mu_y * mu_y)
    cov = covariance_scale * (local_mean(x * y) - mu_x * mu_y)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )


def contingency(predicted, observed, axis, xp):
    """Hits, misses, false alarms and correct negatives of boolean-valued floats."""
    return (
        xp.sum(predicted * observed, axis=axis),
        xp.sum((1 - predicted) * observed, axis=axis),
        xp.sum(predicted * (1 - observed), axis=axis),
        xp.sum((1 - predicted) * (1 - observed), axis=axis),
    )
