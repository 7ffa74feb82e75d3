"""Writes the tiny weights file and forecast that every backend must reproduce.

Run once, under any backend, from the repository root:
    KERAS_BACKEND=torch python tests/data/make_cross_backend_golden.py
"""

from pathlib import Path

import keras
import numpy as np

from keras_msrnn import MSStack

HERE = Path(__file__).parent
CONFIG = dict(cell="predrnn", filters=4, scales=(1, 2, 2, 1), input_length=3, output_length=2)


def main():
    keras.utils.set_random_seed(7)
    context = np.random.default_rng(7).random((2, 3, 8, 8, 1), dtype="float32")
    model = MSStack(**CONFIG)
    forecast = keras.ops.convert_to_numpy(model(context))
    model.save_weights(HERE / "tiny_ms_predrnn.weights.h5")
    np.savez(HERE / "tiny_ms_predrnn_forecast.npz", context=context, forecast=forecast)
    print(f"written under {keras.config.backend()}: forecast {forecast.shape}")


if __name__ == "__main__":
    main()
