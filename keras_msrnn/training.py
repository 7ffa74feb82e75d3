"""Training from a recipe: resumable, time-boxed `fit` runs.

A recipe is a JSON file (see `zoo/`) with four sections: `model` (the
`MSStack` arguments), `dataset` (a `keras_msrnn.datasets` class and its
arguments), `training` (batch size, steps, learning rate, seed) and
`evaluation` (test sequences). `train` resumes from the work directory
after an interruption or a `max_minutes` stop, so long runs can be done in
chunks (for example 10-minute jobs on a rented GPU).
"""

import json
import os
import time

import keras

from keras_msrnn import datasets
from keras_msrnn.models import MSStack

RECIPE_SECTIONS = ("model", "dataset", "training")
STATE_FILE = "training_state.json"


def load_recipe(path_or_dict):
    """A recipe dict from a JSON path (or a dict), with its sections checked."""
    if isinstance(path_or_dict, dict):
        recipe = dict(path_or_dict)
    else:
        try:
            with open(path_or_dict) as file:
                recipe = json.load(file)
        except FileNotFoundError:
            raise ValueError(f"Recipe {path_or_dict} does not exist.") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"Recipe {path_or_dict} is not valid JSON: {error}") from None
    missing = [section for section in RECIPE_SECTIONS if section not in recipe]
    if missing:
        raise ValueError(f"Recipe {recipe.get('name', path_or_dict)!r} lacks section(s) {missing}.")
    return recipe


def build_model(recipe):
    return MSStack(**recipe["model"])


def make_dataset(recipe, split, data_dir=None, **overrides):
    """The recipe's data set for `split`, with its lengths taken from the model."""
    spec = recipe["dataset"]
    dataset_class = getattr(datasets, spec["class_name"], None)
    if dataset_class is None or not isinstance(dataset_class, type):
        raise ValueError(f"Unknown dataset {spec['class_name']!r} in recipe {recipe.get('name')!r}.")
    config = dict(spec.get("config", {}))
    if data_dir is not None:
        config["data_dir"] = data_dir
    config.setdefault("input_length", recipe["model"].get("input_length", 10))
    config.setdefault("output_length", recipe["model"].get("output_length", 10))
    config.update(overrides)
    return dataset_class(split=split, **config)


def make_optimizer(training):
    steps = training["steps"]
    learning_rate = training.get("learning_rate", 3e-4)
    final = training.get("final_learning_rate", learning_rate)
    if final != learning_rate:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps, alpha=final / learning_rate
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the end of the first epoch past the deadline."""

    def __init__(self, max_minutes):
        super().__init__()
        self.deadline = time.monotonic() + 60 * max_minutes

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() > self.deadline:
            self.model.stop_training = True


def train(recipe, workdir, data_dir=None, max_minutes=None, verbose=1):
    """Trains (or resumes training of) the recipe's model in `workdir`.

    Returns `(model, finished)`: `finished` is False when `max_minutes`
    stopped the run early; calling `train` again resumes where it stopped,
    with the optimizer state, the scheduled-sampling counter and the data
    order of an uninterrupted run.
    """
    recipe = load_recipe(recipe)
    training = recipe["training"]
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(training.get("seed", 0))
    train_data = make_dataset(
        recipe,
        "train",
        data_dir,
        batch_size=training["batch_size"],
        num_sequences=training["steps_per_epoch"] * training["batch_size"],
        shuffle=False,
        seed=training.get("seed", 0),
    )
    epochs = -(-training["steps"] // training["steps_per_epoch"])
    model = build_model(recipe)
    (context, _), _ = train_data[0]
    model.build((None,) + context.shape[1:])  # BackupAndRestore needs built variables
    model.compile(optimizer=make_optimizer(training))
    started = time.monotonic()
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup")),
        keras.callbacks.CSVLogger(os.path.join(workdir, "log.csv"), append=True),
        _EpochTracker(train_data),
    ]
    if max_minutes is not None:
        callbacks.append(TimeLimit(max_minutes))
    history = model.fit(train_data, epochs=epochs, callbacks=callbacks, verbose=verbose)
    epochs_done = history.epoch[-1] + 1 if history.epoch else epochs
    finished = epochs_done >= epochs
    state = {
        "recipe": recipe.get("name"),
        "epochs_done": epochs_done,
        "steps_done": epochs_done * training["steps_per_epoch"],
        "epochs": epochs,
        "finished": finished,
        "seconds_this_run": round(time.monotonic() - started, 1),
    }
    _record_state(workdir, state)
    model.save(os.path.join(workdir, "model.keras"))
    return model, finished


class _EpochTracker(keras.callbacks.Callback):
    """Keeps the data set's epoch in step with `fit` after a resume."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = epoch


def _record_state(workdir, state):
    path = os.path.join(workdir, STATE_FILE)
    total = 0.0
    if os.path.exists(path):
        with open(path) as file:
            total = json.load(file).get("seconds_total", 0.0)
    state["seconds_total"] = round(total + state["seconds_this_run"], 1)
    with open(path, "w") as file:
        json.dump(state, file, indent=2)


def export_preset(model, recipe, workdir, preset_dir, data_dir=None, verbose=True):
    """Evaluates a trained model on the recipe's test split and saves a preset.

    The preset's metadata records the recipe, the training budget (steps,
    batch, hardware, backend, wall time from `workdir`) and the test metrics
    for the future frames and for all `S - 1` frames.
    """
    import platform

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
    state_path = os.path.join(workdir, STATE_FILE)
    state = {}
    if os.path.exists(state_path):
        with open(state_path) as file:
            state = json.load(file)
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
            "backend": keras.config.backend(),
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
