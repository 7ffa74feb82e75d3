"""Bilinear warping by a flow field, as in TrajGRU and MotionRNN (grid sample)."""

from keras import ops

from keras_msrnn.backend.warp import grid_sample_warp, has_grid_sample


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
    batch = ops.shape(images)[0]
    height, width, channels = images.shape[1:]
    links = flows.shape[3]
    if height < 2 or width < 2:
        raise ValueError(
            f"warp needs images of at least 2x2 pixels (the grid is normalised by size - 1). "
            f"Received images of shape {tuple(images.shape)}."
        )
    if has_grid_sample():
        sampled = grid_sample_warp(images, flows)
        return sampled if many else sampled[:, :, :, 0]
    dtype = flows.dtype
    rows = ops.reshape(ops.arange(height, dtype=dtype), (1, height, 1, 1))
    cols = ops.reshape(ops.arange(width, dtype=dtype), (1, 1, width, 1))
    x = (cols + flows[..., 0]) * (width / (width - 1)) - 0.5
    y = (rows + flows[..., 1]) * (height / (height - 1)) - 0.5
    x0, y0 = ops.floor(x), ops.floor(y)
    flat = ops.reshape(images, (batch, height * width, channels))

    def corner(cx, cy, weight):
        inside = (cx >= 0) & (cx <= width - 1) & (cy >= 0) & (cy <= height - 1)
        index = ops.cast(ops.clip(cy, 0, height - 1) * width + ops.clip(cx, 0, width - 1), "int32")
        index = ops.reshape(index, (batch, height * width * links, 1))
        values = ops.take_along_axis(
            flat, ops.broadcast_to(index, (batch, height * width * links, channels)), axis=1
        )
        weight = ops.reshape(weight * ops.cast(inside, dtype), (batch, height * width * links, 1))
        return values * ops.cast(weight, images.dtype)

    wx1, wy1 = x - x0, y - y0
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    sampled = (
        corner(x0, y0, wx0 * wy0)
        + corner(x0 + 1, y0, wx1 * wy0)
        + corner(x0, y0 + 1, wx0 * wy1)
        + corner(x0 + 1, y0 + 1, wx1 * wy1)
    )
    sampled = ops.reshape(sampled, (batch, height, width, links, channels))
    return sampled if many else sampled[:, :, :, 0]
