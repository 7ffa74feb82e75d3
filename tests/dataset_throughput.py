"""Moving MNIST generation speed: sequences per second on this machine.

    python -m tests.dataset_throughput [DATA_DIR]

Times `MovingMNIST("train")[i]` (generation plus the float conversion a
training step sees) for 100 batches of 16 sequences of 20 frames, one core.
"""

import sys
import time

from keras_msrnn.datasets import MovingMNIST
from tests.conftest import DATA_DIR

if __name__ == "__main__":
    data_dir = sys.argv[1] if len(sys.argv) > 1 else str(DATA_DIR / "mnist")
    data = MovingMNIST("train", data_dir=data_dir, batch_size=16, num_sequences=1600, seed=0)
    data[0]
    start = time.perf_counter()
    for index in range(len(data)):
        data[index]
    elapsed = time.perf_counter() - start
    print(
        f"{data.num_sequences / elapsed:.0f} sequences/s ({elapsed:.2f} s for {data.num_sequences})"
    )
