"""Faults and hostile input: every one is refused in one line, and nothing the user had is lost.

Each command-line case asserts the exit code, that stderr is one line naming
the problem, that no traceback is printed and that the user's files are
unchanged. Training stops and resumes are in `test_training.py`
(`test_a_run_stopped_after_every_step_equals_an_uninterrupted_one`,
`test_a_write_interrupted_before_the_rename_keeps_the_previous_checkpoint`,
`test_sigterm_and_kill_9_leave_a_run_that_resumes_to_the_uninterrupted_result`).
"""

import hashlib
import json
import os
import shutil
import threading

import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import cli, presets
from keras_msrnn.frames import to_unit_frames
from keras_msrnn.presets import PresetError
from tests.conftest import save_tiny_preset

SAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "examples", "data", "moving_mnist_test_0.npy"
)


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo") / "preset"
    save_tiny_preset(str(folder))
    return folder


def snapshot(*paths):
    """Hashes of every file under `paths`, to show nothing was changed."""
    digests = {}
    for path in paths:
        files = (
            [path]
            if os.path.isfile(path)
            else [os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs]
        )
        for name in files:
            with open(name, "rb") as file:
                digests[name] = hashlib.sha256(file.read()).hexdigest()
    return digests


def refused(capsys, argv, expected, code=1):
    """Runs the command, checks it failed in one line containing `expected`, returns that line."""
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert expected in err, err
    return err


@pytest.fixture
def no_model_loading(monkeypatch):
    """Fails the test if the command loads a model: input checks must come first."""

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(presets, "from_preset", loaded)


def write_frames(tmp_path, frames, name="frames.npy"):
    path = str(tmp_path / name)
    np.save(path, frames)
    return path


GOOD = np.load(SAMPLE)[:5]


@pytest.mark.parametrize(
    "frames, expected",
    [
        (
            np.where(np.arange(5)[:, None, None] == 2, np.nan, GOOD / 255.0),
            "holds 4096 NaN or infinite value(s)",
        ),
        (np.full(GOOD.shape, np.inf), "NaN or infinite value(s), the first at index (0, 0, 0)"),
        (
            GOOD / 255.0 - 0.5,
            "float frames must lie in [0, 1], but they hold -0.5..0.5; rescale them",
        ),
        (GOOD.astype("float32"), "hold 0..255; divide by 255"),
        (
            (GOOD.astype("int16") * 4 - 100),
            "int16 frames are read as 8-bit intensities 0..255, but they hold -100..920",
        ),
        (np.zeros((0, 64, 64)), "holds no frames"),
    ],
    ids=["nan", "inf", "negative", "float-0-255", "int16-out-of-range", "empty-array"],
)
def test_bad_frame_values_are_refused_before_the_model_loads(
    frames, expected, tiny_preset, tmp_path, capsys, no_model_loading
):
    path = write_frames(tmp_path, frames)
    before = snapshot(path)
    refused(
        capsys, ["predict", str(tiny_preset), path, "--output", str(tmp_path / "out")], expected
    )
    assert snapshot(path) == before
    assert not os.path.exists(tmp_path / "out")


def test_the_api_applies_the_same_rules(tiny_preset):
    model = keras_msrnn.from_preset(str(tiny_preset))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.forecast(np.full((3, 64, 64, 1), np.nan, "float32"))
    with pytest.raises(ValueError, match="divide by 255"):
        model.forecast(GOOD[:3, :, :, None].astype("float32"))
    as_uint8 = model.forecast(GOOD[:3, :, :, None])
    as_int16 = model.forecast(
        GOOD[:3, :, :, None].astype("int16")
    )  # the documented rule: 0..255 intensities
    np.testing.assert_array_equal(as_uint8, as_int16)
    assert as_uint8.shape == (2, 64, 64, 1) and 0 <= as_uint8.min() and as_uint8.max() <= 1
    with pytest.raises(ValueError, match="FrameWindows frames holds 40960 NaN or infinite"):
        keras_msrnn.datasets.FrameWindows(
            np.full((2, 5, 64, 64, 1), np.inf, "float32"), input_length=3, output_length=2
        )
    hostile = [
        ((np.full((1, 3, 64, 64, 1), 2.0, "float32"), np.zeros((1, 2, 64, 64, 1), "float32")), None)
    ]
    with pytest.raises(ValueError, match="batch 0 context: float frames must lie in \\[0, 1\\]"):
        keras_msrnn.evaluate(model, hostile, verbose=False)
    np.testing.assert_allclose(to_unit_frames([[0.5, 1.0000001]]), [[0.5, 1.0]])


def test_unreadable_inputs_are_one_line(tiny_preset, tmp_path, capsys, no_model_loading):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    refused(
        capsys,
        ["predict", str(tiny_preset), str(empty), "-o", str(tmp_path / "o")],
        "is not a readable numpy file",
    )
    torn = tmp_path / "torn.npz"
    torn.write_bytes(b"PK\x03\x04garbage")
    refused(
        capsys,
        ["predict", str(tiny_preset), str(torn), "-o", str(tmp_path / "o")],
        "is not a readable numpy file",
    )
    fake_gif = tmp_path / "frames.gif"
    fake_gif.write_text("not a gif")
    refused(
        capsys,
        ["predict", str(tiny_preset), str(fake_gif), "-o", str(tmp_path / "o")],
        "is not a readable GIF",
    )
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object))
    refused(
        capsys,
        ["predict", str(tiny_preset), str(pickled), "-o", str(tmp_path / "o")],
        "is not a readable numpy file",
    )


