"""Prints the parity table of README.md for the current backend.

KERAS_BACKEND=jax python -m tests.parity_report
"""

import keras
import numpy as np
from keras import ops

from tests.conftest import REFERENCE_DIR
from tests.reference_cases import REFERENCE_MODELS, Reference


def main():
    print(f"backend: {keras.config.backend()}")
    print("| golden | parameters | max abs error, free-running | max abs error, teacher-forced |")
    print("|---|---|---|---|")
    for name in REFERENCE_MODELS:
        reference = Reference(REFERENCE_DIR, name)
        model = reference.model()
        frames = reference["input_nhwc"]
        free = ops.convert_to_numpy(model.rollout(frames))
        forced = ops.convert_to_numpy(model.rollout(frames, [1.0] * reference.steps))
        free_error = np.abs(free - reference["output_test_nhwc"]).max()
        forced_error = np.abs(forced - reference["output_tf_nhwc"]).max()
        print(f"| {name} | {model.count_params():,} | {free_error:.1e} | {forced_error:.1e} |")


if __name__ == "__main__":
    main()
