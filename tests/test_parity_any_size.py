"""Parity with a PyTorch transcription of the reference at sizes the goldens don't cover.

The transcription (`tests/torch_reference.py`) is itself held to the authors'
goldens first, so that agreeing with it at other sizes means agreeing with
the reference.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_msrnn.convert import from_msrnn
from tests.reference_cases import REFERENCE_MODELS, REFERENCE_OPTIONS, Reference

torch = pytest.importorskip("torch")
from tests.conftest import fast_subset  # noqa: E402
from tests.torch_reference import CELLS, Model  # noqa: E402 - needs torch

SIZES = {
    # name: (layers, multi_scale, filters, kernel, channels, height, width, in, out, batch)
    "ms-rect-k5-2ch": (6, True, 6, 5, 2, 24, 20, 3, 3, 3),
    "plain-3layers": (3, False, 5, 3, 1, 10, 10, 2, 3, 2),
}
# Options other than the reference's defaults, so that they are checked too.
CELL_OPTIONS = {
    ("trajgru", "plain-3layers"): {"links": 3},
    ("preciplstm", "ms-rect-k5-2ch"): {"window": 5},
    ("preciplstm", "plain-3layers"): {"window": 4},
}
# MotionRNN splits its filters into four groups (3.6); the other cells keep odd or
# non-power-of-two filter counts on purpose.
FILTERS = {("motionrnn", "ms-rect-k5-2ch"): 8, ("motionrnn", "plain-3layers"): 4}
TRANSCRIBED = sorted(name for name, (cell, _) in REFERENCE_MODELS.items() if cell in CELLS)


def _torch_frames(frames):
    return torch.from_numpy(frames).permute(1, 0, 4, 2, 3)


@pytest.mark.skipif(
    keras.config.backend() != "torch",
    reason="pure PyTorch, independent of the Keras backend: checked once",
)
@pytest.mark.parametrize("name", fast_subset(TRANSCRIBED, {"convlstm", "ms_predrnn", "ms_trajgru"}))
def test_the_transcription_reproduces_the_goldens(reference_dir, name):
    reference = Reference(reference_dir, name)
    config = reference.config
    model = Model(
        reference.cell,
        config["hidden_channels"],
        config["kernel_size"],
        config["channels"],
        config["layers"],
        reference.multi_scale,
    )
    model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in reference.state_dict.items()}, strict=True
    )
    for mode, teacher_forcing in (("test", False), ("tf", True)):
        with torch.no_grad():
            outputs = model(
                _torch_frames(reference["input_nhwc"]), config["in_len"], teacher_forcing
            )
        np.testing.assert_allclose(
            outputs.permute(1, 0, 3, 4, 2).numpy(),
            reference[f"output_{mode}_nhwc"],
            rtol=0,
            atol=1e-5,
        )


@pytest.mark.parametrize("cell", fast_subset(sorted(CELLS), {"convlstm"}))
@pytest.mark.parametrize("size", sorted(SIZES))
def test_outputs_match_the_pytorch_reference(cell, size):
    layers, multi_scale, filters, kernel, channels, height, width, t_in, t_out, batch = SIZES[size]
    options = CELL_OPTIONS.get((cell, size), {})
    filters = FILTERS.get((cell, size), filters)
    torch.manual_seed(0)
    reference = Model(cell, filters, kernel, channels, layers, multi_scale, **options)
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if name.startswith("rnns.") and parameter.ndim == 4:
                parameter.mul_(3.0)  # keep the signal alive through the stack, as the goldens do
    frames = np.random.default_rng(1).random(
        (batch, t_in + t_out, height, width, channels), "float32"
    )
    model = from_msrnn(
        {k: v.detach().numpy() for k, v in reference.state_dict().items()},
        cell=cell,
        multi_scale=multi_scale,
        frame_shape=(height, width),
        input_length=t_in,
        output_length=t_out,
        kernel_size=kernel,
        cell_config={**REFERENCE_OPTIONS.get(cell, {}), **options} or None,
    )
    assert model.count_params() == sum(p.numel() for p in reference.parameters())
    for teacher_forcing in (False, True):
        with torch.no_grad():
            expected = (
                reference(_torch_frames(frames), t_in, teacher_forcing)
                .permute(1, 0, 3, 4, 2)
                .numpy()
            )
        probabilities = [1.0] * (t_in + t_out - 1) if teacher_forcing else None
        if cell == "predrnn_v2":
            actual, decoupling = model.rollout(frames, probabilities, return_decoupling=True)
            np.testing.assert_allclose(
                ops.convert_to_numpy(decoupling), reference.decoupling.numpy(), rtol=0, atol=1e-5
            )
        else:
            actual = model.rollout(frames, probabilities)
        np.testing.assert_allclose(ops.convert_to_numpy(actual), expected, rtol=0, atol=1e-5)
