"""Every example runs, on tiny settings, on the current backend."""

import os
import subprocess
import sys

import pytest

import keras_msrnn
from tests.conftest import save_tiny_preset
from tests.hub_server import FakeHub

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


@pytest.fixture
def tiny_preset(tmp_path):
    """A PredRNN preset with the bundled samples' 10 -> 10 frames."""
    folder = str(tmp_path / "tiny")
    save_tiny_preset(folder, cell="predrnn", input_length=10, output_length=10, filters=8)
    return folder


def run_example(name, *args, env=None, cwd=None):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.large
def test_quickstart(tiny_preset, tmp_path):
    out = run_example("quickstart.py", "--preset", tiny_preset, "--output", str(tmp_path / "q"))
    assert "per-frame MSE" in out
    assert os.path.getsize(tmp_path / "q" / "forecast.gif") > 0


@pytest.mark.large
def test_fine_tune(tmp_path):
    # The bundled preset and the example's defaults: what a user running it sees.
    out = run_example("fine_tune.py", "--output", str(tmp_path / "ft"))
    assert "preset saved" in out
    before, after = (float(v) for v in out.split("loss ")[1].split(",")[0].split(" -> "))
    assert after < before, out  # the defaults show learning
    assert (
        keras_msrnn.from_preset(str(tmp_path / "ft")).count_params()
        == keras_msrnn.from_preset("ms-predrnn-mnist").count_params()
    )


@pytest.mark.large
def test_push_to_hub_through_hf_endpoint(tiny_preset, tmp_path):
    with FakeHub() as hub:
        out = run_example(
            "push_to_hub.py",
            tiny_preset,
            "hf://org/tiny",
            env={"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test", "HF_HOME": str(tmp_path / "hf")},
        )
    assert "forecasts match the local preset" in out
    assert ("POST", "/api/models/org/tiny/commit/main") in hub.requests


@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "torch",
    reason="runs all backends itself; once is enough",
)
@pytest.mark.large
def test_switch_backends(tiny_preset):
    out = run_example("switch_backends.py", "--preset", tiny_preset)
    assert "all backends agree" in out


@pytest.mark.large
def test_quickstart_notebook_runs_headless(tiny_preset, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(os.path.join(EXAMPLES, "quickstart.ipynb"), as_version=4)
    with FakeHub() as hub:
        env = {
            "QUICKSTART_PRESET": tiny_preset,
            "QUICKSTART_EPOCHS": "1",
            "QUICKSTART_EXAMPLES": EXAMPLES,
            "QUICKSTART_OUTPUT": str(tmp_path / "out"),
            "QUICKSTART_HUB_HANDLE": "hf://notebook/my-preset",
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": "hf_test_token",
            "HF_HUB_CACHE": str(tmp_path / "cache"),
        }
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)  # the kernel inherits this process's environment
        try:
            NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "loss on these frames" in outputs and "loaded back from the Hub" in outputs
    assert (tmp_path / "out" / "forecast.gif").exists() and (
        tmp_path / "out" / "my-preset"
    ).is_dir()
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert images  # the strip is shown inline
