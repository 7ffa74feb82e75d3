import json
import os

import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import training


def tiny_recipe():
    return {
        "name": "tiny",
        "model": {
            "cell": "convlstm", "filters": 2, "scales": [1, 2, 1], "input_length": 2, "output_length": 2,
            "sampling": {"class_name": "LinearSampling", "config": {"decay_steps": 4}},
        },
        "dataset": {"class_name": "MovingMNIST", "config": {"frame_size": 32}},
        "training": {"batch_size": 2, "steps": 4, "steps_per_epoch": 2, "learning_rate": 0.01,
                     "final_learning_rate": 0.001, "seed": 3},
        "evaluation": {"num_sequences": 2, "batch_size": 2},
    }


def test_zoo_recipes_build_their_models():
    zoo = os.path.join(os.path.dirname(__file__), "..", "zoo")
    for name in sorted(os.listdir(zoo)):
        recipe = training.load_recipe(os.path.join(zoo, name))
        model = training.build_model(recipe)
        assert model.input_length == recipe["model"]["input_length"], name


def test_training_stops_on_time_resumes_and_exports_a_preset(tmp_path, shared_data):
    workdir, data_dir = str(tmp_path / "run"), str(shared_data / "mnist")
    model, finished = training.train(tiny_recipe(), workdir, data_dir, max_minutes=0, verbose=0)
    assert not finished  # stopped after the first of two epochs
    assert int(model.sampling_step.numpy()) == 2
    model, finished = training.train(tiny_recipe(), workdir, data_dir, verbose=0)
    assert finished
    assert int(model.sampling_step.numpy()) == 4  # resumed, not restarted
    assert int(model.optimizer.iterations.numpy()) == 4
    state = json.load(open(os.path.join(workdir, "training_state.json")))
    assert state["steps_done"] == 4 and state["finished"]
    metadata = training.export_preset(model, tiny_recipe(), workdir, str(tmp_path / "preset"), data_dir, verbose=False)
    assert metadata["training"]["steps"] == 4
    assert set(metadata["metrics"]["future_frames"]) == {"mse", "mae", "ssim", "psnr"}
    loaded = keras_msrnn.from_preset(str(tmp_path / "preset"))
    frames = np.random.default_rng(0).random((1, 2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(frames, verbose=0), model.predict(frames, verbose=0), atol=1e-5)


def test_bad_recipes_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        training.load_recipe(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        training.load_recipe(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match=r"lacks section\(s\) \['dataset', 'training'\]"):
        training.load_recipe({"name": "x", "model": {}})
    recipe = tiny_recipe()
    recipe["dataset"]["class_name"] = "Nope"
    with pytest.raises(ValueError, match="Unknown dataset 'Nope'"):
        training.make_dataset(recipe, "train")
