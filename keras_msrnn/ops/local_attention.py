"""Windowed local attention (PrecipLSTM), without materialising shifted keys."""

import functools

import keras
from keras import ops


def window_offsets(window):
    """First and last offset of a `window`-wide neighbourhood: -(w//2) .. w-1-w//2."""
    return -(window // 2), window - 1 - window // 2


def _pad(x, window):
    before = -window_offsets(window)[0]
    after = window - 1 - before
    return ops.pad(x, [[0, 0], [before, after], [before, after], [0, 0]])


def _row_shifts(padded, dy, height, width, window):
    """All `window` horizontal shifts of window row `dy`: (B, H, W, window, C).

    One gather instead of `window` slices; it holds a single row of shifts
    and, under remat, exists only transiently in either pass.
    """
    band = padded[:, dy : dy + height]
    columns = ops.arange(width)[:, None] + ops.arange(window)[None, :]
    return ops.take(band, columns, axis=2)


@functools.lru_cache(maxsize=None)
def _score_row(dy, height, width, window):
    """Scores of window row `dy` as a rematerialised function of (query, padded key).

    Under remat the backward pass recomputes the shifted keys instead of
    keeping them. Cached so that each row is one stable function, which JAX
    traces once rather than at every call.
    """

    def scores(query, padded_key):
        shifted = _row_shifts(padded_key, dy, height, width, window)
        return ops.einsum("bhwc,bhwdc->bhwd", query, shifted)

    return keras.remat(scores)


@functools.lru_cache(maxsize=None)
def _value_row(dy, height, width, window):
    """Weighted values of window row `dy`, rematerialised like `_score_row`."""

    def weighted(weights, padded_value):
        shifted = _row_shifts(padded_value, dy, height, width, window)
        row_weights = weights[..., dy * window : (dy + 1) * window]
        return ops.einsum("bhwd,bhwdc->bhwc", row_weights, shifted)

    return keras.remat(weighted)


def local_attention_scores(query, key, window):
    """Dot products of each pixel's query with the keys of its window.

    Returns `(B, H, W, window**2)`; entry `(dy + w//2) * window + (dx + w//2)`
    is `sum_c query[y, x, c] * key[y + dy, x + dx, c]`, zero outside the image.
    """
    height, width = query.shape[1:3]
    padded_key = _pad(key, window)
    rows = [_score_row(dy, height, width, window)(query, padded_key) for dy in range(window)]
    return ops.concatenate(rows, axis=-1)


def local_attention_values(weights, value, window):
    """Sums each window's values weighted by `weights` `(B, H, W, window**2)`."""
    height, width = value.shape[1:3]
    padded_value = _pad(value, window)
    total = _value_row(0, height, width, window)(weights, padded_value)
    for dy in range(1, window):
        total = total + _value_row(dy, height, width, window)(weights, padded_value)
    return total


def local_attention(query, key, value, window=30):
    """Softmax attention of each pixel over the `window x window` pixels around it.

    As PrecipLSTM's `img_local_att` extension: offsets `-(w//2) .. w-1-w//2`
    (asymmetric for even windows), no `1/sqrt(d)` scaling, and positions
    outside the image act as zero keys and values, so their score 0 still
    counts in the softmax. Memory stays near the size of the score map
    `(B, H, W, window**2)` in the forward and the backward pass: shifted keys
    and values exist only one window row (`window` shifts) at a time and are
    recomputed for the gradient.

    Args:
        query, key, value: tensors `(batch, height, width, channels)`.
        window: int. Width of the square neighbourhood. Defaults to 30.

    Returns:
        `(batch, height, width, channels)`.
    """
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"`window` must be a positive int. Received: window={window!r}")
    scores = local_attention_scores(query, key, window)
    weights = ops.softmax(scores, axis=-1)
    return local_attention_values(weights, value, window)
