"""Parity with the authors' PyTorch implementation (shared/reference/msrnn)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_msrnn.convert import msrnn_variable, to_msrnn_layout
from keras_msrnn.losses import frame_mae, frame_mse, msrnn_loss
from tests.backend_gradients import gradients
from tests.reference_cases import REFERENCE_MODELS, Reference

pytestmark = pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))


def _rollout_and_loss(model, reference, frames, probabilities):
    """Predictions and the reference's training loss (with PredRNN-V2's term)."""
    if model.adapter is None:
        predictions = model.rollout(frames, probabilities)
        decoupling = 0.0
    else:
        predictions, raw = model.rollout(frames, probabilities, return_decoupling=True)
        decoupling = model.decoupling_loss(raw)
    loss = ops.mean(msrnn_loss(frames[:, 1:], predictions)) + reference.decoupling_weight * decoupling
    return predictions, loss


def _teacher_forced(reference):
    return [1.0] * reference.steps


def _mean(per_frame):
    return float(ops.convert_to_numpy(ops.mean(per_frame)))


def test_free_running_and_teacher_forced_outputs(reference_dir, name):
    reference = Reference(reference_dir, name)
    model = reference.model()
    frames = reference["input_nhwc"]

    free = ops.convert_to_numpy(model.rollout(frames))
    forced = ops.convert_to_numpy(model.rollout(frames, _teacher_forced(reference)))

    assert free.shape == reference["output_test_nhwc"].shape
    np.testing.assert_allclose(free, reference["output_test_nhwc"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(forced, reference["output_tf_nhwc"], rtol=0, atol=1e-5)


def test_free_running_forecast_is_the_call_output(reference_dir, name):
    reference = Reference(reference_dir, name)
    model = reference.model()
    frames = reference["input_nhwc"]
    context = frames[:, : model.input_length]

    forecast = ops.convert_to_numpy(model(context))

    expected = reference["output_test_nhwc"][:, model.input_length - 1 :]
    np.testing.assert_allclose(forecast, expected, rtol=0, atol=1e-5)


def test_losses(reference_dir, name):
    reference = Reference(reference_dir, name)
    model = reference.model()
    frames = reference["input_nhwc"]
    targets = frames[:, 1:]
    for mode, probabilities in (("test", None), ("tf", _teacher_forced(reference))):
        predictions, loss = _rollout_and_loss(model, reference, frames, probabilities)
        np.testing.assert_allclose(float(ops.convert_to_numpy(loss)), reference[f"loss_{mode}"], rtol=1e-5)
        np.testing.assert_allclose(
            _mean(frame_mse(targets, predictions)), reference[f"mse_{mode}"], rtol=1e-5
        )
        np.testing.assert_allclose(
            _mean(frame_mae(targets, predictions)), reference[f"mae_{mode}"], rtol=1e-5
        )


def test_parameter_count(reference_dir, name):
    reference = Reference(reference_dir, name)
    model = reference.model()
    assert model.count_params() == reference.meta["param_count"]["total"]


def test_gradients_reach_every_weight_as_in_reference(reference_dir, name):
    reference = Reference(reference_dir, name)
    model = reference.model()
    frames = ops.convert_to_tensor(reference["input_nhwc"])
    names = sorted(reference.state_dict)
    variables = [msrnn_variable(model, n) for n in names]
    assert len({id(v) for v in variables}) == len(model.trainable_weights)

    def loss():
        return _rollout_and_loss(model, reference, frames, _teacher_forced(reference))[1]

    for parameter, grad in zip(names, gradients(loss, variables)):
        expected = reference[f"grad/{parameter}"]
        actual = to_msrnn_layout(grad)
        if not np.any(expected):
            assert not np.any(actual), f"{parameter} gets a gradient the reference does not"
            continue
        error = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
        assert error < 1e-4, f"{parameter}: relative gradient error {error:.2e}"


def test_decoupling_terms(reference_dir, name):
    reference = Reference(reference_dir, name)
    model = reference.model()
    if model.adapter is None:
        with pytest.raises(ValueError, match="Only cells that return memory increments"):
            model.rollout(reference["input_nhwc"], return_decoupling=True)
        return
    for mode, probabilities in (("test", None), ("tf", _teacher_forced(reference))):
        _, raw = model.rollout(reference["input_nhwc"], probabilities, return_decoupling=True)
        np.testing.assert_allclose(
            ops.convert_to_numpy(raw), reference[f"decouple_raw_{mode}"], rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(
            float(ops.convert_to_numpy(model.decoupling_loss(raw))), reference[f"decouple_{mode}"], rtol=1e-5
        )
