"""BACKEND-SPECIFIC: a keras_msrnn data set as a `tf.data.Dataset`."""


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
