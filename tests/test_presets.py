import json
import os
import shutil

import numpy as np
import pytest

import keras_msrnn
from keras_msrnn.presets import FORMAT_VERSION, PresetError

FRAMES = np.random.default_rng(0).random((1, 3, 8, 8, 1)).astype("float32")


def tiny_model(filters=4):
    model = keras_msrnn.MSStack(
        cell="convlstm", filters=filters, scales=(1, 2, 1), input_length=3, output_length=2
    )
    model(FRAMES)
    return model


def forecast(model):
    return np.asarray(model.predict(FRAMES, verbose=0))


@pytest.fixture
def preset_dir(tmp_path):
    model = tiny_model()
    model.save_to_preset(
        str(tmp_path / "preset"), {"dataset": "moving_mnist", "description": "tiny"}
    )
    return tmp_path / "preset", forecast(model)


def test_save_and_load_local_preset(preset_dir):
    folder, expected = preset_dir
    assert sorted(os.listdir(folder)) == [
        "README.md",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["parameter_count"] == tiny_model().count_params()
    assert metadata["input_shape"] == [3, 8, 8, 1]
    model = keras_msrnn.from_preset(str(folder))
    np.testing.assert_allclose(forecast(model), expected, atol=1e-6)
    assert model.preset_metadata["dataset"] == "moving_mnist"
    assert (
        keras_msrnn.MSStack.from_preset(str(folder)).count_params() == metadata["parameter_count"]
    )
    card = (folder / "README.md").read_text()
    front_matter = card.split("---")[1]
    for line in (
        "library_name: keras-msrnn",
        "pipeline_tag: other",
        "- mnist",
        "- video-prediction",
    ):
        assert line in front_matter.splitlines()
    assert card.count("# preset\n") == 1  # titled by its folder, no placeholder
    assert f'keras_msrnn.from_preset("{folder}")' in card


def test_preset_weights_leave_the_optimizer_out(tmp_path):
    import h5py

    model = tiny_model()
    model.compile()
    model.fit((FRAMES, FRAMES[:, :2]), FRAMES[:, :2], epochs=1, verbose=0)
    model.save_to_preset(str(tmp_path / "trained"))
    with h5py.File(tmp_path / "trained" / "model.weights.h5") as file:
        assert "optimizer" not in file
    assert model.optimizer is not None
    np.testing.assert_allclose(
        forecast(keras_msrnn.from_preset(str(tmp_path / "trained"))), forecast(model), atol=1e-6
    )


def test_overrides_apply_and_wrong_shapes_fail_clearly(preset_dir):
    folder, _ = preset_dir
    longer = keras_msrnn.from_preset(str(folder), output_length=4)
    assert forecast(longer).shape == (1, 4, 8, 8, 1)
    with pytest.raises(
        PresetError,
        match=r"model.weights.h5 does not match the model with overrides \{'filters': 8\}",
    ):
        keras_msrnn.from_preset(str(folder), filters=8)
    untrained = keras_msrnn.from_preset(str(folder), load_weights=False)
    assert untrained.count_params() == longer.count_params()


def test_hub_round_trip_through_the_real_client(preset_dir, hub, tmp_path):
    folder, expected = preset_dir
    url = keras_msrnn.upload_preset("hf://org/tiny", str(folder), commit_message="first")
    assert "/org/tiny/commit/" in url
    assert ("POST", "/api/models/org/tiny/commit/main") in hub.requests
    model = keras_msrnn.from_preset("hf://org/tiny", cache_dir=str(tmp_path / "cache"))
    np.testing.assert_allclose(forecast(model), expected, atol=1e-6)
    card = hub.repos["org/tiny"].files("main")[1]["README.md"].decode()
    assert "library_name: keras-msrnn" in card
    assert 'keras_msrnn.from_preset("hf://org/tiny")' in card and "<org>" not in card


def test_the_card_carries_the_test_metrics_as_eval_results(tmp_path):
    from huggingface_hub import ModelCard

    metrics = {"future_frames": {"mse": 91.5, "ssim": 0.79}}
    tiny_model().save_to_preset(
        str(tmp_path / "p"),
        {"name": "ms-predrnn-mnist", "dataset": "moving_mnist", "metrics": metrics},
    )
    card = ModelCard.load(str(tmp_path / "p" / "README.md"))
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {"mse": 91.5, "ssim": 0.79}
    assert 'from_preset("ms-predrnn-mnist")' in card.text  # a zoo name loads by name


def test_revisions_pin(preset_dir, hub, tmp_path):
    folder, expected = preset_dir
    keras_msrnn.upload_preset("hf://org/tiny", str(folder))
    first_sha = hub.repos["org/tiny"].branches["main"]
    other = tiny_model()
    other.save_to_preset(str(tmp_path / "other"))
    keras_msrnn.upload_preset("hf://org/tiny", str(tmp_path / "other"))
    cache = str(tmp_path / "cache")
    pinned = keras_msrnn.from_preset(f"hf://org/tiny@{first_sha}", cache_dir=cache)
    np.testing.assert_allclose(forecast(pinned), expected, atol=1e-6)
    latest = keras_msrnn.from_preset("hf://org/tiny", cache_dir=cache)
    np.testing.assert_allclose(forecast(latest), forecast(other), atol=1e-6)
    with pytest.raises(PresetError, match="revision 'v9' does not exist"):
        keras_msrnn.from_preset("hf://org/tiny", revision="v9", cache_dir=cache)


def test_missing_repository_and_file_on_the_hub(preset_dir, hub, tmp_path):
    folder, _ = preset_dir
    cache = tmp_path / "cache"
    with pytest.raises(PresetError, match="'org/absent' does not exist"):
        keras_msrnn.from_preset("hf://org/absent", cache_dir=str(cache))
    hub.repos.setdefault("org/partial", None)
    from tests.hub_server import Repository

    hub.repos["org/partial"] = Repository()
    files = {name: (folder / name).read_bytes() for name in ("config.json", "metadata.json")}
    hub.repos["org/partial"].commit("main", files, "no weights")
    with pytest.raises(PresetError, match="'hf://org/partial': model.weights.h5 is missing"):
        keras_msrnn.from_preset("hf://org/partial", cache_dir=str(cache))
    assert not list(cache.glob("models--org--partial/snapshots/*/*"))


def test_interrupted_download_leaves_no_broken_cache_entry(preset_dir, hub, tmp_path):
    folder, expected = preset_dir
    keras_msrnn.upload_preset("hf://org/tiny", str(folder))
    cache = tmp_path / "cache"
    hub.fail_after_bytes = 10
    with pytest.raises(PresetError, match="hf://org/tiny"):
        keras_msrnn.from_preset("hf://org/tiny", cache_dir=str(cache))
    assert not list(cache.glob("models--org--tiny/snapshots/*/*"))
    hub.fail_after_bytes = None
    model = keras_msrnn.from_preset("hf://org/tiny", cache_dir=str(cache))
    np.testing.assert_allclose(forecast(model), expected, atol=1e-6)


def test_corrupt_preset_on_the_hub_is_evicted_from_the_cache(preset_dir, hub, tmp_path):
    folder, _ = preset_dir
    (folder / "config.json").write_text("{not json")
    from tests.hub_server import Repository

    hub.repos["org/broken"] = Repository()
    hub.repos["org/broken"].commit(
        "main", {p.name: p.read_bytes() for p in folder.iterdir()}, "broken"
    )
    cache = tmp_path / "cache"
    with pytest.raises(PresetError, match="'hf://org/broken': config.json is not valid JSON"):
        keras_msrnn.from_preset("hf://org/broken", cache_dir=str(cache))
    assert not list(cache.glob("models--org--broken/snapshots/*/*"))
    assert not list(cache.glob("models--org--broken/blobs/*"))


def _prepare_cache(cache, repo_id, folder, sha="0123456789abcdef0123456789abcdef01234567"):
    """The Hugging Face cache layout: refs/main -> snapshots/<sha>/<files>."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    shutil.copytree(folder, repo / "snapshots" / sha)


def test_offline_mode_loads_from_a_prepared_cache(preset_dir, tmp_path, monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants
    import huggingface_hub.hf_api

    folder, expected = preset_dir
    cache = tmp_path / "cache"
    _prepare_cache(cache, "org/cached", folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    # An endpoint nobody listens on: any network access would fail.
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    model = keras_msrnn.from_preset("hf://org/cached", cache_dir=str(cache))
    np.testing.assert_allclose(forecast(model), expected, atol=1e-6)
    with pytest.raises(PresetError, match="not in the local cache \\(HF_HUB_OFFLINE is set\\)"):
        keras_msrnn.from_preset("hf://org/elsewhere", cache_dir=str(cache))


@pytest.mark.parametrize(
    "handle",
    [
        "hf://../etc/passwd",
        "hf://org/name/../../x",
        "hf://org",
        "hf://org/na me",
        "hf://org/name@../x",
        "hf:///abs/path",
    ],
)
def test_handles_that_escape_are_rejected(handle):
    with pytest.raises(PresetError, match="Invalid"):
        keras_msrnn.from_preset(handle)


def test_unknown_identifiers_and_schemes():
    with pytest.raises(PresetError, match="Unknown preset 'no-such-preset'"):
        keras_msrnn.from_preset("no-such-preset")
    with pytest.raises(PresetError, match="Unsupported preset scheme"):
        keras_msrnn.from_preset("kaggle://org/model")
    with pytest.raises(PresetError, match="must be a string"):
        keras_msrnn.from_preset(42)


def _edit_json(path, edit):
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))


def test_bad_presets_fail_with_the_preset_and_the_problem(preset_dir):
    folder, _ = preset_dir
    name = str(folder)
    (folder / "model.weights.h5").rename(folder / "moved.h5")
    with pytest.raises(PresetError, match="has no model.weights.h5"):
        keras_msrnn.from_preset(name)
    (folder / "moved.h5").write_bytes(b"truncated")
    (folder / "moved.h5").rename(folder / "model.weights.h5")
    with pytest.raises(PresetError, match="model.weights.h5 does not match"):
        keras_msrnn.from_preset(name)
    _edit_json(folder / "metadata.json", lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(PresetError, match="Upgrade keras-msrnn"):
        keras_msrnn.from_preset(name)
    _edit_json(folder / "metadata.json", lambda m: m.update(format_version=FORMAT_VERSION))
    (folder / "config.json").unlink()
    with pytest.raises(PresetError, match=f"Preset '{name}' has no config.json"):
        keras_msrnn.from_preset(name)


def test_loading_never_runs_foreign_code(preset_dir):
    folder, _ = preset_dir
    config = json.loads((folder / "config.json").read_text())
    config["config"]["sampling"] = {
        "module": "os",
        "class_name": "system",
        "config": {"command": "echo owned"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match="'os.system', which is neither a keras_msrnn class"):
        keras_msrnn.from_preset(str(folder))
    config["registered_name"] = "evil>Model"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(PresetError, match="'evil>Model', not a keras_msrnn model"):
        keras_msrnn.from_preset(str(folder))


def test_wrong_class_is_refused(preset_dir):
    folder, _ = preset_dir

    class OtherModel(keras_msrnn.MSStack):
        pass

    with pytest.raises(PresetError, match="holds a MSStack, not a OtherModel"):
        OtherModel.from_preset(str(folder))


def test_upload_checks_the_folder_first(tmp_path, hub):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        keras_msrnn.upload_preset("hf://org/x", str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PresetError, match="has no metadata.json"):
        keras_msrnn.upload_preset("hf://org/x", str(tmp_path / "empty"))
    assert not hub.requests
