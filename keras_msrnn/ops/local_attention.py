"""Windowed local attention (PrecipLSTM) as a few large matrix products.

Each pixel attends to the `window x window` pixels around it. Looping over
the `window**2` offsets (or over `window` rows of them) makes hundreds of
small operations per call, which is what made PrecipLSTM's training step
60-300 times ConvLSTM's. Here the window is a mask on batched matrix
products instead:

- small images (the usual case inside a multi-scale stack or after patching):
  one dense product of every pixel with every pixel, masked to the window;
- larger images: square tiles of queries, each against the keys of the
  region its windows cover, with one static mask shared by all tiles.

Both compute exactly PrecipLSTM's `img_local_att` result (see
`local_attention`); only the order of the floating-point sums differs.
"""

import functools

import numpy as np
from keras import ops

from keras_msrnn.validation import positive_int


def window_offsets(window):
    """First and last offset of a `window`-wide neighbourhood: -(w//2) .. w-1-w//2."""
    return -(window // 2), window - 1 - window // 2


def tile_size(window):
    """Side of the query tiles of the tiled algorithm.

    A tile of side `t` reads a key region of side `t + window - 1`: half the
    window keeps both the key copies (`(region / t)**2`) and the masked
    scores (`(region / window)**2` of the window's) about twice the minimum.
    """
    return max(1, (window + 1) // 2)


def uses_dense_attention(height, width, window):
    """Whether the dense product reads no more keys per pixel than the tiles."""
    return height * width <= (tile_size(window) + window - 1) ** 2


def _pad(x, window, extra_height=0, extra_width=0):
    before, last = window_offsets(window)
    before = -before
    return ops.pad(x, [[0, 0], [before, last + extra_height], [before, last + extra_width], [0, 0]])


def _horizontal_shifts(x, window):
    """The `window` horizontal shifts of `x` padded for the window.

    `(B, H, W, C) -> (B, H + window - 1, W, window, C)`; window row `dy` is
    then the slice `[:, dy : dy + H]`.
    """
    width = x.shape[2]
    padded = _pad(x, window)
    return ops.stack([padded[:, :, dx : dx + width] for dx in range(window)], axis=3)


def local_attention_scores(query, key, window):
    """Dot products of each pixel's query with the keys of its window.

    Meant for inspecting attention maps; `local_attention` does not call it.

    Args:
        query, key: tensors `(batch, height, width, channels)`.
        window: int. Width of the square neighbourhood.

    Returns:
        `(batch, height, width, window**2)`; entry `(dy + w//2) * window +
        (dx + w//2)` is `sum_c query[y, x, c] * key[y + dy, x + dx, c]`, zero
        outside the image.
    """
    positive_int("window", window)
    height = query.shape[1]
    key_shifts = _horizontal_shifts(key, window)
    return ops.concatenate(
        [
            ops.einsum("bhwc,bhwdc->bhwd", query, key_shifts[:, dy : dy + height])
            for dy in range(window)
        ],
        axis=-1,
    )


def _in_window(query_rows, query_columns, key_rows, key_columns, first, last):
    """`(queries, keys)` booleans: key offset from query within [first, last] on both axes."""
    row_offsets = key_rows[None, :] - query_rows[:, None]
    column_offsets = key_columns[None, :] - query_columns[:, None]
    return (
        (row_offsets >= first)
        & (row_offsets <= last)
        & (column_offsets >= first)
        & (column_offsets <= last)
    )


@functools.cache
def _dense_logit_bias(height, width, window):
    """The dense product's mask, and the logit of each pixel's positions outside the image.

    Returns `(mask, outside)`: `mask` `(P, P)` is 0 where a pixel is in a
    query's window and -inf elsewhere. Outside the image the keys and values
    are zeros: each such position adds `exp(0)` to the softmax and nothing to
    the sum, so all of a query's outside positions are one extra logit
    `outside = log(count)` `(P, 1)` with a zero value (-inf where the window
    lies inside the image).
    """
    rows, columns = np.divmod(np.arange(height * width), width)
    inside = _in_window(rows, columns, rows, columns, *window_offsets(window))
    with np.errstate(divide="ignore"):
        outside = np.log(window * window - inside.sum(axis=1, keepdims=True))
    return np.where(inside, 0.0, -np.inf).astype("float32"), outside.astype("float32")


def _dense_attention(query, key, value, window):
    batch, height, width, channels = query.shape
    pixels = height * width
    query, key, value = (ops.reshape(x, (-1, pixels, channels)) for x in (query, key, value))
    mask, outside = (
        ops.convert_to_tensor(bias, query.dtype)
        for bias in _dense_logit_bias(height, width, window)
    )
    scores = ops.matmul(query, ops.transpose(key, (0, 2, 1))) + mask
    # The softmax with the outside logit written out, so that the scores are
    # never padded with it nor sliced back, and the normalisation divides the
    # output instead of the weights; the shift cancels, so no gradient.
    shift = ops.stop_gradient(ops.maximum(ops.max(scores, axis=-1, keepdims=True), outside))
    exponentials = ops.exp(scores - shift)
    total = ops.sum(exponentials, axis=-1, keepdims=True) + ops.exp(outside - shift)
    attended = ops.matmul(exponentials, value) / total
    return ops.reshape(attended, (-1, height, width, channels))


@functools.cache
def _tile_logit_bias(tile, window):
    """0 where a key of the tile's region is in a query's window, else -inf."""
    region = tile + window - 1
    query_rows, query_columns = np.divmod(np.arange(tile * tile), tile)
    key_rows, key_columns = np.divmod(np.arange(region * region), region)
    # Region coordinates are padded-image coordinates relative to the tile,
    # so a query's window starts at its own index.
    inside = _in_window(query_rows, query_columns, key_rows, key_columns, 0, window - 1)
    return np.where(inside, 0.0, -np.inf).astype("float32")


def _to_tiles(x, tile):
    """`(B, T*ny, T*nx, C) -> (B*ny*nx, T*T, C)`."""
    height, width, channels = x.shape[1:]
    x = ops.reshape(x, (-1, height // tile, tile, width // tile, tile, channels))
    return ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, tile * tile, channels))


def _from_tiles(x, tile, tiles_down, tiles_across):
    channels = x.shape[-1]
    x = ops.reshape(x, (-1, tiles_down, tiles_across, tile, tile, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, tiles_down * tile, tiles_across * tile, channels))


def _key_regions(x, window, tile, tiles_down, tiles_across):
    """The zero-padded region each query tile's windows cover, `(B*ny*nx, R*R, C)`."""
    height, width, channels = x.shape[1:]
    region = tile + window - 1
    padded = _pad(x, window, tiles_down * tile - height, tiles_across * tile - width)
    strips = ops.stack([padded[:, y * tile : y * tile + region] for y in range(tiles_down)], axis=1)
    regions = ops.stack(
        [strips[:, :, :, x * tile : x * tile + region] for x in range(tiles_across)], axis=2
    )
    return ops.reshape(regions, (-1, region * region, channels))


def _tiled_attention(query, key, value, window, tile):
    height, width = query.shape[1:3]
    tiles_down, tiles_across = -(-height // tile), -(-width // tile)
    query = ops.pad(
        query, [[0, 0], [0, tiles_down * tile - height], [0, tiles_across * tile - width], [0, 0]]
    )
    key, value = (_key_regions(x, window, tile, tiles_down, tiles_across) for x in (key, value))
    scores = ops.matmul(_to_tiles(query, tile), ops.transpose(key, (0, 2, 1)))
    bias = ops.convert_to_tensor(_tile_logit_bias(tile, window), scores.dtype)
    attended = ops.matmul(ops.softmax(scores + bias, axis=-1), value)
    return _from_tiles(attended, tile, tiles_down, tiles_across)[:, :height, :width]


def local_attention(query, key, value, window=30):
    """Softmax attention of each pixel over the `window x window` pixels around it.

    As PrecipLSTM's `img_local_att` extension: offsets `-(w//2) .. w-1-w//2`
    (asymmetric for even windows), no `1/sqrt(d)` scaling, and positions
    outside the image act as zero keys and values, so their score 0 still
    counts in the softmax.

    Images of at most `(tile_size(window) + window - 1)**2` pixels (44x44
    for the default window) take one dense product masked to the window;
    larger ones are cut into query tiles of side `tile_size(window)`, each
    against its key region. The tiled form keeps about two window-sized
    score maps per pixel and about eight copies of K and V, never the
    `window**2` shifted copies.

    Args:
        query, key, value: tensors `(batch, height, width, channels)`.
        window: int. Width of the square neighbourhood. Defaults to 30.

    Returns:
        `(batch, height, width, channels)`.

    Example:

    ```python
    x = keras.random.uniform((2, 16, 16, 8))
    y = keras_msrnn.ops.local_attention(x, x, x, window=5)
    ```
    """
    positive_int("window", window)
    height, width = query.shape[1:3]
    if uses_dense_attention(height, width, window):
        return _dense_attention(query, key, value, window)
    return _tiled_attention(query, key, value, window, tile_size(window))
