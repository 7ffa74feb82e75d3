"""Bilinear warping by a flow field, as in TrajGRU and MotionRNN (grid sample)."""

import keras
from keras import ops

from keras_msrnn.backend.warp import grid_sample_warp, has_grid_sample, rematerialises_gather


def warp(images, flows):
    """Samples `images` at positions displaced by `flows`, bilinearly.

    The coordinate convention is the MS-RNN reference's (`models/trajgru.py`
    `warp`, quirk Q1): the displaced grid `(x + u, y + v)` is normalised with
    `W - 1` and `H - 1` but sampled with `align_corners=False`, so pixel
    `(x, y)` reads position
    `x_s = (x + u) W / (W - 1) - 0.5`, `y_s = (y + v) H / (H - 1) - 0.5`,
    with zeros outside the image. Zero flow is therefore not the identity.
    The op is differentiable with respect to both arguments.

    Args:
        images: tensor `(batch, height, width, channels)`.
        flows: tensor `(batch, height, width, 2)` of displacements in pixels
            (channel 0 along the width, channel 1 along the height), or
            `(batch, height, width, links, 2)` to warp the same images by
            several flows in one gather.

    Returns:
        `(batch, height, width, channels)`, or
        `(batch, height, width, links, channels)` for several flows.
    """
    many = len(flows.shape) == 5
    if not many:
        flows = flows[:, :, :, None, :]
    height, width = images.shape[1:3]
    if height < 2 or width < 2:
        raise ValueError(
            f"warp needs images of at least 2x2 pixels (the grid is normalised by size - 1). "
            f"Received images of shape {tuple(images.shape)}."
        )
    if has_grid_sample():
        sampled = grid_sample_warp(images, flows)
    elif rematerialises_gather():
        sampled = keras.remat(_gather_warp)(images, flows)
    else:
        sampled = _gather_warp(images, flows)
    return sampled if many else sampled[:, :, :, 0]


def _gather_warp(images, flows):
    """The bilinear sample as one gather of image rows over every corner and link.

    A plain row gather from the flattened batch (`take` on axis 0) keeps one
    integer per sample for its backward; `take_along_axis` would broadcast its
    index over the channels, a copy of the sampled tensor per corner.
    """
    batch = ops.shape(images)[0]
    height, width, channels = images.shape[1:]
    links = flows.shape[3]
    dtype = flows.dtype
    rows = ops.reshape(ops.arange(height, dtype=dtype), (1, height, 1, 1, 1))
    cols = ops.reshape(ops.arange(width, dtype=dtype), (1, 1, width, 1, 1))
    x = (cols + flows[..., :1]) * (width / (width - 1)) - 0.5
    y = (rows + flows[..., 1:]) * (height / (height - 1)) - 0.5
    x0, y0 = ops.floor(x), ops.floor(y)
    wx1, wy1 = x - x0, y - y0
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    # The four corners on a last axis: (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1).
    corner_x = ops.concatenate([x0, x0 + 1, x0, x0 + 1], axis=-1)
    corner_y = ops.concatenate([y0, y0, y0 + 1, y0 + 1], axis=-1)
    weights = ops.concatenate([wx0 * wy0, wx1 * wy0, wx0 * wy1, wx1 * wy1], axis=-1)
    inside = (corner_x >= 0) & (corner_x <= width - 1) & (corner_y >= 0) & (corner_y <= height - 1)
    weights = ops.cast(weights * ops.cast(inside, dtype), images.dtype)
    image_start = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1, 1, 1))
    index = (
        ops.cast(
            ops.clip(corner_y, 0, height - 1) * width + ops.clip(corner_x, 0, width - 1), "int32"
        )
        + image_start
    )
    pixels = ops.reshape(images, (-1, channels))
    corners = ops.take(pixels, ops.reshape(index, (-1,)), axis=0)
    corners = ops.reshape(corners, (batch, height, width, links, 4, channels))
    return ops.sum(corners * weights[..., None], axis=4)
