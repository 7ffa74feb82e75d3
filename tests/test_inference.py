"""`keras_msrnn.backend.inference`: forecasts for scoring keep no gradient graph."""

import keras
import numpy as np

from keras_msrnn import evaluation
from keras_msrnn.models import MSStack


def frames(time, seed, batch=2, size=8):
    return np.random.default_rng(seed).random((batch, time, size, size, 1), dtype="float32")


def test_the_evaluation_forecasts_record_no_gradient_graph(monkeypatch):
    model = MSStack(cell="convlstm", filters=4, scales=(1, 2, 1), input_length=3, output_length=2)
    context, future = frames(3, seed=0), frames(2, seed=1)
    model(context)
    recorded = []
    rollout = model.rollout
    monkeypatch.setattr(model, "rollout", lambda x: recorded.append(rollout(x)) or recorded[-1])
    predictions = evaluation.predict_all_frames(model, context, future)
    assert predictions.shape == (2, 4, 8, 8, 1)
    # PyTorch's autograd graph holds every step's activations until the
    # tensor is freed: an evaluation over many batches ran out of memory.
    assert getattr(recorded[0], "requires_grad", False) is False
    if keras.config.backend() == "torch":
        assert rollout(context).requires_grad  # outside, the rollout is differentiable
