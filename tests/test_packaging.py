"""The wheel holds what a pip user needs: list, predict and train work from it alone."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "examples", "data", "moving_mnist_test_0.npy")


def run(command, cwd, env=None):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


@pytest.mark.large
def test_a_wheel_installs_and_lists_predicts_and_trains(tmp_path, shared_data):
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            REPO,
        ],
        cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("keras_msrnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "keras_msrnn/presets/builtin/ms-predrnn-mnist/model.weights.h5" in names
    assert "keras_msrnn/recipes.py" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not any(name.startswith(("tests/", "zoo/")) for name in names)

    # A fresh environment with only the wheel of keras-msrnn; its dependencies come from this
    # one's site-packages (a path entry, so this checkout's editable install is not seen).
    fresh = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", str(fresh)], cwd=tmp_path)
    site = run(
        [
            str(fresh / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        cwd=tmp_path,
    ).strip()
    with open(os.path.join(site, "dependencies.pth"), "w") as file:
        file.write(sysconfig.get_paths()["purelib"] + "\n")
    run(
        [
            str(fresh / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": ""}
    located = run(
        [str(fresh / "bin" / "python"), "-c", "import keras_msrnn; print(keras_msrnn.__file__)"],
        cwd=tmp_path,
        env=env,
    )
    assert located.startswith(str(fresh)), located
    cli = str(fresh / "bin" / "keras-msrnn")

    listing = run([cli, "list"], cwd=tmp_path, env=env)
    assert "ms-predrnn-mnist" in listing and "bundled" in listing and "recipe only" in listing
    out = run(
        [cli, "predict", "ms-predrnn-mnist", SAMPLE, "--output", "forecast"], cwd=tmp_path, env=env
    )
    assert "forecast of 10 frames" in out and (tmp_path / "forecast" / "forecast.gif").exists()

    run(
        [cli, "recipe", "ms-predrnn-mnist", "--variant", "cpu", "--output", "recipe.json"],
        cwd=tmp_path,
        env=env,
    )
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    recipe["training"].update(steps=2, steps_per_epoch=2, batch_size=2)
    recipe["dataset"]["config"].update(frame_size=32)
    recipe["evaluation"] = {"num_sequences": 2, "batch_size": 2}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    out = run(
        [
            cli,
            "train",
            "recipe.json",
            "--data-dir",
            str(shared_data / "mnist"),
            "--verbose",
            "0",
            "--preset-out",
            "mine",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert "preset written to mine" in out
    assert json.loads((tmp_path / "runs" / "ms-predrnn-mnist" / "training_state.json").read_text())[
        "finished"
    ]
