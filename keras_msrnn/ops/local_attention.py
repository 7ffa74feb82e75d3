"""Windowed local attention (PrecipLSTM), without materialising shifted keys."""

import functools

from keras import ops

from keras_msrnn.backend.remat import remat
from keras_msrnn.validation import positive_int


def window_offsets(window):
    """First and last offset of a `window`-wide neighbourhood: -(w//2) .. w-1-w//2."""
    return -(window // 2), window - 1 - window // 2


def _pad(x, window):
    before = -window_offsets(window)[0]
    after = window - 1 - before
    return ops.pad(x, [[0, 0], [before, after], [before, after], [0, 0]])


def _horizontal_shifts(x, window):
    """The `window` horizontal shifts of `x` padded for the window.

    `(B, H, W, C) -> (B, H + window - 1, W, window, C)`; window row `dy` is
    then the slice `[:, dy : dy + H]`. This holds `window` shifted copies, not
    `window**2`.
    """
    height, width = x.shape[1:3]
    padded = _pad(x, window)
    return ops.stack([padded[:, :, dx : dx + width] for dx in range(window)], axis=3)


@functools.cache
def _score_row(dy, height):
    """Scores of window row `dy`, `(B, H, W, window)`.

    Rematerialised so that the backward pass re-slices the shifts instead of
    keeping a copy of each row's slice (which TensorFlow would otherwise do).
    Cached so that each row is one stable function that JAX traces once.
    """

    def scores(query, key_shifts):
        return ops.einsum("bhwc,bhwdc->bhwd", query, key_shifts[:, dy : dy + height])

    return remat(scores)


@functools.cache
def _value_row(dy, height, window):
    """Weighted values of window row `dy`, rematerialised like `_score_row`."""

    def weighted(weights, value_shifts):
        row_weights = weights[..., dy * window : (dy + 1) * window]
        return ops.einsum("bhwd,bhwdc->bhwc", row_weights, value_shifts[:, dy : dy + height])

    return remat(weighted)


def local_attention_scores(query, key, window):
    """Dot products of each pixel's query with the keys of its window.

    Returns `(B, H, W, window**2)`; entry `(dy + w//2) * window + (dx + w//2)`
    is `sum_c query[y, x, c] * key[y + dy, x + dx, c]`, zero outside the image.
    """
    height = query.shape[1]
    key_shifts = _horizontal_shifts(key, window)
    return ops.concatenate(
        [_score_row(dy, height)(query, key_shifts) for dy in range(window)], axis=-1
    )


def local_attention_values(weights, value, window):
    """Sums each window's values weighted by `weights` `(B, H, W, window**2)`."""
    height = value.shape[1]
    value_shifts = _horizontal_shifts(value, window)
    total = _value_row(0, height, window)(weights, value_shifts)
    for dy in range(1, window):
        total = total + _value_row(dy, height, window)(weights, value_shifts)
    return total


def local_attention(query, key, value, window=30):
    """Softmax attention of each pixel over the `window x window` pixels around it.

    As PrecipLSTM's `img_local_att` extension: offsets `-(w//2) .. w-1-w//2`
    (asymmetric for even windows), no `1/sqrt(d)` scaling, and positions
    outside the image act as zero keys and values, so their score 0 still
    counts in the softmax. Keys and values are shifted `window` times (along
    the width), never `window**2` times: each window row is a slice of those
    shifts, re-sliced rather than stored for the gradient. Peak memory is
    about `2 * window` copies of K and V plus two score maps
    `(B, H, W, window**2)`.

    Args:
        query, key, value: tensors `(batch, height, width, channels)`.
        window: int. Width of the square neighbourhood. Defaults to 30.

    Returns:
        `(batch, height, width, channels)`.
    """
    positive_int("window", window)
    scores = local_attention_scores(query, key, window)
    weights = ops.softmax(scores, axis=-1)
    return local_attention_values(weights, value, window)
