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

PyTorch: `torch.nn.parallel.DistributedDataParallel`, one process per
device under `torchrun` (`keras_msrnn.backend.torch_ddp`). Every process
reads the global batch and trains on its rows; the masks are drawn as on
TensorFlow. Decisions to stop are shared by all processes, and only the
first process writes checkpoints, logs and presets. The same holds for
several hosts (`torchrun --nnodes`).
"""

import contextlib
import json
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
        _check_split(global_batch_size, devices, "devices")
        if len(devices) == 1:
            return contextlib.nullcontext()
        return keras.distribution.DataParallel(devices=devices).scope()
    if backend == "tensorflow":
        strategy = _tf_strategy()
        _check_split(global_batch_size, strategy.extended.worker_devices, "devices")
        return strategy.scope()
    if backend == "torch":
        return _torch_scope(global_batch_size)
    raise ValueError(f"Data-parallel training is not available on the {backend} backend.")


@contextlib.contextmanager
def _torch_scope(global_batch_size):
    from keras_msrnn.backend import torch_ddp

    if torch_ddp.launched():  # checked before joining, so that every process leaves alike
        ranks = [f"rank {rank}" for rank in range(int(os.environ["WORLD_SIZE"]))]
        _check_split(global_batch_size, ranks, "processes")
    with torch_ddp.process_group():
        yield


def _check_split(global_batch_size, replicas, kind):
    if global_batch_size % len(replicas):
        names = ", ".join(_short_name(replica) for replica in replicas)
        raise ValueError(
            f"The batch size {global_batch_size} does not split over the {len(replicas)} {kind} "
            f"({names}); use a multiple of {len(replicas)}."
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


def _torch_ddp_active():
    if keras.config.backend() != "torch":
        return False
    from keras_msrnn.backend import torch_ddp

    return torch_ddp.active()


def replica_count():
    """Replicas that share each step's batch and each run the model on their rows.

    1 on one device, and on JAX, whose SPMD step sees the global batch.
    """
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    if _torch_ddp_active():
        from keras_msrnn.backend import torch_ddp

        return torch_ddp.world_size()
    return 1


def replica_index():
    """This replica's place among `replica_count()`, in the order of the global batch's rows."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_replica_context().replica_id_in_sync_group
    from keras_msrnn.backend import torch_ddp

    return torch_ddp.rank()


def uniform_for_global_batch(shape, seed):
    """`keras.random.uniform(shape, seed=seed)` of this replica's rows of the global batch.

    `shape[0]` is the batch this call sees. Inside a TensorFlow replica
    context with several replicas, the draw is made for the global batch
    (every replica has the same seed state) and the replica keeps its rows,
    so each sample gets the number it gets on one device; likewise in each
    PyTorch DDP process. Elsewhere (one device, and JAX's SPMD step, which
    sees the global batch) it is the plain draw.
    """
    replicas = replica_count()
    if replicas == 1:
        return keras.random.uniform(shape, seed=seed)
    replica = replica_index()
    local = shape[0]
    draws = keras.random.uniform((local * replicas, *shape[1:]), seed=seed)
    return draws[replica * local : (replica + 1) * local]


def prepare_model(model):
    """Readies a built, compiled model for data-parallel `fit` (PyTorch: the DDP wrapper)."""
    if _torch_ddp_active():
        from keras_msrnn.backend import torch_ddp

        torch_ddp.wrap(model)
    return model


def rows_of_this_process(batch):
    """This process's rows of a global batch `((context, future), future)`.

    Under PyTorch DDP each process trains on its share; elsewhere the
    framework splits the global batch itself.
    """
    if not _torch_ddp_active():
        return batch
    from keras_msrnn.backend import torch_ddp

    (context, future), _ = batch
    share, rank = context.shape[0] // torch_ddp.world_size(), torch_ddp.rank()
    rows = slice(rank * share, (rank + 1) * share)
    return (context[rows], future[rows]), future[rows]


def any_process(flag):
    """`flag` made common to all processes of a run: true if true on any (stop requests)."""
    if not _torch_ddp_active():
        return bool(flag)
    from keras_msrnn.backend import torch_ddp

    return torch_ddp.any_process(flag)


def is_primary_process():
    """Whether this process writes the run's files (the only one, or the first of a job)."""
    backend = keras.config.backend()
    if backend == "torch":
        return os.environ.get("RANK", "0") == "0"
    if backend == "jax":
        import jax

        return jax.process_index() == 0
    # TensorFlow: the chief of a multi-worker cluster, else its first worker.
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    if "task" not in tf_config:
        return True
    task = tf_config["task"]
    first = "chief" if "chief" in tf_config.get("cluster", {}) else "worker"
    return task.get("type") == first and task.get("index", 0) == 0


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
    elif _torch_ddp_active():
        from keras_msrnn.backend import torch_ddp

        count = torch_ddp.world_size()
        return f" (data-parallel over {count} processes, DDP; this is rank {torch_ddp.rank()})"
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
