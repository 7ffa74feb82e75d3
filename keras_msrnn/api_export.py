"""Registration of public, serializable keras_msrnn objects."""

import keras

PACKAGE = "keras_msrnn"


def keras_msrnn_export(cls):
    """Registers `cls` with Keras so that saved models can find it again.

    Every layer, model, loss and schedule that can appear in a saved config is
    registered under the `keras_msrnn>` prefix. Loading a preset only ever
    deserializes classes registered this way (see `keras_msrnn.presets`).
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
