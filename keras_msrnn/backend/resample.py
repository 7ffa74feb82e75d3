"""BACKEND-SPECIFIC: the stack's max-pool and bilinear upsampling, without layout copies.

As for the convolutions (`keras_msrnn.backend.conv`), `keras.ops.max_pool` and
`keras.ops.image.resize` on PyTorch copy channels-last activations into
channels-first order and back. A channels-last `(B, H, W, C)` tensor permuted
to `(B, C, H, W)` is a channels-last PyTorch tensor, which
`torch.nn.functional.max_pool2d` and `interpolate` take as they are. The
other backends use `keras.ops`.
"""

import keras
from keras import ops


def _torch_view(x):
    return ops.convert_to_tensor(x).permute(0, 3, 1, 2)


def max_pool(x, factor):
    """Max-pools channels-last `x` by `factor` (floor mode), as `MaxPool2d(f, f)`."""
    if keras.config.backend() == "torch":
        import torch.nn.functional as F

        return F.max_pool2d(_torch_view(x), factor, factor).permute(0, 2, 3, 1)
    return ops.max_pool(x, pool_size=factor, strides=factor, padding="valid")


def upsample_bilinear(x, factor):
    """Bilinear upsampling of channels-last `x` by `factor`, half-pixel centres.

    PyTorch's `Upsample(scale_factor=f, mode="bilinear")` (`align_corners=False`).
    """
    height, width = x.shape[1], x.shape[2]
    if keras.config.backend() == "torch":
        import torch.nn.functional as F

        outputs = F.interpolate(
            _torch_view(x),
            size=(height * factor, width * factor),
            mode="bilinear",
            align_corners=False,
        )
        return outputs.permute(0, 2, 3, 1)
    return ops.image.resize(
        x,
        (height * factor, width * factor),
        interpolation="bilinear",
        antialias=False,
        data_format="channels_last",
    )
