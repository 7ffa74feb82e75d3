"""BACKEND-SPECIFIC: accelerator memory statistics for benchmarks.

Keras has no portable API for device memory, so each backend is asked in its
own terms. Frameworks are imported lazily; on CPU nothing is imported.
"""

import keras


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
