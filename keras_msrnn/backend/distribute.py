"""BACKEND-SPECIFIC: data-parallel training with the engine the backend has.

JAX: `keras.distribution.DataParallel` over every device Keras lists. Each
step is one SPMD program over the global batch: the batch is sharded along
its first axis, the weights are replicated, and gradients are summed across
devices by XLA. The model's scheduled-sampling counter is one replicated
variable that advances once per global step, and its random masks are drawn
for the global batch, so each sample keeps its own mask and a run equals a
single-device run at the same global batch (up to the order of float sums).

TensorFlow: `tf.distribute.MirroredStrategy` over the machine's GPUs (its
logical CPU devices where it has none), or `MultiWorkerMirroredStrategy`
where `TF_CONFIG` describes a cluster. Keras splits each global batch of a
`tf.data` input over the replicas and sums their gradients; every replica
draws the masks of the whole global batch from the same seed state and
keeps its own rows (`uniform_for_global_batch`), so each sample keeps the
mask it has on one device.

Several hosts: JAX: set `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID` on
every host (`keras.distribution.initialize` reads them) and run the same
command on each. TensorFlow: set `TF_CONFIG` on every worker.

PyTorch (DDP) is not wired in yet; asking for it says so.
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
    if backend == "jax":
        if all(os.environ.get(name) for name in MULTI_HOST_VARIABLES):
            keras.distribution.initialize()
        devices = keras.distribution.list_devices()
        _check_split(global_batch_size, devices)
        if len(devices) == 1:
            return contextlib.nullcontext()
        return keras.distribution.DataParallel(devices=devices).scope()
    if backend == "tensorflow":
        strategy = _tf_strategy()
        _check_split(global_batch_size, strategy.extended.worker_devices)
        return strategy.scope()
    raise ValueError(
        "Data-parallel training runs on JAX (keras.distribution.DataParallel) and TensorFlow "
        f"(tf.distribute.MirroredStrategy); on {backend} it is not implemented yet. Run with "
        "KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow."
    )


def _check_split(global_batch_size, devices):
    if global_batch_size % len(devices):
        names = ", ".join(_short_name(device) for device in devices)
        raise ValueError(
            f"The batch size {global_batch_size} does not split over the {len(devices)} devices "
            f"({names}); use a multiple of {len(devices)}."
        )


def _short_name(device):
    """`cpu:0` for JAX's and TensorFlow's spellings of a device."""
    name = str(device)
    if "/device:" in name.lower():
        kind, index = name.lower().split("/device:")[-1].split(":")[-2:]
        return f"{kind}:{index}"
    return name


def _tf_strategy():
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def replica_count():
    """Replicas that share each step's batch (1 outside a TensorFlow strategy)."""
    if keras.config.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def uniform_for_global_batch(shape, seed):
    """`keras.random.uniform(shape, seed=seed)` of this replica's rows of the global batch.

    `shape[0]` is the batch this call sees. Inside a TensorFlow replica
    context with several replicas, the draw is made for the global batch
    (every replica has the same seed state) and the replica keeps its rows,
    so each sample gets the number it gets on one device. Elsewhere (one
    device, and JAX's SPMD step, which sees the global batch) it is the
    plain draw.
    """
    replicas = replica_count()
    if replicas == 1:
        return keras.random.uniform(shape, seed=seed)
    import tensorflow as tf

    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    local = shape[0]
    draws = keras.random.uniform((local * replicas, *shape[1:]), seed=seed)
    return draws[replica * local : (replica + 1) * local]


def describe_data_parallel():
    """`" (data-parallel over N devices: ...)"` inside a data-parallel scope, else `""`."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.distribute.has_strategy():
            return ""
        devices = tf.distribute.get_strategy().extended.worker_devices
    elif backend == "jax":
        distribution = keras.distribution.distribution()
        if distribution is None:
            return ""
        devices = distribution.device_mesh.devices.flatten()
    else:
        return ""
    names = [_short_name(device) for device in devices]
    return f" (data-parallel over {len(names)} devices: {', '.join(names)})"


def needs_tf_data_input():
    """Whether `fit` must be fed a `tf.data.Dataset` (a TensorFlow strategy is active).

    With a Python generator, Keras's prefetch under a strategy reads
    batches ahead across `fit`'s epochs and loses them.
    """
    if keras.config.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.distribute.has_strategy()
