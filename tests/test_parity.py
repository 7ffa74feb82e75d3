"""Parity with the authors' PyTorch implementation (shared/reference/msrnn)."""

import numpy as np
import pytest
from keras import ops

from keras_msrnn.convert import msrnn_variable, to_msrnn_layout
from keras_msrnn.losses import frame_mae, frame_mse, msrnn_loss
from tests.backend_gradients import gradients
from tests.conftest import fast_subset
from tests.reference_cases import REFERENCE_MODELS, Reference

# The fast tier checks one plain stack without memory, the MS zigzag memory,
# and MIM's difference input; `--run-large` checks all sixteen models.
MODELS = fast_subset(
    sorted(REFERENCE_MODELS), {"convlstm", "ms_predrnn", "ms_mim", "ms_predrnn_v2"}
)
GRADIENT_MODELS = fast_subset(sorted(REFERENCE_MODELS), {"ms_convlstm"})
with_models = pytest.mark.parametrize("name", MODELS)


def _rollout_and_loss(model, reference, frames, probabilities):
    """Predictions and the reference's training loss (with PredRNN-V2's term)."""
    if model.adapter is None:
        predictions = model.rollout(frames, probabilities)
        decoupling = 0.0
    else:
        predictions, raw = model.rollout(frames, probabilities, return_decoupling=True)
        decoupling = model.decoupling_loss(raw)
    loss = (
        ops.mean(msrnn_loss(frames[:, 1:], predictions)) + reference.decoupling_weight * decoupling
    )
    return predictions, loss


def _teacher_forced(reference):
    return [1.0] * reference.steps


def _mean(per_frame):
    return float(ops.convert_to_numpy(ops.mean(per_frame)))


_RUNS = {}


def _run(reference_dir, name):
    """The converted model, its two rollouts and losses; computed once per file."""
    if name not in _RUNS:
        reference = Reference(reference_dir, name)
        model = reference.model()
        frames = reference["input_nhwc"]
        run = {"reference": reference, "model": model}
        for mode, probabilities in (("test", None), ("tf", _teacher_forced(reference))):
            predictions, loss = _rollout_and_loss(model, reference, frames, probabilities)
            run[mode] = ops.convert_to_numpy(predictions)
            run[f"loss_{mode}"] = float(ops.convert_to_numpy(loss))
        _RUNS[name] = run
    return _RUNS[name]


@with_models
def test_free_running_and_teacher_forced_outputs(reference_dir, name):
    run = _run(reference_dir, name)
    reference = run["reference"]
    assert run["test"].shape == reference["output_test_nhwc"].shape
    np.testing.assert_allclose(run["test"], reference["output_test_nhwc"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(run["tf"], reference["output_tf_nhwc"], rtol=0, atol=1e-5)


@with_models
def test_free_running_forecast_is_the_call_output(reference_dir, name):
    run = _run(reference_dir, name)
    model, frames = run["model"], run["reference"]["input_nhwc"]
    forecast = ops.convert_to_numpy(model(frames[:, : model.input_length]))
    np.testing.assert_allclose(
        forecast, run["test"][:, model.input_length - 1 :], rtol=0, atol=1e-6
    )


@with_models
def test_losses(reference_dir, name):
    run = _run(reference_dir, name)
    reference = run["reference"]
    targets = reference["input_nhwc"][:, 1:]
    for mode in ("test", "tf"):
        np.testing.assert_allclose(run[f"loss_{mode}"], reference[f"loss_{mode}"], rtol=1e-5)
        np.testing.assert_allclose(
            _mean(frame_mse(targets, run[mode])), reference[f"mse_{mode}"], rtol=1e-5
        )
        np.testing.assert_allclose(
            _mean(frame_mae(targets, run[mode])), reference[f"mae_{mode}"], rtol=1e-5
        )


@with_models
def test_parameter_count(reference_dir, name):
    run = _run(reference_dir, name)
    assert run["model"].count_params() == run["reference"].meta["param_count"]["total"]


@pytest.mark.parametrize("name", GRADIENT_MODELS)
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


@with_models
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
            float(ops.convert_to_numpy(model.decoupling_loss(raw))),
            reference[f"decouple_{mode}"],
            rtol=1e-5,
        )
