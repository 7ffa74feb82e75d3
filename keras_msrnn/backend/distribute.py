"""BACKEND-SPECIFIC: data-parallel training with the engine the backend has.

JAX: `keras.distribution.DataParallel` over every device Keras lists. Each
step is one SPMD program over the global batch: the batch is sharded along
its first axis, the weights are replicated, and gradients are summed across
devices by XLA. The model's scheduled-sampling counter is one replicated
variable that advances once per global step, and its random masks are drawn
for the global batch, so each sample keeps its own mask and a run equals a
single-device run at the same global batch (up to the order of float sums).

Several hosts: set `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID` on
every host (`keras.distribution.initialize` reads them) and run the same
command on each.

TensorFlow (`tf.distribute.MirroredStrategy`) and PyTorch (DDP) are not
wired in yet; asking for them says so.
"""

import contextlib
import os

import keras

MULTI_HOST_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def data_parallel_scope(global_batch_size):
    """A context in which models are built and trained data-parallel.

    Args:
        global_batch_size: int. The batch of one step over all devices; it
            must split evenly over them.

    Returns:
        A context manager.

    Raises:
        ValueError: on a backend without a data-parallel path here, or a
            batch that does not split over the devices.
    """
    backend = keras.config.backend()
    if backend != "jax":
        raise ValueError(
            f"Data-parallel training runs on the JAX backend (keras.distribution.DataParallel); "
            f"on {backend} it is not implemented yet. Run with KERAS_BACKEND=jax."
        )
    if all(os.environ.get(name) for name in MULTI_HOST_VARIABLES):
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    if global_batch_size % len(devices):
        raise ValueError(
            f"The batch size {global_batch_size} does not split over the {len(devices)} devices "
            f"({', '.join(devices)}); use a multiple of {len(devices)}."
        )
    if len(devices) == 1:
        return contextlib.nullcontext()
    return keras.distribution.DataParallel(devices=devices).scope()


def describe_data_parallel():
    """`" (data-parallel over N devices: ...)"` inside a data-parallel scope, else `""`."""
    if keras.config.backend() != "jax":
        return ""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return ""
    devices = [str(device) for device in distribution.device_mesh.devices.flatten()]
    return f" (data-parallel over {len(devices)} devices: {', '.join(devices)})"
