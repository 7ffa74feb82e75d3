"""Stateful forecast metrics for `model.compile(metrics=...)`, in `keras.ops`.

They share their formulas with `keras_msrnn.metrics.numpy_metrics`
(`keras_msrnn.metrics.formulas`): predictions are clipped to `[0, 1]` first
(as the MS-RNN evaluation does), per-frame values are averaged over samples
and frames, and skill scores are taken from contingency counts summed over
everything seen. `sample_weight` (one weight per sample, `(batch,)`, or
per frame, `(batch, time)`) weights each sample's frames in the average
and each sample's pixels in the counts.
"""

import keras
import numpy as np
from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.metrics import formulas, numpy_metrics
from keras_msrnn.radar_units import rain_to_pixel


def _prepare(y_true, y_pred):
    y_true = ops.cast(y_true, "float32")
    return y_true, ops.clip(ops.cast(y_pred, "float32"), 0.0, 1.0)


def _frame_weights(sample_weight, frame_values):
    """Broadcasts a `(batch,)` or `(batch, time)` sample weight to `(batch, time)`."""
    weights = ops.cast(sample_weight, "float32")
    if len(weights.shape) == 1:
        weights = ops.expand_dims(weights, -1)
    return ops.broadcast_to(weights, ops.shape(frame_values))


class FrameMeanMetric(keras.metrics.Mean):
    """Mean over samples and frames of a per-frame value `(B, T)`."""

    def frame_values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _prepare(y_true, y_pred)
        values = self.frame_values(y_true, y_pred)
        if sample_weight is not None:
            sample_weight = _frame_weights(sample_weight, values)
        return super().update_state(values, sample_weight=sample_weight)


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
        return formulas.frame_mse(y_true, y_pred, ops)


@keras_msrnn_export
class FrameMAE(FrameMeanMetric):
    """Per-frame sum of absolute errors (the field's "MAE"), averaged over frames."""

    def __init__(self, name="frame_mae", **kwargs):
        super().__init__(name=name, **kwargs)

    def frame_values(self, y_true, y_pred):
        return formulas.frame_mae(y_true, y_pred, ops)


@keras_msrnn_export
class PSNR(FrameMeanMetric):
    """Peak signal-to-noise ratio per frame (data range 1, MS-RNN's +1e-5)."""

    def __init__(self, name="psnr", **kwargs):
        super().__init__(name=name, **kwargs)

    def frame_values(self, y_true, y_pred):
        return formulas.psnr(y_true, y_pred, ops)


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
                f"`convention` must be one of {numpy_metrics.SSIM_CONVENTIONS}. Received: "
                f"{convention!r}"
            )
        super().__init__(name=name, **kwargs)
        self.convention = convention

    def frame_values(self, y_true, y_pred):
        batch, time, height, width, channels = ops.shape(y_true)
        window, covariance_scale, data_range = numpy_metrics.ssim_window(
            self.convention, height, width
        )
        kernel = ops.convert_to_tensor(
            np.tile(window[:, :, None, None], (1, 1, channels, 1)).astype("float32")
        )

        def local_mean(images):
            return ops.depthwise_conv(images, kernel, padding="valid")

        x = ops.reshape(y_pred, (-1, height, width, channels))
        y = ops.reshape(y_true, (-1, height, width, channels))
        similarity = formulas.ssim_map(x, y, local_mean, covariance_scale, data_range)
        return ops.reshape(ops.mean(similarity, axis=(1, 2, 3)), (batch, time))

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
        self.pixel_threshold = float(rain_to_pixel(self.threshold, convention))
        self.counts = self.add_variable(shape=(3,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _prepare(y_true, y_pred)
        predicted = ops.cast(y_pred >= self.pixel_threshold, "float32")
        observed = ops.cast(y_true >= self.pixel_threshold, "float32")
        hits, misses, false_alarms, _ = formulas.contingency(
            predicted, observed, formulas.FRAME_AXES, ops
        )
        counts = ops.stack([hits, misses, false_alarms], axis=-1)  # (batch, time, 3)
        if sample_weight is not None:
            counts = counts * ops.expand_dims(_frame_weights(sample_weight, counts[..., 0]), -1)
        self.counts.assign_add(ops.sum(counts, axis=(0, 1)))

    def result(self):
        return ops.divide_no_nan(self.counts[0], ops.sum(self.counts))

    def reset_state(self):
        self.counts.assign(ops.zeros((3,)))

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "convention": self.convention}
