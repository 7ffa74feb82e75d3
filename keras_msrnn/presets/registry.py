"""Built-in presets: names that map to a pinned Hub handle.

A built-in preset whose folder ships with the package (under
`keras_msrnn/presets/builtin/`) loads from there, offline; the others are
downloaded from their handle on first use.
"""

import os

BUILTIN_DIR = os.path.join(os.path.dirname(__file__), "builtin")

BUILTIN_PRESETS = {
    "ms-predrnn-mnist-cpu": {
        "metadata": {
            "description": (
                "MS-PredRNN (6 x 32, patch 4, 0.9 M parameters) trained on CPU on Moving MNIST "
                "generated from the real MNIST digits; 10 -> 10 frames of 64x64. A small-budget "
                "model: forecasts are blurry. See MODEL_CARDS.md."
            ),
            "cell": "predrnn",
            "dataset": "moving_mnist",
            "recipe": "zoo/ms-predrnn-mnist-cpu.json",
        },
        "handle": "hf://keras-msrnn/ms-predrnn-mnist-cpu",
    },
}


def builtin_dir(name):
    """The bundled folder of a built-in preset, or None if it is not shipped."""
    path = os.path.join(BUILTIN_DIR, name)
    return path if os.path.isfile(os.path.join(path, "config.json")) else None
