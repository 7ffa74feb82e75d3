"""Writes the bundled Moving MNIST samples: test-split sequences 0..3.

They come from the test split the zoo's Moving MNIST presets are scored on
(the recipes' data set: two digits, 2-6 px per frame). Run from the
repository root: python examples/data/make_samples.py DATA_DIR (DATA_DIR
holds t10k-images-idx3-ubyte.gz).
"""

import sys
from pathlib import Path

import numpy as np

from keras_msrnn import recipes, training

if __name__ == "__main__":
    recipe = recipes.get_recipe("ms-predrnn-mnist")
    test = training.make_dataset(recipe, "test", sys.argv[1], num_sequences=4)
    for index, sequence in enumerate(test.load_sequences(np.arange(4))):
        np.save(Path(__file__).parent / f"moving_mnist_test_{index}.npy", sequence[..., 0])
