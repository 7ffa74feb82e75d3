"""Forecast metrics as plain numpy functions, for offline evaluation.

Every function takes `y_true` and `y_pred` (Keras order) shaped
`(batch, time, height, width, channels)` with values on the `[0, 1]` pixel
scale and returns one value per `(batch, time)` frame; averaging over
samples and frames is left to `ForecastEvaluation`. Definitions follow the
MS-RNN evaluation code (`util/evaluation.py`); the OpenSTL/skimage SSIM is
available through `ssim(..., convention="openstl")`.
"""

import numpy as np

from keras_msrnn.metrics import formulas
from keras_msrnn.radar_units import rain_to_pixel

RAIN_THRESHOLDS_MM_H = (0.5, 2.0, 5.0, 10.0, 30.0)
BALANCING_WEIGHTS = (1, 1, 2, 5, 10, 30)


def _check_pair(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.shape != y_true.shape or y_pred.ndim != 5:
        raise ValueError(
            "y_true and y_pred must both be (batch, time, height, width, channels); "
            f"got {y_true.shape} and {y_pred.shape}."
        )
    return y_true, y_pred


def frame_mse(y_true, y_pred):
    """Sum of squared errors over each frame's pixels and channels, `(B, T)`."""
    return formulas.frame_mse(*_check_pair(y_true, y_pred), np)


def frame_mae(y_true, y_pred):
    """Sum of absolute errors over each frame's pixels and channels, `(B, T)`."""
    return formulas.frame_mae(*_check_pair(y_true, y_pred), np)


def psnr(y_true, y_pred):
    """`10 log10(1 / (mean squared error + 1e-5))` per frame (data range 1)."""
    return formulas.psnr(*_check_pair(y_true, y_pred), np)


def gradient_difference(y_true, y_pred):
    """GDL: summed differences of absolute forward differences, `(B, T)`."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    total = 0.0
    for axis in (2, 3):
        difference = np.abs(np.diff(y_pred, axis=axis)) - np.abs(np.diff(y_true, axis=axis))
        total = total + np.sum(np.abs(difference), axis=(2, 3, 4))
    return total


def gaussian_window(size, sigma):
    """The normalised 2-D Gaussian of the TF/HKO SSIM (`_FSpecialGauss`)."""
    offset = 0.5 if size % 2 == 0 else 0.0
    radius = size // 2
    coords = np.arange(-radius, radius + 1 - (size % 2 == 0)) + offset
    window = np.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2.0 * sigma**2))
    return window / window.sum()


def _valid_filter(images, window):
    """'valid' correlation of `(N, H, W, C)` images with a 2-D window."""
    size = window.shape[0]
    patches = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    return np.einsum("nhwcij,ij->nhwc", patches, window)


SSIM_CONVENTIONS = ("msrnn", "openstl")


def ssim_window(convention, height, width):
    """`(window, covariance scale, data range)` of an SSIM convention for a frame size."""
    if convention not in SSIM_CONVENTIONS:
        raise ValueError(
            f"`convention` must be one of {SSIM_CONVENTIONS}. Received: {convention!r}"
        )
    if convention == "msrnn":
        size = min(11, height, width)
        return gaussian_window(size, size * 1.5 / 11), 1.0, 1.0
    size = 7
    if min(height, width) < size:
        raise ValueError(f"OpenSTL SSIM needs frames of at least 7x7; got {height}x{width}.")
    return np.full((size, size), 1.0 / size**2), size**2 / (size**2 - 1.0), 2.0


def ssim(y_true, y_pred, convention="msrnn", data_range=None):
    """Mean structural similarity per frame, `(B, T)`.

    Args:
        convention: `"msrnn"`: the TF/HKO single-scale SSIM of the MS-RNN
            code: an 11x11 Gaussian window (sigma 1.5; shrunk for frames
            smaller than 11), 'valid' filtering, data range 1.
            `"openstl"`: skimage's `structural_similarity` as OpenSTL calls
            it: a 7x7 uniform window, sample covariance, and data range 2
            (skimage's old default for float images, which OpenSTL relied
            on).
        data_range: overrides the convention's data range.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    batch, time, height, width, channels = y_pred.shape
    window, covariance_scale, default_range = ssim_window(convention, height, width)
    data_range = default_range if data_range is None else data_range
    x = y_pred.reshape(-1, height, width, channels).astype(np.float64)
    y = y_true.reshape(-1, height, width, channels).astype(np.float64)
    similarity = formulas.ssim_map(
        x, y, lambda images: _valid_filter(images, window), covariance_scale, data_range
    )
    return similarity.mean(axis=(1, 2, 3)).reshape(batch, time)


def pixel_thresholds(convention="dwd", thresholds_mm_h=RAIN_THRESHOLDS_MM_H):
    return rain_to_pixel(np.asarray(thresholds_mm_h), convention)


def balancing_weights(truth, convention="dwd"):
    """Per-pixel B-MSE weights from the true pixel value's rain class."""
    classes = np.searchsorted(pixel_thresholds(convention), np.asarray(truth), side="right")
    return np.asarray(BALANCING_WEIGHTS, np.float32)[classes]


def balanced_mse(y_true, y_pred, convention="dwd"):
    y_true, y_pred = _check_pair(y_true, y_pred)
    return formulas.weighted_frame_mse(y_true, y_pred, balancing_weights(y_true, convention), np)


def balanced_mae(y_true, y_pred, convention="dwd"):
    y_true, y_pred = _check_pair(y_true, y_pred)
    return formulas.weighted_frame_mae(y_true, y_pred, balancing_weights(y_true, convention), np)


def contingency_counts(y_true, y_pred, convention="dwd"):
    """Hits, misses, false alarms, correct negatives, each `(B, T, thresholds)`."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    thresholds = pixel_thresholds(convention)
    predicted = (y_pred[..., None] >= thresholds).astype(np.int64)
    observed = (y_true[..., None] >= thresholds).astype(np.int64)
    return formulas.contingency(predicted, observed, formulas.FRAME_AXES, np)


FSS_WINDOW = 5  # pixels: the neighbourhood of the fractions skill score


def _box_mean(images, window):
    """Mean over a `window x window` neighbourhood, zero outside the frame ("same" size)."""
    pad = window // 2
    padded = np.pad(
        images, [(0, 0), (0, 0), (pad + 1, pad), (pad + 1, pad)] + [(0, 0)] * (images.ndim - 4)
    )
    sums = padded.cumsum(axis=2).cumsum(axis=3)
    height, width = images.shape[2:4]
    box = (
        sums[:, :, window:, window:]
        - sums[:, :, :-window, window:]
        - sums[:, :, window:, :-window]
        + sums[:, :, :-window, :-window]
    )
    return box[:, :, :height, :width] / window**2


def fss_terms(y_true, y_pred, convention="dwd", window=FSS_WINDOW):
    """The fractions skill score's sums per frame and threshold, `(2, B, T, thresholds)`.

    FSS = 1 - sum((F - O)^2) / (sum(F^2) + sum(O^2)), with F and O the
    fractions of forecast and observed pixels above a rain threshold within
    a `window x window` neighbourhood (Roberts and Lean, 2008). Returns the
    numerator and denominator so that they can be summed over sequences.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    thresholds = pixel_thresholds(convention)
    observed = _box_mean((y_true[..., None] >= thresholds).astype(np.float64), window)
    forecast = _box_mean((y_pred[..., None] >= thresholds).astype(np.float64), window)
    numerator = np.sum((forecast - observed) ** 2, axis=formulas.FRAME_AXES)
    denominator = np.sum(forecast**2 + observed**2, axis=formulas.FRAME_AXES)
    return np.stack([numerator, denominator])


def fss(y_true, y_pred, convention="dwd", window=FSS_WINDOW):
    """Fractions skill score per frame and threshold, `(B, T, thresholds)`; NaN where no rain."""
    numerator, denominator = fss_terms(y_true, y_pred, convention, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - numerator / denominator


def skill_scores(hits, misses, false_alarms, correct_negatives):
    """POD, FAR, CSI, HSS from (summed) contingency counts; NaN where undefined."""
    tp, fn, fp, tn = (
        np.asarray(v, np.float64) for v in (hits, misses, false_alarms, correct_negatives)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "pod": tp / (tp + fn),
            "far": fp / (tp + fp),
            "csi": tp / (tp + fn + fp),
            "hss": 2 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)),
        }


