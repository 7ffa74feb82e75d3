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


@pytest.mark.parametrize("case", fast_subset(["warp0", "warp1"], {"warp0"}))
def test_warp_matches_the_reference_with_gradients(reference_dir, case):
    golden = np.load(reference_dir / "ops.npz")
    images, flows = _nhwc(golden[f"{case}/input"]), _nhwc(golden[f"{case}/flow"])
    cotangent = ops.convert_to_tensor(_nhwc(golden[f"{case}/cotangent"]))

    np.testing.assert_allclose(
        ops.convert_to_numpy(warp(images, flows)), _nhwc(golden[f"{case}/output"]), atol=1e-5
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(warp(images, np.zeros_like(flows))),
        _nhwc(golden[f"{case}/output_zero_flow"]),
        atol=1e-6,
    )
    image_var, flow_var = keras.Variable(images), keras.Variable(flows)
    grad_images, grad_flows = gradients(
        lambda: ops.sum(warp(image_var.value, flow_var.value) * cotangent), [image_var, flow_var]
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


def _sine_product(x, y):
    return ops.sin(x) * y


def test_remat_keeps_values_and_gradients():
    from keras_msrnn.backend.remat import remat

    rng = np.random.default_rng(0)
    x = keras.Variable(rng.standard_normal((2, 3), dtype="float32"))
    y = keras.Variable(rng.standard_normal((2, 3), dtype="float32"))
    rematerialised = remat(_sine_product)

    def loss(function):
        # Chained calls sharing an input, as the local attention's row calls.
        return ops.sum(function(function(x.value, y.value), y.value) ** 2)

    np.testing.assert_allclose(
        ops.convert_to_numpy(loss(rematerialised)),
        ops.convert_to_numpy(loss(_sine_product)),
        rtol=1e-6,
    )
    for remat_grad, plain_grad in zip(
        gradients(lambda: loss(rematerialised), [x, y]),
        gradients(lambda: loss(_sine_product), [x, y]),
    ):
        np.testing.assert_allclose(remat_grad, plain_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow", reason="graph-mode gradient of the TensorFlow remat"
)
def test_tensorflow_remat_gradient_inside_a_traced_function():
    import tensorflow as tf

    from keras_msrnn.backend.remat import remat

    x = tf.Variable(np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3))
    y = tf.constant(np.linspace(0.5, 2, 6, dtype="float32").reshape(2, 3))

    def gradient(function):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(function(function(x, y), y) ** 2)
        return tape.gradient(loss, x)

    np.testing.assert_allclose(
        tf.function(lambda: gradient(remat(_sine_product)))().numpy(),
        gradient(_sine_product).numpy(),
        rtol=1e-5,
    )
