"""`keras_msrnn.backend.fusion`: recurrent states' gradients stored once per step on JAX."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_msrnn.models.ms_stack as ms_stack
from keras_msrnn.backend.fusion import store_gradient
from keras_msrnn.models import MSStack

on_jax = pytest.mark.skipif(keras.config.backend() != "jax", reason="XLA's fusion is JAX's")


def test_store_gradient_returns_its_input_and_none_as_none():
    tensor = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(store_gradient(ops.array(tensor))), tensor)
    hidden, cell = store_gradient((ops.array(tensor), ops.array(-tensor)))
    np.testing.assert_array_equal(ops.convert_to_numpy(cell), -tensor)
    np.testing.assert_array_equal(ops.convert_to_numpy(hidden), tensor)
    assert store_gradient(None) is None


@on_jax
def test_the_stored_gradient_is_exact():
    import jax

    rng = np.random.default_rng(0)
    tensor, weights = (
        rng.normal(size=(2, 2, 3, 5)).astype("float32"),
        rng.normal(size=5).astype("float32"),
    )
    weights[0] = 1e-30  # a product with the identity keeps even tiny values as they are
    gradient = jax.grad(lambda t: (store_gradient(t) * weights).sum())(tensor)
    np.testing.assert_array_equal(np.asarray(gradient), np.broadcast_to(weights, tensor.shape))


def _compiled_gradient_adds(steps):
    """Additions in XLA's gradient of a plain 3-layer PredRNN over `2 * steps - 1` steps."""
    import jax

    model = MSStack(
        cell="predrnn", filters=4, scales=(1, 1, 1), input_length=steps, output_length=steps
    )
    frames = np.zeros((1, 2 * steps, 8, 8, 1), "float32")
    model.build(frames.shape)

    def total(trainable):
        mapping = list(zip(model.trainable_variables, trainable))
        mapping += [(v, v.value) for v in model.non_trainable_variables]
        with keras.StatelessScope(state_mapping=mapping):
            return ops.sum(model.rollout(frames))

    trainable = [variable.value for variable in model.trainable_variables]
    gradient = jax.jit(jax.grad(total)).lower(trainable).compile()
    return gradient.as_text().count(" add(")


@pytest.mark.large
@on_jax
def test_the_states_gradients_cost_linear_time_in_the_sequence(monkeypatch):
    # 5 -> 11 steps is 2.2x the work; chains recomputed by every fusion that
    # reads them grow with the square (3.6x without `store_gradient`).
    growth = _compiled_gradient_adds(6) / _compiled_gradient_adds(3)
    assert growth < 3.0, f"the gradient's additions grew {growth:.2f}x for 2.2x the steps"
    monkeypatch.setattr(ms_stack, "store_gradient", lambda tensors: tensors)
    unstored = _compiled_gradient_adds(6) / _compiled_gradient_adds(3)
    assert unstored > 3.0, (
        f"without store_gradient the additions grew only {unstored:.2f}x: XLA may no longer need it"
    )