PER_FRAME_METRICS = {
    "mse": frame_mse,
    "mae": frame_mae,
    "ssim": ssim,
    "psnr": psnr,
    "gdl": gradient_difference,
}


class ForecastEvaluation:
    """Accumulates per-frame metrics over a test set, as the MS-RNN code does.

    Each per-frame metric is summed over sequences and divided by their
    number; contingency counts are summed over the whole set before the skill
    scores are taken. `results()` gives per-frame curves and the headline
    (mean over frames, NaN read as 0).

    Args:
        convention: `"dwd"` or `"hko"`, the rain conversion of the
            thresholds (the MS-RNN code uses HKO's for non-radar data).
        ssim_convention: `"msrnn"` or `"openstl"`.
    """

    def __init__(self, convention="hko", ssim_convention="msrnn"):
        pixel_thresholds(convention)  # validates the name
        self.convention = convention
        self.ssim_convention = ssim_convention
        self.count = 0
        self.sums = {}
        self.contingency = None
        self.fractions = None

    def update(self, y_true, y_pred):
        """Adds a batch of true frames and forecasts (clipped to `[0, 1]` here)."""
        y_true = np.asarray(y_true, np.float32)
        y_pred = np.clip(np.asarray(y_pred, np.float32), 0, 1)
        per_frame = {
            name: fn(y_true, y_pred) for name, fn in PER_FRAME_METRICS.items() if name != "ssim"
        }
        per_frame["ssim"] = ssim(y_true, y_pred, self.ssim_convention)
        per_frame["b_mse"] = balanced_mse(y_true, y_pred, self.convention)
        per_frame["b_mae"] = balanced_mae(y_true, y_pred, self.convention)
        for name, values in per_frame.items():
            self.sums[name] = self.sums.get(name, 0.0) + values.astype(np.float64).sum(axis=0)
        counts = np.stack(
            [c.sum(axis=0) for c in contingency_counts(y_true, y_pred, self.convention)]
        )
        self.contingency = counts if self.contingency is None else self.contingency + counts
        fractions = fss_terms(y_true, y_pred, self.convention).sum(axis=1)
        self.fractions = fractions if self.fractions is None else self.fractions + fractions
        self.count += y_pred.shape[0]

    def results(self, frames=None):
        """`{"per_frame": {...}, "headline": {...}}`, optionally for a frame slice."""
        if not self.count:
            raise ValueError("No forecasts were added; call update() first.")
        frames = slice(None) if frames is None else frames
        per_frame = {name: total[frames] / self.count for name, total in self.sums.items()}
        per_frame.update(skill_scores(*self.contingency[:, frames]))
        numerator, denominator = self.fractions[:, frames]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_frame["fss"] = 1.0 - numerator / denominator
        thresholds = [f"{t:g}" for t in RAIN_THRESHOLDS_MM_H]
        headline = {}
        for name, curve in per_frame.items():
            mean = np.nan_to_num(curve).mean(axis=0)
            if curve.ndim == 2:
                headline.update({f"{name}_{t}": float(v) for t, v in zip(thresholds, mean)})
            else:
                headline[name] = float(mean)
        return {
            "per_frame": {name: curve.tolist() for name, curve in per_frame.items()},
            "headline": headline,
            "sequences": self.count,
        }
