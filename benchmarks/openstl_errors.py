"""How closely imported OpenSTL models reproduce OpenSTL's own outputs.

Prints, for every golden in `../shared/reference/openstl/` (or
`KERAS_MSRNN_OPENSTL_DIR`), the largest error of
the forecast and of `next_frames` relative to the output's largest value:

    KERAS_BACKEND=jax python benchmarks/openstl_errors.py
"""

import json
import os
from pathlib import Path

import keras
import numpy as np

from keras_msrnn.convert import from_openstl
from keras_msrnn.ops.patching import unpatch_frames

GOLDENS = Path(
    os.environ.get(
        "KERAS_MSRNN_OPENSTL_DIR",
        Path(__file__).resolve().parents[2] / "shared" / "reference" / "openstl",
    )
)


def relative_error(ours, reference):
    return float(
        np.max(np.abs(keras.ops.convert_to_numpy(ours) - reference)) / np.max(np.abs(reference))
    )


def main():
    print(f"backend {keras.backend.backend()}: max |ours - OpenSTL| / max |OpenSTL|")
    for name in sorted(path.stem for path in GOLDENS.glob("*.npz")):
        arrays = np.load(GOLDENS / f"{name}.npz")
        config = json.loads((GOLDENS / f"{name}.json").read_text())["config"]
        weights = {key[2:]: arrays[key] for key in arrays.files if key.startswith("w/")}
        model = from_openstl(weights, config)
        frames = np.transpose(arrays["frames"], (0, 1, 3, 4, 2))
        forecast = model.predict(frames[:, : config["pre_seq_length"]], verbose=0)
        expected = np.transpose(arrays["forecast"], (0, 1, 3, 4, 2))
        raw = keras.ops.convert_to_numpy(unpatch_frames(arrays["raw_output"], config["patch_size"]))
        print(
            f"{name:14s} forecast {relative_error(forecast, expected):.1e}  "
            f"next_frames {relative_error(model.rollout(frames), raw):.1e}"
        )


if __name__ == "__main__":
    main()
