"""A loaded preset exports right away, and the export forecasts what the model does."""

import os

import keras
import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import cli
from tests.conftest import save_tiny_preset

BACKEND = keras.config.backend()
# What Keras can export from each backend with this project's dependencies.
SUPPORTED = {
    "tensorflow": {"tf_saved_model", "onnx"},
    "jax": {"tf_saved_model"},
    "torch": {"onnx"},
}


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "preset"
    save_tiny_preset(str(folder), size=16)
    return str(folder)


def context():
    return np.random.default_rng(0).random((1, 3, 16, 16, 1)).astype("float32")


def run_saved_model(path, frames):
    tf = pytest.importorskip("tensorflow")
    loaded = tf.saved_model.load(path)  # keep it alive: its functions refer to its variables
    return loaded.serve(frames).numpy()


def run_onnx(path, frames):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(path)
    return session.run(None, {session.get_inputs()[0].name: frames})[0]


@pytest.mark.parametrize("fmt", ["tf_saved_model", "onnx"])
def test_a_loaded_preset_exports_and_forecasts_the_same(fmt, preset, tmp_path, capsys):
    output = str(tmp_path / ("model.onnx" if fmt == "onnx" else "saved_model"))
    code = cli.main(["export", preset, output, "--format", fmt])
    if fmt not in SUPPORTED[BACKEND]:
        assert code == 1
        err = capsys.readouterr().err.strip()
        assert (
            len(err.splitlines()) == 1 and f"{fmt} export from the {BACKEND} backend needs" in err
        )
        return
    assert code == 0, capsys.readouterr().err
    assert f"exported {preset} as {fmt} to {output}" in capsys.readouterr().out
    model = keras_msrnn.from_preset(preset)
    expected = keras.ops.convert_to_numpy(model(context()))
    run = run_onnx if fmt == "onnx" else run_saved_model
    np.testing.assert_allclose(run(output, context()), expected, atol=1e-5)


def test_export_refuses_to_overwrite(preset, tmp_path, capsys):
    taken = tmp_path / "taken.onnx"
    taken.write_text("the user's file")
    assert cli.main(["export", preset, str(taken), "--format", "onnx"]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert taken.read_text() == "the user's file"
    assert not os.path.exists(tmp_path / "missing" / "x")


@pytest.mark.skipif("onnx" not in SUPPORTED[BACKEND], reason="no ONNX export from this backend")
def test_a_model_with_a_graph_time_loop_exports_to_onnx_unrolled(tmp_path):
    # tf2onnx cannot convert TensorFlow's loop over tensor arrays.
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=4, scales=(1, 2, 1), input_length=3, output_length=2, unroll=False
    )
    expected = keras.ops.convert_to_numpy(model(context()))
    output = str(tmp_path / "model.onnx")
    model.export(output, format="onnx")
    assert model.unroll is False
    np.testing.assert_allclose(run_onnx(output, context()), expected, atol=1e-5)
