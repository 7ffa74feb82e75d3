"""Peak memory of PrecipLSTM's local attention, forward and backward, at radar size.

    MALLOC_MMAP_THRESHOLD_=65536 KERAS_BACKEND=torch python -m tests.local_attention_memory

(The fixed mmap threshold makes glibc return freed buffers, so the peak over
the starting resident size is the op's own memory.)
"""

import time

import keras
import numpy as np

from keras_msrnn.backend.device_memory import process_megabytes, reset_peak_resident_size
from keras_msrnn.ops import local_attention
from tests.backend_gradients import gradients

SIZE, CHANNELS, WINDOW = 124, 64, 30


def main():
    x = keras.Variable(np.random.default_rng(0).random((1, SIZE, SIZE, CHANNELS), dtype="float32"))
    before = process_megabytes("VmRSS")
    reset_peak_resident_size()
    start = time.perf_counter()
    gradients(lambda: keras.ops.sum(local_attention(x.value, x.value, x.value, WINDOW)), [x])
    peak = process_megabytes("VmHWM") - before
    naive = 2 * WINDOW**2 * SIZE * SIZE * CHANNELS * 4 / 2**20
    print(
        f"{keras.config.backend()}: local attention {SIZE}x{SIZE}x{CHANNELS}, window {WINDOW}, "
        f"forward + backward: peak {peak:.0f} MB over the resident {before:.0f} MB, "
        f"{time.perf_counter() - start:.1f} s (the {WINDOW**2} shifted copies of K and V "
        f"alone would take {naive:.0f} MB)"
    )


if __name__ == "__main__":
    main()
