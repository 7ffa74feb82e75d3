"""Training recipes: what to train, on which data, for how long.

A recipe is a JSON file or dict with four sections: `model` (the `MSStack`
arguments), `dataset` (a `keras_msrnn.datasets` class and its arguments),
`training` (batch size, steps, steps per epoch, learning rate, seed) and
`evaluation` (test sequences).
"""

from __future__ import annotations

import json
import os

import keras

from keras_msrnn.datasets import get_dataset
from keras_msrnn.models import MSStack
from keras_msrnn.recipes import get_recipe, parse_name
from keras_msrnn.validation import positive_int

RECIPE_SECTIONS = ("model", "dataset", "training")
REQUIRED_TRAINING_KEYS = ("batch_size", "steps", "steps_per_epoch")


def load_recipe(path_or_dict: str | os.PathLike | dict, variant: str | None = None) -> dict:
    """A recipe dict, with its sections checked.

    Args:
        path_or_dict: a zoo name (`keras_msrnn.recipes.preset_names()`), the
            path of a JSON recipe, or a recipe dict.
        variant: for a zoo name, `"protocol"` (default) or `"cpu"`.
    """
    if variant is not None and not (isinstance(path_or_dict, str) and parse_name(path_or_dict)):
        raise ValueError(f"A recipe variant goes with a zoo name, not with {path_or_dict!r}.")
    if isinstance(path_or_dict, dict):
        recipe = dict(path_or_dict)
    elif parse_name(str(path_or_dict)) and not os.path.exists(path_or_dict):
        recipe = get_recipe(path_or_dict, variant or "protocol")
    else:
        try:
            with open(path_or_dict) as file:
                recipe = json.load(file)
        except FileNotFoundError:
            raise ValueError(
                f"Recipe {path_or_dict} does not exist (neither a file nor a zoo name like "
                "ms-predrnn-mnist)."
            ) from None
        except json.JSONDecodeError as error:
            raise ValueError(f"Recipe {path_or_dict} is not valid JSON: {error}") from None
        if not isinstance(recipe, dict):
            raise ValueError(f"Recipe {path_or_dict} must hold a JSON object.")
    name = recipe.get("name", path_or_dict if isinstance(path_or_dict, str) else "recipe")
    missing = [section for section in RECIPE_SECTIONS if section not in recipe]
    if missing:
        raise ValueError(f"Recipe {name!r} lacks section(s) {missing}.")
    training = recipe["training"]
    missing = [key for key in REQUIRED_TRAINING_KEYS if key not in training]
    if missing:
        raise ValueError(f"Recipe {name!r}: its training section lacks {missing}.")
    for key in REQUIRED_TRAINING_KEYS:
        value = training[key]
        try:
            positive_int(f"training.{key}", value)
        except ValueError as error:
            raise ValueError(f"Recipe {name!r}: {error}") from None
    if training["steps"] % training["steps_per_epoch"]:
        raise ValueError(
            f"Recipe {name!r}: training.steps ({training['steps']}) must be a multiple of "
            f"training.steps_per_epoch ({training['steps_per_epoch']})."
        )
    return recipe


def build_model(recipe):
    return MSStack(**recipe["model"])


def make_dataset(recipe, split, data_dir=None, **overrides):
    """The recipe's data set for `split`, with its lengths taken from the model."""
    spec = recipe["dataset"]
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(
            f"Recipe {recipe.get('name')!r}: dataset must be {{'name': ..., 'config': {{...}}}}."
        )
    config = dict(spec.get("config", {}))
    if data_dir is not None:
        config["data_dir"] = data_dir
    config.setdefault("input_length", recipe["model"].get("input_length", 10))
    config.setdefault("output_length", recipe["model"].get("output_length", 10))
    config.update(overrides)
    return get_dataset(spec["name"], split, **config)


def make_optimizer(training):
    """Adam with the recipe's learning rate, cosine-decayed when it names a final one."""
    steps = training["steps"]
    learning_rate = training.get("learning_rate", 3e-4)
    final = training.get("final_learning_rate", learning_rate)
    if final != learning_rate:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=steps, alpha=final / learning_rate
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)
