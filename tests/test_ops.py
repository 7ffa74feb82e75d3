import importlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_msrnn.ops import (
    downsample,
    local_attention,
    local_attention_scores,
    patch_frames,
    rescale,
    unpatch_frames,
    upsample,
    warp,
)
from keras_msrnn.ops.local_attention import uses_dense_attention
from tests.backend_gradients import gradients
from tests.conftest import fast_subset


def numpy_reshape_patch(frames, p):
    """PredRNN's core/utils/preprocess.py::reshape_patch, in numpy."""
    b, t, h, w, c = frames.shape
    x = frames.reshape(b, t, h // p, p, w // p, p, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, h // p, w // p, p * p * c)


def numpy_bilinear_upsample(x, factor):
    """PyTorch's bilinear Upsample with align_corners=False on (B, H, W, C)."""

    def axis_weights(size):
        source = (np.arange(size * factor) + 0.5) / factor - 0.5
        source = np.clip(source, 0, None)
        low = np.minimum(np.floor(source).astype(int), size - 1)
        high = np.minimum(low + 1, size - 1)
        frac = source - low
        return low, high, frac

    rl, rh, rf = axis_weights(x.shape[1])
    cl, ch, cf = axis_weights(x.shape[2])
    rows = x[:, rl] * (1 - rf)[None, :, None, None] + x[:, rh] * rf[None, :, None, None]
    return rows[:, :, cl] * (1 - cf)[None, None, :, None] + rows[:, :, ch] * cf[None, None, :, None]


@pytest.mark.parametrize("p, channels", [(2, 1), (4, 3)])
def test_patching_matches_reshape_patch_and_inverts(p, channels):
    frames = np.random.default_rng(0).random((2, 3, 8, 16, channels), "float32")
    patches = ops.convert_to_numpy(patch_frames(frames, p))
    np.testing.assert_array_equal(patches, numpy_reshape_patch(frames, p))
    np.testing.assert_array_equal(ops.convert_to_numpy(unpatch_frames(patches, p)), frames)


@pytest.mark.parametrize("factor", [2, 4])
def test_upsample_is_half_pixel_bilinear(factor):
    x = np.random.default_rng(1).random((2, 5, 3, 4), "float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(upsample(x, factor)), numpy_bilinear_upsample(x, factor), atol=1e-6
    )


def test_downsample_is_floor_max_pooling():
    x = np.random.default_rng(2).random((1, 5, 6, 2), "float32")
    expected = x[:, :4].reshape(1, 2, 2, 3, 2, 2).max(axis=(2, 4))
    np.testing.assert_array_equal(ops.convert_to_numpy(downsample(x, 2)), expected)


def test_rescale_picks_the_direction():
    x = np.random.default_rng(3).random((1, 8, 8, 1), "float32")
    assert tuple(rescale(x, 1, 4).shape) == (1, 2, 2, 1)
    assert tuple(rescale(x, 4, 2).shape) == (1, 16, 16, 1)
    assert rescale(x, 2, 2) is x


def _nhwc(array):
    return np.transpose(array, (0, 2, 3, 1))


def _gather_warp(images, flows):
    """The gather path of `warp`, which PyTorch replaces by its grid sample."""
    return importlib.import_module("keras_msrnn.ops.warp")._gather_warp(
        ops.convert_to_tensor(images), ops.convert_to_tensor(flows)[:, :, :, None]
    )[:, :, :, 0]


@pytest.mark.parametrize("warp_op", [warp, _gather_warp], ids=["warp", "gather"])
@pytest.mark.parametrize("case", fast_subset(["warp0", "warp1"], {"warp0"}))
def test_warp_matches_the_reference_with_gradients(reference_dir, case, warp_op):
    golden = np.load(reference_dir / "ops.npz")
    images, flows = _nhwc(golden[f"{case}/input"]), _nhwc(golden[f"{case}/flow"])
    cotangent = ops.convert_to_tensor(_nhwc(golden[f"{case}/cotangent"]))

    np.testing.assert_allclose(
        ops.convert_to_numpy(warp_op(images, flows)), _nhwc(golden[f"{case}/output"]), atol=1e-5
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(warp_op(images, np.zeros_like(flows))),
        _nhwc(golden[f"{case}/output_zero_flow"]),
        atol=1e-6,
    )
    image_var, flow_var = keras.Variable(images), keras.Variable(flows)
    grad_images, grad_flows = gradients(
        lambda: ops.sum(warp_op(image_var.value, flow_var.value) * cotangent), [image_var, flow_var]
    )
    np.testing.assert_allclose(grad_images, _nhwc(golden[f"{case}/grad_input"]), atol=1e-5)
    np.testing.assert_allclose(grad_flows, _nhwc(golden[f"{case}/grad_flow"]), atol=1e-4)


def test_warp_with_several_flows_equals_separate_warps():
    rng = np.random.default_rng(4)
    images, flows = (
        rng.random((2, 5, 6, 3), "float32"),
        rng.normal(size=(2, 5, 6, 4, 2)).astype("float32"),
    )
    together = ops.convert_to_numpy(warp(images, flows))
    for link in range(4):
        np.testing.assert_allclose(
            together[:, :, :, link],
            ops.convert_to_numpy(warp(images, flows[:, :, :, link])),
            atol=1e-6,
        )


def test_warp_rejects_single_pixel_axes():
    with pytest.raises(ValueError, match="at least 2x2 pixels"):
        warp(np.zeros((1, 1, 4, 2), "float32"), np.zeros((1, 1, 4, 2), "float32"))


@pytest.mark.parametrize("case", fast_subset(["la0", "la1", "la2", "la3", "la4"], {"la3"}))
def test_local_attention_matches_the_reference_with_gradients(reference_dir, case):
    golden = np.load(reference_dir / "ops.npz")
    x = _nhwc(golden[f"{case}/x"])
    window = {"la3": 5, "la4": 4}.get(case, 30)
    projections = [
        golden[f"{case}/conv{i}_weight_{n}"][:, :, 0, 0].T
        for i, n in ((1, "q"), (2, "k"), (3, "v"))
    ]
    cotangent = ops.convert_to_tensor(_nhwc(golden[f"{case}/cotangent"]))
    x_var = keras.Variable(x)

    def attend():
        q, k, v = (ops.matmul(x_var.value, ops.convert_to_tensor(w)) for w in projections)
        return local_attention(q, k, v, window)

    np.testing.assert_allclose(
        ops.convert_to_numpy(attend()), _nhwc(golden[f"{case}/output"]), atol=1e-5
    )
    if f"{case}/scores" in golden:
        q, k = (ops.matmul(x, w) for w in projections[:2])
        np.testing.assert_allclose(
            ops.convert_to_numpy(local_attention_scores(q, k, window)),
            golden[f"{case}/scores"],
            atol=1e-5,
        )
    (grad_x,) = gradients(lambda: ops.sum(attend() * cotangent), [x_var])
    np.testing.assert_allclose(grad_x, _nhwc(golden[f"{case}/grad_x"]), atol=1e-5)


@pytest.mark.parametrize(
    "shape,window",
    fast_subset(
        [((2, 13, 11, 4), 5), ((1, 9, 12, 3), 4), ((1, 47, 45, 2), 30)], {((2, 13, 11, 4), 5)}
    ),
)
def test_tiled_local_attention_matches_the_torch_transcription_with_gradients(shape, window):
    """Images above the dense limit take the tiled product; the goldens are all below it."""
    import torch

    from tests.torch_reference import local_attention as reference_attention

    assert not uses_dense_attention(shape[1], shape[2], window)
    rng = np.random.default_rng(7)
    inputs = [rng.normal(size=shape).astype("float32") for _ in range(3)]
    cotangent = rng.normal(size=shape).astype("float32")

    torch_inputs = [torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True) for x in inputs]
    expected = reference_attention(*torch_inputs, window)
    (expected * torch.tensor(cotangent.transpose(0, 3, 1, 2))).sum().backward()

    variables = [keras.Variable(x) for x in inputs]

    def attend():
        return local_attention(*(v.value for v in variables), window)

    np.testing.assert_allclose(
        ops.convert_to_numpy(attend()),
        expected.detach().numpy().transpose(0, 2, 3, 1),
        rtol=1e-5,
        atol=1e-5,
    )
    grads = gradients(lambda: ops.sum(attend() * ops.convert_to_tensor(cotangent)), variables)
    for grad, reference in zip(grads, torch_inputs):
        np.testing.assert_allclose(
            grad, reference.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4
        )


def test_local_attention_rejects_a_non_positive_window():
    x = np.zeros((1, 4, 4, 2), "float32")
    with pytest.raises(ValueError, match="`window` must be a positive int"):
        local_attention(x, x, x, window=0)
