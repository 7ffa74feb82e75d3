from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from keras_msrnn import MSStack
from keras_msrnn.losses import MSRNNLoss
from keras_msrnn.models import LinearSampling
from tests.conftest import fast_subset
from tests.data.make_cross_backend_golden import CONFIG as GOLDEN_CONFIG

DATA = Path(__file__).parent / "data"
TINY = dict(filters=4, scales=(1, 2, 1), input_length=3, output_length=2)


def _trained_model(cell):
    rng = np.random.default_rng(0)
    context, future = rng.random((2, 3, 8, 8, 1), "float32"), rng.random((2, 2, 8, 8, 1), "float32")
    model = MSStack(
        cell=cell, sampling=LinearSampling(decay_steps=50), reconstruction_loss_weight=0.5, **TINY
    )
    model.compile()
    model.fit((context, future), future, epochs=1, batch_size=2, verbose=0)
    return model, context


@pytest.mark.parametrize("cell", fast_subset(["convlstm", "predrnn"], {"convlstm"}))
def test_keras_file_round_trip(tmp_path, cell):
    model, context = _trained_model(cell)
    path = tmp_path / "model.keras"
    model.save(path)

    restored = keras.saving.load_model(path)

    assert type(restored) is MSStack
    assert restored.get_config() == model.get_config()
    assert isinstance(restored.loss, MSRNNLoss)
    assert int(ops.convert_to_numpy(restored.sampling_step)) == 1
    np.testing.assert_array_equal(
        ops.convert_to_numpy(restored(context)), ops.convert_to_numpy(model(context))
    )


def test_weights_file_round_trip(tmp_path):
    model, context = _trained_model("predrnn")
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    restored = MSStack.from_config(model.get_config())
    restored.build((None, 3, 8, 8, 1))

    restored.load_weights(path)

    for saved, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(saved), ops.convert_to_numpy(loaded))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(restored(context)), ops.convert_to_numpy(model(context))
    )


def test_weights_written_under_another_backend_give_the_same_forecast():
    golden = np.load(DATA / "tiny_ms_predrnn_forecast.npz")
    model = MSStack(**GOLDEN_CONFIG)
    model.build((None,) + golden["context"].shape[1:])

    model.load_weights(DATA / "tiny_ms_predrnn.weights.h5")

    np.testing.assert_allclose(
        ops.convert_to_numpy(model(golden["context"])), golden["forecast"], rtol=0, atol=1e-5
    )


def test_config_round_trip_keeps_the_schedule():
    model = MSStack(cell="convlstm", sampling=LinearSampling(decay_steps=123), **TINY)
    restored = MSStack.from_config(model.get_config())
    assert isinstance(restored.sampling, LinearSampling)
    assert restored.sampling.decay_steps == 123
    assert restored.scales == (1, 2, 1)
