"""`run_layer_test`: the checks every keras_msrnn layer and model must pass.

In the manner of keras-hub's `TestCase.run_layer_test`: build with
non-default options, check that `get_config` carries every option, round-trip
through `keras.saving.serialize_keras_object` (the path presets and
`.keras` files take), reload the weights into the rebuilt layer and compare
outputs, save and load a `.keras` file for models, and run under mixed
precision.
"""

import os

import keras
import numpy as np


def _flat_numpy(outputs):
    return [
        keras.ops.convert_to_numpy(value)
        for value in keras.tree.flatten(outputs)
        if value is not None
    ]


def _assert_same_outputs(actual, expected, atol):
    actual, expected = _flat_numpy(actual), _flat_numpy(expected)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(got, want, atol=atol)


def run_layer_test(
    layer_class, init_kwargs, call, tmp_path=None, atol=1e-6, mixed_precision_atol=0.05
):
    """Runs `layer_class(**init_kwargs)` through the serialization and dtype checks.

    Args:
        layer_class: a registered keras_msrnn layer or model class.
        init_kwargs: constructor arguments, including non-default options.
        call: `call(layer) -> outputs`, which builds the layer on first use.
        tmp_path: a folder; when given and the layer is a model, also
            checks a `.keras` save and load.
        atol: tolerance of output equality after a round trip.
        mixed_precision_atol: tolerance of mixed-precision outputs against
            float32 ones.

    Returns:
        The float32 layer.
    """
    layer = layer_class(**init_kwargs)
    outputs = call(layer)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        if key not in ("dtype", "name"):
            saved = config[key]
            saved = list(saved) if isinstance(saved, tuple) else saved
            expected = list(value) if isinstance(value, tuple) else value
            if isinstance(saved, dict) and not isinstance(expected, dict):
                expected = keras.saving.serialize_keras_object(value)
            assert saved == expected, f"get_config() loses {key}: {saved!r} != {expected!r}"

    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is layer_class
    assert restored.get_config() == config
    call(restored)
    restored.set_weights(layer.get_weights())
    _assert_same_outputs(call(restored), outputs, atol)

    if tmp_path is not None and isinstance(layer, keras.Model):
        path = os.path.join(str(tmp_path), "model.keras")
        layer.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.get_config() == config
        _assert_same_outputs(call(loaded), outputs, atol)

    mixed = layer_class(**{**init_kwargs, "dtype": "mixed_bfloat16"})
    mixed_outputs = call(mixed)
    assert all(w.dtype == "float32" for w in mixed.weights if "float" in str(w.dtype)), (
        "weights must stay float32"
    )
    mixed.set_weights(layer.get_weights())
    for got, want in zip(_flat_numpy(call(mixed)), _flat_numpy(outputs)):
        assert np.all(np.isfinite(got.astype("float32")))
        np.testing.assert_allclose(got.astype("float32"), want, atol=mixed_precision_atol)
    del mixed_outputs
    return layer
