"""Turning a finished training run into a preset."""

from __future__ import annotations

import os
import platform

import keras

from keras_msrnn.presets.preset_utils import round_weights
from keras_msrnn.training.recipes import load_recipe, make_dataset
from keras_msrnn.training.run import read_training_state

PRESET_WEIGHTS_DTYPE = "float16"


def export_preset(
    model: keras.Model,
    recipe: str | dict,
    workdir: str,
    preset_dir: str,
    data_dir: str | None = None,
    verbose: bool = True,
) -> dict:
    """Evaluates a trained model on the recipe's test split and saves a preset.

    The weights are stored at half precision (`PRESET_WEIGHTS_DTYPE`, half
    the size) and rounded to it before the evaluation, so the metrics are
    those of the weights a user loads. The preset's metadata records the
    recipe, the training budget (steps, batch, hardware, backend, wall time
    from `workdir`) and the test metrics for the future frames and for all
    `S - 1` frames.

    Returns:
        The preset's metadata.
    """
    from keras_msrnn.evaluation import evaluate

    recipe = load_recipe(recipe)
    evaluation = recipe.get("evaluation", {})
    test_data = make_dataset(
        recipe,
        "test",
        data_dir,
        batch_size=evaluation.get("batch_size", 16),
        max_sequences=evaluation.get("num_sequences", 1000),
    )
    round_weights(model, PRESET_WEIGHTS_DTYPE)
    results = evaluate(model, test_data, verbose=verbose)
    state = read_training_state(workdir)
    training = recipe["training"]
    metadata = {
        "name": recipe.get("name"),
        "description": recipe.get("description", ""),
        "cell": recipe["model"].get("cell"),
        "dataset": recipe["dataset"]["name"],
        "recipe": recipe,
        "training": {
            "steps": state.get("steps_done"),
            "batch_size": training["batch_size"],
            "wall_time_s": state.get("seconds_total"),
            "backend": state.get("backend", keras.config.backend()),
            "hardware": hardware_description(),
        },
        "metrics": {
            "test_sequences": results["sequences"],
            "future_frames": _headline(results["future_frames"]),
            "all_frames": _headline(results["all_frames"]),
        },
    }
    if getattr(test_data, "pixel_units", None):  # radar: how pixels turn back into mm/h
        metadata["pixel_units"] = test_data.pixel_units
    model.save_to_preset(preset_dir, metadata, weights_dtype=PRESET_WEIGHTS_DTYPE)
    return metadata


def hardware_description():
    """`"<CPU model>, N CPU cores"`, as precise as this machine tells."""
    model_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model_name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model_name}, {os.cpu_count()} CPU cores"


def _headline(results, names=("mse", "mae", "ssim", "psnr")):
    return {name: round(results["headline"][name], 4) for name in names}
