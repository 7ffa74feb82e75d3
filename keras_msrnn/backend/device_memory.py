"""BACKEND- AND SYSTEM-SPECIFIC: memory statistics for benchmarks.

Keras has no portable API for device memory, so each backend is asked in its
own terms. Frameworks are imported lazily; on CPU nothing is imported, except
for XLA's buffer assignment on JAX (`compiled_step_megabytes`). Host memory
comes from Linux's `/proc/self`.
"""

import keras


def process_megabytes(field):
    """A size from `/proc/self/status` in MB: `"VmRSS"` (resident now) or `"VmHWM"` (peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak_resident_size():
    """Restarts the `VmHWM` peak; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def accelerator():
    """Name of the accelerator the current backend computes on, or None on CPU."""
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return None if device.platform == "cpu" else device.device_kind
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else None
    return None


def reset_peak():
    """Starts a new peak-memory window on the accelerator."""
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")
    # JAX exposes no reset; peak_megabytes() reports the process-wide peak.


def peak_megabytes():
    """Peak accelerator memory in use since `reset_peak` (JAX: since start)."""
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    if backend == "jax":
        import jax

        return jax.devices()[0].memory_stats()["peak_bytes_in_use"] / 2**20
    raise NotImplementedError(backend)


def compiled_step_megabytes(model, x, y):
    """XLA's scratch memory for one compiled training step on JAX, else None.

    That is the size of the buffers XLA assigns to the intermediates of the
    jitted `train_step` (activations kept for the gradient and workspaces),
    without weights, optimizer slots or the framework. XLA's CPU allocator
    keeps freed buffers, so resident-size measures cannot show it. The step
    is compiled again as Keras compiles it (state donated), not run.
    `model` must have been trained for a step, so that its state exists.
    """
    if keras.config.backend() != "jax":
        return None
    import jax

    # The state tuple Keras' JAX trainer passes to `train_step`.
    state = tuple(
        [variable.value for variable in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    )
    step = jax.jit(model.train_step, donate_argnums=0)
    analysis = step.lower(state, (x, y, None)).compile().memory_analysis()
    return analysis.temp_size_in_bytes / 2**20
