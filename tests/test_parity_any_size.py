"""Parity with a PyTorch transcription of the reference at sizes the goldens don't cover."""

import numpy as np
import pytest
from keras import ops

from keras_msrnn.convert import from_msrnn

torch = pytest.importorskip("torch")
from tests.torch_reference import Model  # noqa: E402

SIZES = {
    # name: (layers, multi_scale, filters, kernel, channels, height, width, in, out, batch)
    "ms-rect-k5-2ch": (6, True, 6, 5, 2, 24, 20, 3, 3, 3),
    "plain-3layers": (3, False, 5, 3, 1, 10, 10, 2, 3, 2),
}


@pytest.mark.parametrize("cell", ["convlstm", "predrnn"])
@pytest.mark.parametrize("size", sorted(SIZES))
def test_outputs_match_the_pytorch_reference(cell, size):
    layers, multi_scale, filters, kernel, channels, height, width, t_in, t_out, batch = SIZES[size]
    torch.manual_seed(0)
    reference = Model(cell, filters, kernel, channels, layers, multi_scale)
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if name.startswith("rnns.") and parameter.ndim == 4:
                parameter.mul_(3.0)  # keep the signal alive through the stack, as the goldens do
    frames = np.random.default_rng(1).random((batch, t_in + t_out, height, width, channels), "float32")
    torch_frames = torch.from_numpy(frames).permute(1, 0, 4, 2, 3)
    model = from_msrnn(
        {k: v.detach().numpy() for k, v in reference.state_dict().items()},
        cell=cell,
        multi_scale=multi_scale,
        frame_shape=(height, width),
        input_length=t_in,
        output_length=t_out,
        kernel_size=kernel,
    )
    for teacher_forcing in (False, True):
        with torch.no_grad():
            expected = reference(torch_frames, t_in, teacher_forcing).permute(1, 0, 3, 4, 2).numpy()
        probabilities = [1.0] * (t_in + t_out - 1) if teacher_forcing else None
        actual = ops.convert_to_numpy(model.rollout(frames, probabilities))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
