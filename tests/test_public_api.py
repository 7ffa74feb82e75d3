"""Every path the README and docstrings use is importable from `import keras_msrnn` alone."""

import subprocess
import sys

import pytest

import keras_msrnn

DOCUMENTED = [
    "MSStack",
    "from_preset",
    "list_presets",
    "save_to_preset",
    "upload_preset",
    "publish_zoo",
    "evaluate",
    "PresetError",
    "cells.ConvLSTMCell",
    "cells.CellOutput",
    "cells.available_cells",
    "convert.from_msrnn",
    "datasets.MovingMNIST",
    "datasets.FrameWindows",
    "datasets.get_dataset",
    "datasets.dataset_names",
    "frames.to_unit_frames",
    "losses.MSRNNLoss",
    "metrics.FrameMSE",
    "metrics.ssim",
    "metrics.ForecastEvaluation",
    "models.MSStack",
    "models.LinearSampling",
    "models.EpochReverseSampling",
    "ops.warp",
    "ops.local_attention",
    "presets.PresetError",
    "recipes.get_recipe",
    "recipes.preset_names",
    "training.train",
    "training.load_recipe",
    "training.export_preset",
]


@pytest.mark.parametrize("path", DOCUMENTED)
def test_documented_paths_resolve(path):
    value = keras_msrnn
    for part in path.split("."):
        value = getattr(value, part)
    assert value is not None


def test_every_public_name_is_in_all():
    public = {name for name in dir(keras_msrnn) if not name.startswith("_")} | {"__version__"}
    assert set(keras_msrnn.__all__) == public - {
        "api_export",
        "backend",
        "bench",
        "cli",
        "evaluation",
        "radar_units",
        "validation",
        "version",
        "visualize",
    }


def test_submodules_need_no_side_effect():
    """In a fresh process, `import keras_msrnn` alone gives `convert` and `models`."""
    code = "import keras_msrnn as k; k.convert.from_msrnn; k.models.MSStack; print('ok')"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
        == "ok"
    )
