"""Turning a finished training run into a preset."""

import os
import platform

import keras

from keras_msrnn.training.recipes import load_recipe, make_dataset
from keras_msrnn.training.run import read_training_state


def export_preset(model, recipe, workdir, preset_dir, data_dir=None, verbose=True):
    """Evaluates a trained model on the recipe's test split and saves a preset.

    The preset's metadata records the recipe, the training budget (steps,
    batch, hardware, backend, wall time from `workdir`) and the test metrics
    for the future frames and for all `S - 1` frames.
    """
    from keras_msrnn.evaluation import evaluate

    recipe = load_recipe(recipe)
    evaluation = recipe.get("evaluation", {})
    test_data = make_dataset(
        recipe,
        "test",
        data_dir,
        batch_size=evaluation.get("batch_size", 16),
        num_sequences=evaluation.get("num_sequences", 1000),
    )
    results = evaluate(model, test_data, verbose=verbose)
    state = read_training_state(workdir)
    training = recipe["training"]
    metadata = {
        "name": recipe.get("name"),
        "description": recipe.get("description", ""),
        "cell": recipe["model"].get("cell"),
        "dataset": recipe["dataset"]["class_name"],
        "recipe": recipe,
        "training": {
            "steps": state.get("steps_done"),
            "batch_size": training["batch_size"],
            "wall_time_s": state.get("seconds_total"),
            "backend": state.get("backend", keras.config.backend()),
            "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
        },
        "metrics": {
            "test_sequences": results["sequences"],
            "future_frames": _headline(results["future_frames"]),
            "all_frames": _headline(results["all_frames"]),
        },
    }
    model.save_to_preset(preset_dir, metadata)
    return metadata


def _headline(results, names=("mse", "mae", "ssim", "psnr")):
    return {name: round(results["headline"][name], 4) for name in names}
