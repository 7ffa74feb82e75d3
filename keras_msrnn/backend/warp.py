"""BACKEND-SPECIFIC: TrajGRU's and MotionRNN's warp as PyTorch's `grid_sample`.

`keras_msrnn.ops.warp` gathers the four bilinear corners of every link as
rows of the flattened images; autograd then keeps the gathered corners of
every link for the backward.
`torch.nn.functional.grid_sample` computes the same bilinear sample (zeros
outside, `align_corners=False`) in one kernel that keeps only the images and
the grid for its backward. The other backends use the gather; TensorFlow
recomputes it in the backward (`rematerialises_gather`).
"""

import keras
from keras import ops


def grid_sample_warp(images, flows):
    """`keras_msrnn.ops.warp` on PyTorch: channels-last images, flows `(B, H, W, L, 2)`.

    The reference normalises the displaced grid `(x + u, y + v)` by
    `W - 1` and `H - 1` (`2 (x + u) / (W - 1) - 1`) and samples with
    `align_corners=False`; that is exactly `grid_sample`'s input here.

    Returns:
        `(batch, height, width, links, channels)`.
    """
    import torch.nn.functional as F

    images, flows = ops.convert_to_tensor(images), ops.convert_to_tensor(flows)
    batch, height, width, links, _ = flows.shape
    rows = ops.reshape(ops.arange(height, dtype=flows.dtype), (1, height, 1, 1))
    cols = ops.reshape(ops.arange(width, dtype=flows.dtype), (1, 1, width, 1))
    grid = ops.stack(
        [
            (cols + flows[..., 0]) * (2.0 / (width - 1)) - 1.0,
            (rows + flows[..., 1]) * (2.0 / (height - 1)) - 1.0,
        ],
        axis=-1,
    )
    # The links sit next to the width: one (H, W * L) output grid per image.
    grid = ops.cast(ops.reshape(grid, (batch, height, width * links, 2)), images.dtype)
    sampled = F.grid_sample(
        images.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return ops.reshape(sampled.permute(0, 2, 3, 1), (batch, height, width, links, images.shape[-1]))


def has_grid_sample():
    """Whether this backend warps with a native grid sample."""
    return keras.config.backend() == "torch"


def rematerialises_gather():
    """Whether the gather warp is recomputed in the backward instead of kept.

    TensorFlow keeps the four gathered corners of every link for the backward:
    at 32x32, 6 layers x 32 filters, 13 links, batch 2, 5 -> 5, TrajGRU's step
    held 908 MB, 376 MB rematerialised (the authors' code: 295 MB). On JAX,
    XLA's buffer assignment for the step did not shrink under `jax.checkpoint`
    (957 and 971 MB), so JAX gathers once.
    """
    return keras.config.backend() == "tensorflow"
