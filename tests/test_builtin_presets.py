"""The bundled preset loads offline and forecasts identically on every backend."""

import os

import numpy as np

import keras_msrnn

HERE = os.path.dirname(__file__)
SAMPLE = os.path.join(HERE, "..", "examples", "data", "moving_mnist_test_0.npy")
# Written by `make forecast` (torch backend) with the preset as committed.
EXPECTED = os.path.join(HERE, "data", "ms_predrnn_mnist_cpu_forecast_0.npy")


def test_bundled_preset_forecast_matches_on_every_backend():
    model = keras_msrnn.from_preset("ms-predrnn-mnist-cpu")
    assert model.preset_metadata["metrics"]["future_frames"]["mse"] < 100
    context = np.load(SAMPLE)[: model.input_length, :, :, None][None] / np.float32(255)
    forecast = np.asarray(model.predict(context, verbose=0))[0]
    np.testing.assert_allclose(forecast, np.load(EXPECTED), atol=1e-4)
    weights = os.path.join(os.path.dirname(keras_msrnn.__file__), "presets", "builtin", "ms-predrnn-mnist-cpu")
    assert os.path.getsize(os.path.join(weights, "model.weights.h5")) < 20 * 2**20
