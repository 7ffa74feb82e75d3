"""Stateful forecast metrics for `model.compile(metrics=...)`, in `keras.ops`.

They follow the same definitions as `keras_msrnn.metrics.numpy_metrics`:
predictions are clipped to `[0, 1]` first (as the MS-RNN evaluation does),
per-frame values are averaged over samples and frames, and skill scores are
taken from contingency counts summed over everything seen.
"""

import keras
import numpy as np
from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.metrics import numpy_metrics


def _prepare(y_true, y_pred):
    y_true = ops.cast(y_true, "float32")
    return y_true, ops.clip(ops.cast(y_pred, "float32"), 0.0, 1.0)


class FrameMeanMetric(keras.metrics.Mean):
    """Mean over samples and frames of a per-frame value `(B, T)`."""

    def frame_values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _prepare(y_true, y_pred)
        return super().update_state(self.frame_values(y_true, y_pred))


@keras_msrnn_export
class FrameMSE(FrameMeanMetric):
    """Per-frame sum of squared errors (the field's "MSE"), averaged over frames.

    Example:

    ```python
    model.compile(metrics=[keras_msrnn.metrics.FrameMSE(), keras_msrnn.metrics.SSIM()])
    ```
    """

    def __init__(self, name="frame_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def frame_values(self, y_true, y_pred):
        return ops.sum(ops.square(y_pred - y_true), axis=(2, 3, 4))


@keras_msrnn_export
class FrameMAE(FrameMeanMetric):
    """Per-frame sum of absolute errors (the field's "MAE"), averaged over frames."""

    def __init__(self, name="frame_mae", **kwargs):
        super().__init__(name=name, **kwargs)

    def frame_values(self, y_true, y_pred):
        return ops.sum(ops.abs(y_pred - y_true), axis=(2, 3, 4))


@keras_msrnn_export
class PSNR(FrameMeanMetric):
    """Peak signal-to-noise ratio per frame (data range 1, MS-RNN's +1e-5)."""

    def __init__(self, name="psnr", **kwargs):
        super().__init__(name=name, **kwargs)

    def frame_values(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_pred - y_true), axis=(2, 3, 4))
        return 10.0 * ops.log(1.0 / (mse + 1e-5)) / np.log(10.0)


@keras_msrnn_export
class SSIM(FrameMeanMetric):
    """Structural similarity per frame, in the MS-RNN or OpenSTL convention.

    Args:
        convention: `"msrnn"` (11x11 Gaussian, sigma 1.5, data range 1) or
            `"openstl"` (7x7 uniform window, sample covariance, data
            range 2). See `keras_msrnn.metrics.ssim`.
    """

    def __init__(self, convention="msrnn", name="ssim", **kwargs):
        if convention not in numpy_metrics.SSIM_CONVENTIONS:
            raise ValueError(
                f"`convention` must be one of {numpy_metrics.SSIM_CONVENTIONS}. Received: {convention!r}"
            )
        super().__init__(name=name, **kwargs)
        self.convention = convention

    def frame_values(self, y_true, y_pred):
        batch, time, height, width, channels = ops.shape(y_true)
        window, covariance_scale, data_range = numpy_metrics.ssim_window(self.convention, height, width)
        kernel = ops.convert_to_tensor(
            np.tile(window[:, :, None, None], (1, 1, channels, 1)).astype("float32")
        )

        def local_mean(images):
            return ops.depthwise_conv(images, kernel, padding="valid")

        x = ops.reshape(y_pred, (-1, height, width, channels))
        y = ops.reshape(y_true, (-1, height, width, channels))
        mu_x, mu_y = local_mean(x), local_mean(y)
        var_x = covariance_scale * (local_mean(x * x) - mu_x * mu_x)
        var_y = covariance_scale * (local_mean(y * y) - mu_y * mu_y)
        cov = covariance_scale * (local_mean(x * y) - mu_x * mu_y)
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        )
        return ops.reshape(ops.mean(ssim_map, axis=(1, 2, 3)), (batch, time))

    def get_config(self):
        return {**super().get_config(), "convention": self.convention}


@keras_msrnn_export
class CriticalSuccessIndex(keras.metrics.Metric):
    """CSI = hits / (hits + misses + false alarms) at a rain-rate threshold.

    Counts are summed over all pixels, frames and batches seen.

    Args:
        threshold: float. Rain rate in mm/h, converted to a pixel value.
        convention: `"dwd"` (Germany, Z = 256 R^1.42) or `"hko"`
            (Marshall-Palmer).
    """

    def __init__(self, threshold=0.5, convention="dwd", name=None, **kwargs):
        super().__init__(name=name or f"csi_{threshold:g}", **kwargs)
        self.threshold = float(threshold)
        self.convention = convention
        self.pixel_threshold = float(numpy_metrics.rain_to_pixel(self.threshold, convention))
        self.counts = self.add_variable(shape=(3,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _prepare(y_true, y_pred)
        predicted = ops.cast(y_pred >= self.pixel_threshold, "float32")
        observed = ops.cast(y_true >= self.pixel_threshold, "float32")
        hits = ops.sum(predicted * observed)
        misses = ops.sum((1.0 - predicted) * observed)
        false_alarms = ops.sum(predicted * (1.0 - observed))
        self.counts.assign_add(ops.stack([hits, misses, false_alarms]))

    def result(self):
        return ops.divide_no_nan(self.counts[0], ops.sum(self.counts))

    def reset_state(self):
        self.counts.assign(ops.zeros((3,)))

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "convention": self.convention}
