"""The zoo's registry: every preset name, where its weights are, its status.

The names are those of `keras_msrnn.recipes.preset_names()`. A name's weights
are looked for, in order:

1. bundled inside the package (`keras_msrnn/presets/builtin/<name>/`);
2. in the repository (`zoo/presets/<name>/`), when keras-msrnn runs from a
   checkout;
3. on the Hugging Face Hub, at the handle and revision recorded in
   `published.json` by `keras-msrnn push --all hf://<org>` (for example
   `hf://keras-msrnn/<name>@<commit>`).

A name with none of these has a recipe but no weights yet.

Names ending in `-openstl` (`<cell>-<dataset>-openstl`) stand for OpenSTL's
published checkpoints of five of the cells; they get weights through
`keras-msrnn import-openstl`, not training.
"""

import json
import os
import re

from keras_msrnn import recipes

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILTIN_DIR = os.path.join(PACKAGE_DIR, "presets", "builtin")
REPOSITORY_DIR = os.path.join(os.path.dirname(PACKAGE_DIR), "zoo", "presets")
PUBLISHED_FILE = os.path.join(PACKAGE_DIR, "presets", "published.json")
ORGANIZATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ALIASES = {"ms-predrnn-mnist-cpu": "ms-predrnn-mnist"}

TRAINED = "trained"
PUBLISHED = "published"
RECIPE_ONLY = "recipe only"
IMPORTED = "imported"
IMPORT_RECIPE = "import recipe"

# OpenSTL's checkpoints of this library's cells: zoo cell -> OpenSTL method,
# zoo data set -> OpenSTL dataname (its configs live in configs/<dataname>/).
OPENSTL_METHODS = {
    "convlstm": "ConvLSTM",
    "predrnn": "PredRNN",
    "predrnn-pp": "PredRNNpp",
    "mim": "MIM",
    "predrnn-v2": "PredRNNv2",
}
OPENSTL_DATANAMES = {"mnist": "mmnist", "taxibj": "taxibj"}
OPENSTL_IMPORTS = {
    f"{cell}-{dataset}-openstl": (cell, dataset)
    for cell in OPENSTL_METHODS
    for dataset in OPENSTL_DATANAMES
}


def canonical_name(name):
    """The registry name behind `name` (itself or the target of an alias)."""
    return ALIASES.get(name, name)


def is_registered(name):
    name = canonical_name(name)
    return name in OPENSTL_IMPORTS or recipes.parse_name(name) is not None


def names():
    """Every registry name: the 64 recipes, then the OpenSTL imports."""
    return recipes.preset_names() + sorted(OPENSTL_IMPORTS)


def _preset_folder(root, name):
    path = os.path.join(root, name)
    return path if os.path.isfile(os.path.join(path, "config.json")) else None


def published_handles(published_file=None):
    """`{name: "hf://org/name@revision"}` of the presets published to the Hub."""
    published_file = published_file or PUBLISHED_FILE
    if not os.path.isfile(published_file):
        return {}
    with open(published_file, encoding="utf-8") as file:
        return json.load(file)


def locate(name, published_file=None):
    """`(where, path_or_handle)` of a registered name's weights, or `(None, None)`.

    `where` is `"bundled"`, `"repository"` or `"hub"`.
    """
    name = canonical_name(name)
    for where, root in (("bundled", BUILTIN_DIR), ("repository", REPOSITORY_DIR)):
        folder = _preset_folder(root, name)
        if folder:
            return where, folder
    handle = published_handles(published_file).get(name)
    if handle:
        return "hub", handle
    return None, None


def import_command(name):
    """The command that turns OpenSTL's checkpoint of an `-openstl` name into its preset."""
    cell, dataset = OPENSTL_IMPORTS[name]
    method, dataname = OPENSTL_METHODS[cell], OPENSTL_DATANAMES[dataset]
    return (
        f"keras-msrnn import-openstl <OpenSTL {dataname} {method} checkpoint .pth> "
        f"--config configs/{dataname}/{method}.py --dataname {dataname} "
        f"--output zoo/presets/{name}"
    )


def obtain_command(name):
    """The command that gives a registered name its weights: training or import."""
    name = canonical_name(name)
    return import_command(name) if name in OPENSTL_IMPORTS else train_command(name)


def train_command(name):
    """The command that trains a registered name into a preset folder."""
    name = canonical_name(name)
    cell, dataset, _ = recipes.parse_name(name)
    variant = " --variant cpu" if dataset == "mnist" else ""
    return (
        f"keras-msrnn train {name}{variant} --data-dir <{dataset} data> "
        f"--preset-out zoo/presets/{name}"
    )


def status(name):
    """What the registry knows of one name (see `keras_msrnn.list_presets`)."""
    canonical = canonical_name(name)
    where, location = locate(canonical)
    if canonical in OPENSTL_IMPORTS:
        (cell, dataset), multi_scale = OPENSTL_IMPORTS[canonical], False
        missing, local = IMPORT_RECIPE, IMPORTED
        command = {"import_command": import_command(canonical)}
    else:
        cell, dataset, multi_scale = recipes.parse_name(canonical)
        missing, local = RECIPE_ONLY, TRAINED
        command = {"train_command": train_command(canonical)}
    entry = {
        "name": canonical,
        "cell": cell,
        "dataset": dataset,
        "multi_scale": multi_scale,
        "status": {None: missing, "hub": PUBLISHED}.get(where, local),
        "where": where,
        "location": location,
        **command,
    }
    if name != canonical:
        entry["alias_of"] = canonical
    if where in ("bundled", "repository"):
        with open(os.path.join(location, "metadata.json"), encoding="utf-8") as file:
            metadata = json.load(file)
        entry["training"] = metadata.get("training", {})
        entry["metrics"] = metadata.get("metrics", {})
        entry["parameter_count"] = metadata.get("parameter_count")
    return entry
