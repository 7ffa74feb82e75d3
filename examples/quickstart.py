"""Quickstart: load a pretrained preset, forecast a bundled sequence, save a GIF.

    python examples/quickstart.py [--preset ms-predrnn-mnist] [--output quickstart_out]

Runs on any backend: KERAS_BACKEND=jax python examples/quickstart.py
"""

import argparse
import os

import keras_msrnn
from keras_msrnn import visualize

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
parser.add_argument("--preset", default="ms-predrnn-mnist")
parser.add_argument("--sample", default=os.path.join(HERE, "data", "moving_mnist_test_0.npy"))
parser.add_argument("--output", default="quickstart_out")
args = parser.parse_args()

model = keras_msrnn.from_preset(args.preset)
frames = visualize.load_frames(args.sample)  # (20, 64, 64, 1) in [0, 1]
context = frames[: model.input_length]
truth = frames[model.input_length : model.input_length + model.output_length]

forecast = model.forecast(context)  # (10, 64, 64, 1), clipped to [0, 1]
mse = keras_msrnn.metrics.frame_mse(truth[None], forecast[None]).mean()

os.makedirs(args.output, exist_ok=True)
gif = visualize.save_gif(os.path.join(args.output, "forecast.gif"), context, forecast, truth)
print(f"{args.preset}: forecast {forecast.shape}, per-frame MSE {mse:.1f}, GIF at {gif}")