def test_the_output_is_checked_before_any_work(tiny_preset, tmp_path, capsys, no_model_loading):
    frames = write_frames(tmp_path, GOOD)
    a_file = tmp_path / "taken"
    a_file.write_text("the user's notes")
    refused(
        capsys, ["predict", str(tiny_preset), frames, "-o", str(a_file)], "is a file, not a folder"
    )
    assert a_file.read_text() == "the user's notes"
    refused(
        capsys,
        ["predict", str(tiny_preset), frames, "-o", str(a_file / "sub")],
        "cannot be written",
    )
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "forecast.png").write_bytes(b"an earlier forecast")
    refused(
        capsys,
        ["predict", str(tiny_preset), frames, "-o", str(earlier)],
        "forecast.png already exists; pass --overwrite",
    )
    assert (earlier / "forecast.png").read_bytes() == b"an earlier forecast"


def test_overwrite_replaces_an_earlier_forecast(tiny_preset, tmp_path, capsys):
    frames = write_frames(tmp_path, GOOD)
    out = str(tmp_path / "out")
    assert cli.main(["predict", str(tiny_preset), frames, "-o", out]) == 0
    assert cli.main(["predict", str(tiny_preset), frames, "-o", out, "--overwrite"]) == 0


def _tampered(tiny_preset, tmp_path, edit):
    folder = tmp_path / "tampered"
    shutil.copytree(tiny_preset, folder)
    edit(folder)
    return folder


def _edit_config(edit):
    def apply(folder):
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))

    return apply


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda f: (f / "model.weights.h5").write_bytes(
                (f / "model.weights.h5").read_bytes()[:500]
            ),
            "model.weights.h5 does not match",
        ),
        (lambda f: (f / "config.json").write_text("{"), "config.json is not valid JSON"),
        (lambda f: (f / "metadata.json").unlink(), "has no metadata.json"),
        (
            _edit_config(lambda c: c.update(module="os")),
            "gives module 'os', not 'keras_msrnn.models.ms_stack'",
        ),
        (
            _edit_config(
                lambda c: c["config"].update(
                    sampling={"module": "subprocess", "class_name": "Popen", "config": {}}
                )
            ),
            "'subprocess.Popen', which is neither a keras_msrnn class",
        ),
        (
            _edit_config(lambda c: c["config"].update(cell="mim")),
            "model.weights.h5 does not match the model",
        ),
    ],
    ids=[
        "truncated-weights",
        "invalid-json",
        "missing-metadata",
        "foreign-module",
        "foreign-class",
        "weights-of-another-cell",
    ],
)
def test_tampered_presets_are_refused_by_name(edit, expected, tiny_preset, tmp_path, capsys):
    folder = _tampered(tiny_preset, tmp_path, edit)
    before = snapshot(str(folder))
    frames = write_frames(tmp_path, GOOD)
    refused(capsys, ["predict", str(folder), frames, "-o", str(tmp_path / "out")], expected)
    assert snapshot(str(folder)) == before


def test_path_tricks_are_refused(capsys, tmp_path):
    frames = write_frames(tmp_path, GOOD)
    for handle in ("hf://../etc/passwd", "hf://org/name@../../x", "file:///etc/passwd"):
        refused(
            capsys, ["predict", handle, frames, "-o", str(tmp_path / "o")], handle.split("@")[0][:8]
        )


def test_a_bad_later_commit_leaves_the_good_cached_one_loadable(
    tiny_preset, hub, tmp_path, monkeypatch
):
    import huggingface_hub.constants

    keras_msrnn.upload_preset("hf://org/tiny", str(tiny_preset))
    good = hub.repos["org/tiny"].branches["main"]
    cache = str(tmp_path / "cache")
    expected = keras_msrnn.from_preset(f"hf://org/tiny@{good}", cache_dir=cache).forecast(
        GOOD[:3, :, :, None]
    )
    bad = {"config.json": b"{broken", "metadata.json": (tiny_preset / "metadata.json").read_bytes()}
    hub.repos["org/tiny"].commit("main", bad, "a bad commit that shares the weights blob")
    with pytest.raises(PresetError, match="config.json is not valid JSON"):
        keras_msrnn.from_preset("hf://org/tiny", cache_dir=cache)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    again = keras_msrnn.from_preset(f"hf://org/tiny@{good}", cache_dir=cache)
    np.testing.assert_array_equal(again.forecast(GOOD[:3, :, :, None]), expected)


def test_a_server_killed_mid_download_then_a_reload(tiny_preset, hub, tmp_path, capsys):
    keras_msrnn.upload_preset("hf://org/tiny", str(tiny_preset))
    cache = tmp_path / "cache"
    frames = write_frames(tmp_path, GOOD)
    hub.fail_after_bytes = 100
    os.environ["HF_HUB_CACHE"] = str(cache)
    try:
        refused(
            capsys, ["predict", "hf://org/tiny", frames, "-o", str(tmp_path / "o")], "hf://org/tiny"
        )
        assert not list(cache.glob("models--org--tiny/snapshots/*/model.weights.h5"))
        hub.fail_after_bytes = None
        assert keras_msrnn.from_preset("hf://org/tiny", cache_dir=str(cache)).count_params() > 0
    finally:
        del os.environ["HF_HUB_CACHE"]


def test_two_concurrent_cold_loads(tiny_preset, hub, tmp_path):
    keras_msrnn.upload_preset("hf://org/tiny", str(tiny_preset))
    cache, outcomes = str(tmp_path / "cache"), []

    def load():
        try:
            outcomes.append(
                keras_msrnn.from_preset("hf://org/tiny", cache_dir=cache).count_params()
            )
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            outcomes.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2 and all(isinstance(o, int) for o in outcomes), outcomes
