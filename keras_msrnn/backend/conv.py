"""BACKEND-SPECIFIC: the "same" convolution of the cells' gates, without layout copies.

`keras.ops.conv` on PyTorch makes the channels-last input contiguous in
channels-first order and then converts it back to the channels-last memory
format: two copies of every activation per convolution. A channels-last
`(B, H, W, C)` tensor permuted to `(B, C, H, W)` *is* a channels-last
PyTorch tensor, which `torch.nn.functional.conv2d` takes as it is, so on
PyTorch the convolution runs on views. The other backends use
`keras.ops.conv`, which their compilers lay out well.
"""

import keras
from keras import ops


def conv2d_same(inputs, kernel, bias=None):
    """A stride-1 "same" 2-D convolution of channels-last `inputs` with `kernel` (kh, kw, in, out).

    Odd kernel sizes only (the cells reject even ones): padding is `k // 2`
    on every side, as PyTorch's `padding=k // 2` in the reference.
    """
    if keras.config.backend() == "torch":
        import torch.nn.functional as F

        inputs, kernel = ops.convert_to_tensor(inputs), ops.convert_to_tensor(kernel)
        kernel = ops.cast(kernel, inputs.dtype)
        if bias is not None:  # added inside the convolution: no separate add and its gradient
            bias = ops.cast(ops.convert_to_tensor(bias), inputs.dtype)
        padding = (kernel.shape[0] // 2, kernel.shape[1] // 2)
        outputs = F.conv2d(
            inputs.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), bias, padding=padding
        )
        return outputs.permute(0, 2, 3, 1)
    outputs = ops.conv(inputs, ops.cast(kernel, inputs.dtype), padding="same")
    if bias is not None:
        outputs = outputs + ops.cast(bias, outputs.dtype)
    return outputs
