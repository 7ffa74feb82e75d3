"""Forecast metrics: stateful Keras metrics and numpy functions.

Per-frame MSE and MAE are sums over a frame's pixels (the field's
convention); SSIM comes in the MS-RNN (Gaussian 11x11) and OpenSTL
(skimage) conventions; radar skill scores use mm/h thresholds converted
with Germany's or HKO's Z-R relation.
"""

from keras_msrnn.metrics.keras_metrics import (
    PSNR,
    SSIM,
    CriticalSuccessIndex,
    FrameMAE,
    FrameMSE,
)
from keras_msrnn.metrics.numpy_metrics import (
    RAIN_THRESHOLDS_MM_H,
    ForecastEvaluation,
    balanced_mae,
    balanced_mse,
    balancing_weights,
    contingency_counts,
    frame_mae,
    frame_mse,
    fss,
    gradient_difference,
    pixel_thresholds,
    psnr,
    rain_to_pixel,
    skill_scores,
    ssim,
)

__all__ = [
    "PSNR",
    "RAIN_THRESHOLDS_MM_H",
    "SSIM",
    "CriticalSuccessIndex",
    "ForecastEvaluation",
    "FrameMAE",
    "FrameMSE",
    "balanced_mae",
    "balanced_mse",
    "balancing_weights",
    "contingency_counts",
    "frame_mae",
    "frame_mse",
    "fss",
    "gradient_difference",
    "pixel_thresholds",
    "psnr",
    "rain_to_pixel",
    "skill_scores",
    "ssim",
]
