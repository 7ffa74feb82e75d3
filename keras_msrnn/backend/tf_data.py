"""BACKEND-SPECIFIC: a keras_msrnn data set as a `tf.data.Dataset`."""

import ctypes

import keras

# glibc's `mallopt` parameters (malloc.h) and its largest mmap threshold on 64-bit.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def as_tf_dataset(dataset):
    """The batches of a `SequenceDataset` as a prefetching `tf.data.Dataset`.

    Each pass over the returned data set is one epoch of `dataset` (its
    `on_epoch_end` runs after the last batch). Needs TensorFlow installed.
    """
    try:
        import tensorflow as tf
    except ImportError:
        raise RuntimeError(
            "as_tf_dataset needs TensorFlow: pip install 'keras-msrnn[tensorflow]'."
        ) from None

    (context, future), _ = dataset[0]
    spec = (
        tf.TensorSpec((None,) + context.shape[1:], tf.float32),
        tf.TensorSpec((None,) + future.shape[1:], tf.float32),
    )

    def batches():
        for index in range(len(dataset)):
            yield dataset[index]
        dataset.on_epoch_end()

    return tf.data.Dataset.from_generator(batches, output_signature=(spec, spec[1])).prefetch(
        tf.data.AUTOTUNE
    )


def generator_as_tf_dataset(make_batches, example):
    """The batches `make_batches()` yields, as a `tf.data.Dataset` (a one-pass feed).

    `example` is one batch, `((context, future), future)`, whose shapes all
    batches share (a fixed global batch, which `tf.distribute` splits over
    its replicas).
    """
    import tensorflow as tf

    (context, future), _ = example
    spec = (tf.TensorSpec(context.shape, tf.float32), tf.TensorSpec(future.shape, tf.float32))
    return tf.data.Dataset.from_generator(make_batches, output_signature=(spec, spec[1]))


def undo_generator_malloc_trim():
    """Undoes the allocator setting that TensorFlow's generator feed makes.

    When the process's first `tf.data` generator iterator starts (as `fit`
    makes one from a `PyDataset` or Python generator), TensorFlow sets
    glibc's `M_TRIM_THRESHOLD` to 128 KB ("Memory patch applied" in its
    log). Setting any threshold also freezes glibc's adaptive mmap threshold
    wherever it stands then (2-8 MB after the tests' tiny run), so every
    larger tensor is mapped and unmapped at each use, and the heap is
    trimmed above 128 KB: a MIM training step spent a third of its time in
    the kernel, at 190,000 page faults a second.
    `MSStack`'s `fit`, `evaluate` and `predict` call this after the first
    batch of each pass (`RestoreMallocThresholds`). This sets the thresholds
    glibc adapts to by itself for large buffers (mmap above 32 MB, trim
    above 64 MB), so freed buffers are reused. No-op off TensorFlow or off
    glibc.

    Returns:
        Whether the thresholds were set.
    """
    if keras.config.backend() != "tensorflow":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX)
    )


class RestoreMallocThresholds(keras.callbacks.Callback):
    """Calls `undo_generator_malloc_trim` once each pass's feed has started.

    TensorFlow sets the allocator once per process, when its first generator
    iterator starts: in whichever of `fit`, `evaluate` or `predict` reads a
    `PyDataset` or generator first. Undoing it after the first batch of
    every pass costs two `mallopt` calls.
    """

    def on_train_batch_end(self, batch, logs=None):
        self._after(batch)

    def on_test_batch_end(self, batch, logs=None):
        self._after(batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._after(batch)

    @staticmethod
    def _after(batch):
        if batch == 0:
            undo_generator_malloc_trim()


def with_malloc_thresholds_restored(callbacks):
    """A list of `callbacks` (a list or None) and `RestoreMallocThresholds`.

    The user's list is not changed. Off TensorFlow, and for a
    `keras.callbacks.CallbackList` (what `fit` hands its validation
    `evaluate`, built from `fit`'s list), `callbacks` as given.
    """
    if keras.config.backend() != "tensorflow" or isinstance(
        callbacks, keras.callbacks.CallbackList
    ):
        return callbacks
    callbacks = list(callbacks or ())
    if not any(isinstance(c, RestoreMallocThresholds) for c in callbacks):
        callbacks.append(RestoreMallocThresholds())
    return callbacks
