"""Push a preset folder to the Hugging Face Hub and load it back from there.

    HF_TOKEN=hf_... python examples/push_to_hub.py my_preset hf://your-name/my-model

`HF_ENDPOINT` selects another Hub (a mirror, or the test server in tests/).
"""

import argparse
import tempfile

import numpy as np

import keras_msrnn

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
parser.add_argument("preset_dir", help="a folder written by model.save_to_preset()")
parser.add_argument("handle", help="hf://org/name")
parser.add_argument("--private", action="store_true")
args = parser.parse_args()

url = keras_msrnn.upload_preset(args.handle, args.preset_dir, private=args.private)
print(f"uploaded: {url}")

local = keras_msrnn.from_preset(args.preset_dir)
with tempfile.TemporaryDirectory() as cache:
    remote = keras_msrnn.from_preset(args.handle, cache_dir=cache)
    height, width, channels = local.frame_shape
    context = np.random.default_rng(0).random(
        (1, local.input_length, height, width, channels), np.float32
    )
    difference = np.abs(
        local.predict(context, verbose=0) - remote.predict(context, verbose=0)
    ).max()
print(
    f"downloaded from {args.handle}: forecasts match the local preset (max difference "
    f"{difference:.1e})"
)
