"""The zoo: 64 names, their status, trained presets on every backend, publishing."""

import os

import keras
import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import recipes, training
from keras_msrnn.presets import PresetError, registry

HERE = os.path.dirname(__file__)
SAMPLE = os.path.join(HERE, "..", "examples", "data", "moving_mnist_test_0.npy")
FORECASTS = os.path.join(HERE, "data", "zoo")
TRAINED = [
    name for name in recipes.preset_names() if registry.locate(name)[0] in ("bundled", "repository")
]


def test_sixty_four_names_in_one_scheme():
    names = recipes.preset_names()
    assert len(names) == len(set(names)) == 64
    for name in (
        "ms-predrnn-mnist",
        "predrnn-mnist",
        "ms-trajgru-radar-dwd",
        "predrnn-v2-kth",
        "ms-predrnn-pp-taxibj",
    ):
        assert name in names
    assert recipes.parse_name("ms-predrnn-v2-kth") == ("predrnn-v2", "kth", True)
    assert recipes.parse_name("predrnn-kth-cpu") is None


def test_every_name_has_a_status_and_a_recipe_that_builds():
    presets = keras_msrnn.list_presets()
    assert set(recipes.preset_names()) <= set(presets)
    for name in recipes.preset_names():
        entry = presets[name]
        assert entry["status"] in ("trained", "published", "recipe only"), name
        assert entry["train_command"].startswith(f"keras-msrnn train {name}")
        recipe = training.load_recipe(name)
        assert recipe["model"]["cell"] == recipes.CELLS[entry["cell"]]
        assert recipe["model"]["scales"] == (
            recipes.MS_SCALES if entry["multi_scale"] else recipes.PLAIN_SCALES
        )
    assert presets["ms-predrnn-mnist-cpu"]["alias_of"] == "ms-predrnn-mnist"


def test_protocol_recipes_follow_msrnn():
    recipe = training.load_recipe("ms-predrnn-mnist")
    assert recipe["model"]["filters"] == 64 and recipe["model"]["patch_size"] == 1
    assert recipe["training"]["batch_size"] == 4 and recipe["training"]["steps"] == 20 * 1750
    assert recipe["training"]["learning_rate"] == recipe["training"]["final_learning_rate"] == 3e-4
    assert recipe["model"]["sampling"]["config"]["decay_steps"] == 35000
    v2 = training.load_recipe("predrnn-v2-radar-dwd")
    assert v2["model"]["sampling"] == {
        "class_name": "EpochReverseSampling",
        "config": {"epochs": 16, "steps_per_epoch": 3900},
    }
    cpu, ms_cpu = (
        training.load_recipe("predrnn-mnist", "cpu"),
        training.load_recipe("ms-predrnn-mnist", "cpu"),
    )
    assert {k: v for k, v in cpu["model"].items() if k != "scales"} == {
        k: v for k, v in ms_cpu["model"].items() if k != "scales"
    }
    assert cpu["training"] == ms_cpu["training"] and cpu["dataset"] == ms_cpu["dataset"]
    with pytest.raises(ValueError, match="'cpu' variant exists for Moving MNIST only"):
        training.load_recipe("predrnn-kth", "cpu")


def test_a_recipe_only_name_says_how_to_train_it():
    with pytest.raises(
        PresetError,
        match=r"'predrnn-kth' has no weights yet \(recipe only\); train it with: "
        r"keras-msrnn train predrnn-kth --data-dir",
    ):
        keras_msrnn.from_preset("predrnn-kth")


def test_the_flagship_is_bundled():
    assert registry.locate("ms-predrnn-mnist")[0] == "bundled"
    assert keras_msrnn.list_presets()["ms-predrnn-mnist"]["status"] == "trained"


@pytest.mark.parametrize("name", TRAINED)
def test_trained_presets_reproduce_their_forecast(name):
    model = keras_msrnn.from_preset(name)
    assert model.preset_metadata["name"] == name
    assert model.preset_metadata["metrics"]["test_sequences"] >= 1000
    context = np.load(SAMPLE)[None, : model.input_length, :, :, None].astype(
        "float32"
    ) / np.float32(255)
    forecast = keras.ops.convert_to_numpy(model(context))[0]
    np.testing.assert_allclose(forecast, np.load(os.path.join(FORECASTS, f"{name}.npy")), atol=1e-4)
    _, folder = registry.locate(name)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    assert size <= 5 * 2**20, f"{name} is {size / 2**20:.1f} MB"


def test_the_repository_zoo_fits_its_budget():
    total = sum(
        os.path.getsize(os.path.join(root, f))
        for base in (registry.BUILTIN_DIR, registry.REPOSITORY_DIR)
        if os.path.isdir(base)
        for root, _, files in os.walk(base)
        for f in files
    )
    assert total <= 80 * 2**20


@pytest.mark.large
def test_publishing_the_zoo_and_loading_each_name_from_the_hub(hub, tmp_path, monkeypatch):
    assert TRAINED, "the zoo has no trained preset to publish"
    published = tmp_path / "published.json"
    monkeypatch.setattr(registry, "PUBLISHED_FILE", str(published))
    uploaded = keras_msrnn.presets.publish_zoo("zoo-org")
    assert sorted(uploaded) == sorted(TRAINED)
    for name, handle in uploaded.items():
        assert handle == f"hf://zoo-org/{name}@{hub.repos[f'zoo-org/{name}'].branches['main']}"
    # Without the local copies, the names resolve to the pinned Hub revisions.
    monkeypatch.setattr(registry, "BUILTIN_DIR", str(tmp_path / "no-builtin"))
    monkeypatch.setattr(registry, "REPOSITORY_DIR", str(tmp_path / "no-repository"))
    cache = str(tmp_path / "cache")
    for name in TRAINED:
        assert keras_msrnn.list_presets()[name]["status"] == "published"
        model = keras_msrnn.from_preset(name, cache_dir=cache)
        assert model.preset_metadata["name"] == name
    with pytest.raises(PresetError, match="not published to the Hub"):
        keras_msrnn.from_preset("predrnn-kth", revision="main")
