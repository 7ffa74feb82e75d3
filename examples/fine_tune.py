"""Fine-tune a preset on your own frames, then save the result as a new preset.

    python examples/fine_tune.py my_frames.npy --epochs 5 --output my_preset

`my_frames.npy` holds one video `(time, height, width)` (uint8 or floats in
[0, 1]) at the preset's frame size. Without a file, the bundled Moving MNIST
samples stand in for your data.
"""

import argparse
import glob
import os

import keras
import numpy as np

import keras_msrnn

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
parser.add_argument("frames", nargs="?", help=".npy with (time, height, width[, channels]) frames")
parser.add_argument("--preset", default="ms-predrnn-mnist")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=2)
parser.add_argument("--learning-rate", type=float, default=3e-4)
parser.add_argument("--output", default="fine_tuned_preset")
args = parser.parse_args()

model = keras_msrnn.from_preset(args.preset)
if args.frames:
    frames = np.load(args.frames)
else:
    samples = sorted(glob.glob(os.path.join(HERE, "data", "moving_mnist_test_*.npy")))
    frames = np.stack([np.load(path) for path in samples])[..., None]  # (videos, time, H, W, 1)

data = keras_msrnn.datasets.FrameWindows(
    frames,
    input_length=model.input_length,
    output_length=model.output_length,
    batch_size=args.batch_size,
    shuffle=True,
    seed=0,
)
model.compile(
    optimizer=keras.optimizers.Adam(args.learning_rate), metrics=[keras_msrnn.metrics.FrameMSE()]
)
# The loss on your frames before and after, with the same free-running forecast both times.
before = model.evaluate(data, verbose=0, return_dict=True)
model.fit(data, epochs=args.epochs, verbose=2)
after = model.evaluate(data, verbose=0, return_dict=True)
model.save_to_preset(
    args.output,
    {"description": f"{args.preset} fine-tuned on {args.frames or 'the bundled samples'}"},
)
print(
    f"on these frames, loss {before['loss']:.1f} -> {after['loss']:.1f}, future-frame MSE "
    f"{before['frame_mse']:.1f} -> {after['frame_mse']:.1f} after {args.epochs} epochs; "
    f"preset saved to {args.output}"
)
