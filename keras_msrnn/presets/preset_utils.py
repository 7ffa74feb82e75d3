"""Presets: save, load, upload and list pretrained models.

A preset is a flat folder, the same on disk and on the Hugging Face Hub:

- `config.json`: the serialized model (`keras.saving.serialize_keras_object`
  with its build config, without its compile config);
- `metadata.json`: format version, library and Keras versions, parameter
  count, input shape, and what the author adds (recipe, data set, metrics,
  training budget);
- `model.weights.h5`: the weights;
- `README.md`: the model card.

Loading never runs code from a preset: every object in `config.json` must be
a registered `keras_msrnn` class or a Keras built-in, and Keras' safe mode
stays on.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import tempfile
import warnings

import keras

from keras_msrnn.presets import model_card, registry
from keras_msrnn.version import __version__

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
README_FILE = "README.md"
REQUIRED_FILES = (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE)
HF_SCHEME = "hf://"
LIBRARY_NAME = "keras-msrnn"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")


class PresetError(ValueError):
    """A preset that cannot be found, read or loaded; the message names it."""


# === Resolution ===


def parse_hf_handle(handle):
    """`hf://org/name[@revision]` -> `(repo_id, revision or None)`."""
    if not handle.startswith(HF_SCHEME):
        raise PresetError(f"{handle!r} is not a Hugging Face handle (hf://org/name[@revision]).")
    repo_id, _, revision = handle[len(HF_SCHEME) :].partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise PresetError(
            f"Invalid Hugging Face handle {handle!r}: expected hf://org/name[@revision] "
            "with letters, digits, '-', '_' and '.' only."
        )
    if revision and (not _REVISION.match(revision) or ".." in revision):
        raise PresetError(f"Invalid revision {revision!r} in handle {handle!r}.")
    return repo_id, revision or None


def resolve_preset(preset, revision=None, cache_dir=None):
    """The local folder holding `preset`, downloading it if needed.

    Returns `(folder, downloaded)`; `downloaded` marks a Hub cache snapshot.

    Accepts a zoo name (see `list_presets()`: its bundled copy, else its
    repository copy in a checkout, else its pinned Hub revision),
    `hf://org/name[@revision]`, or a local folder. Zoo names win over local
    folders of the same name.
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise PresetError(f"A preset must be a string or path. Received: {preset!r}")
    preset = os.fspath(preset)
    if registry.is_registered(preset):
        preset = _registered_location(preset, revision)
        if not preset.startswith(HF_SCHEME):
            return preset, False
        revision = None  # pinned in the handle
    if preset.startswith(HF_SCHEME):
        return _download(preset, revision, cache_dir), True
    if "://" in preset:
        raise PresetError(f"Unsupported preset scheme in {preset!r}; use hf://org/name[@revision].")
    if os.path.isdir(preset):
        return preset, False
    raise PresetError(
        f"Unknown preset {preset!r}: not a zoo name (keras-msrnn list shows them), "
        "not an hf://org/name[@revision] handle, and no such folder."
    )


def _registered_location(name, revision):
    """A zoo name's local folder or pinned Hub handle."""
    canonical = registry.canonical_name(name)
    where, location = registry.locate(canonical)
    if revision is not None:
        if where != "hub":
            raise PresetError(
                f"Preset {name!r} is not published to the Hub, so it has no revision {revision!r}."
            )
        return location.partition("@")[0] + "@" + revision
    if where is None:
        how = "import" if canonical in registry.OPENSTL_IMPORTS else "train"
        raise PresetError(
            f"Preset {name!r} has no weights yet ({registry.status(canonical)['status']}); "
            f"{how} it with: {registry.obtain_command(canonical)}"
        )
    return location


def _download(handle, revision, cache_dir):
    """Downloads one commit of a preset repository; returns its snapshot folder."""
    import huggingface_hub  # called through the module so tests can point it elsewhere
    import huggingface_hub.constants
    import huggingface_hub.errors

    repo_id, handle_revision = parse_hf_handle(handle)
    if revision and handle_revision and revision != handle_revision:
        raise PresetError(
            f"{handle!r} pins revision {handle_revision!r}, but revision={revision!r} was passed."
        )
    revision = revision or handle_revision
    try:
        # One call resolves the revision to one commit and fetches its files.
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=[*REQUIRED_FILES, README_FILE],
            library_name=LIBRARY_NAME,
            library_version=__version__,
        )
    except huggingface_hub.errors.RepositoryNotFoundError:
        raise PresetError(
            f"Preset {handle!r}: the repository {repo_id!r} does not exist (or is private)."
        ) from None
    except huggingface_hub.errors.RevisionNotFoundError:
        raise PresetError(f"Preset {handle!r}: revision {revision!r} does not exist.") from None
    except huggingface_hub.errors.LocalEntryNotFoundError:
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            raise PresetError(
                f"Preset {handle!r} is not in the local cache (HF_HUB_OFFLINE is set)."
            ) from None
        raise PresetError(f"Preset {handle!r} could not be downloaded and is not cached.") from None
    except Exception as error:  # the HTTP stack's transport errors share no base class
        raise PresetError(
            f"Preset {handle!r}: downloading failed ({type(error).__name__}: "
            f"{' '.join(str(error).split())})."
        ) from None
    missing = [name for name in REQUIRED_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        _evict_from_cache(folder, cache_dir)
        raise PresetError(f"Preset {handle!r}: {missing[0]} is missing.")
    return folder


def _evict_from_cache(folder, cache_dir):
    """Removes a downloaded snapshot that failed to load.

    Through the Hub client's own cache manager, which keeps every blob that
    another cached revision still uses.
    """
    import huggingface_hub

    commit = os.path.basename(os.path.normpath(folder))
    try:
        huggingface_hub.scan_cache_dir(cache_dir).delete_revisions(commit).execute()
    except Exception as error:  # a cache we cannot clean must not hide the load error
        warnings.warn(
            f"Could not remove the broken download {folder} from the cache ({error}).", stacklevel=3
        )


# === Loading ===


def _read_json(folder, filename, preset):
    path = os.path.join(folder, filename)
    if not os.path.isfile(path):
        raise PresetError(f"Preset {preset!r} has no {filename}.")
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PresetError(f"Preset {preset!r}: {filename} is not valid JSON ({error}).") from None
    if not isinstance(content, dict):
        raise PresetError(f"Preset {preset!r}: {filename} must hold a JSON object.")
    return content


def _check_safe_objects(node, preset):
    """Refuses any serialized object that is not keras_msrnn's or Keras' own."""
    if isinstance(node, dict):
        if "class_name" in node:
            _check_safe_object(node, preset)
        for value in node.values():
            _check_safe_objects(value, preset)
    elif isinstance(node, list):
        for value in node:
            _check_safe_objects(value, preset)


def _check_safe_object(node, preset):
    registered = node.get("registered_name") or ""
    module = node.get("module") or ""
    if node["class_name"] in ("__lambda__", "function"):
        raise PresetError(
            f"Preset {preset!r} holds a serialized {node['class_name']}; it will not be loaded."
        )
    if registered.startswith("keras_msrnn>"):
        registered_class = keras.saving.get_registered_object(registered)
        if registered_class is None:
            raise PresetError(
                f"Preset {preset!r}: class {registered!r} is not known to this keras-msrnn."
            )
        if module != registered_class.__module__:
            raise PresetError(
                f"Preset {preset!r}: the object registered as {registered!r} gives module "
                f"{module!r}, "
                f"not {registered_class.__module__!r}; it will not be loaded."
            )
        return
    if module == "keras" or module.startswith("keras."):
        return
    name = registered or f"{module}.{node['class_name']}"
    raise PresetError(
        f"Preset {preset!r} refers to {name!r}, which is neither a keras_msrnn class "
        "nor a Keras built-in; it will not be loaded."
    )


def load_preset_config(folder, preset):
    """The checked `(config, metadata)` of a preset folder."""
    metadata = _read_json(folder, METADATA_FILE, preset)
    version = metadata.get("format_version")
    if not isinstance(version, int):
        raise PresetError(f"Preset {preset!r}: metadata.json has no integer format_version.")
    if version > FORMAT_VERSION:
        raise PresetError(
            f"Preset {preset!r} has format_version {version}; this keras-msrnn ({__version__}) "
            "reads "
            f"up to {FORMAT_VERSION}. Upgrade keras-msrnn to load it."
        )
    config = _read_json(folder, CONFIG_FILE, preset)
    registered = config.get("registered_name")
    if not isinstance(registered, str) or not registered.startswith("keras_msrnn>"):
        raise PresetError(
            f"Preset {preset!r}: config.json describes {registered or config.get('class_name')!r}, "
            "not a keras_msrnn model."
        )
    if keras.saving.get_registered_object(registered) is None:
        raise PresetError(
            f"Preset {preset!r}: class {registered!r} is not known to this keras-msrnn."
        )
    _check_safe_objects(config, preset)
    saved_keras = metadata.get("keras_version", "")
    if saved_keras.split(".")[:2] != keras.version().split(".")[:2]:
        warnings.warn(
            f"Preset {preset!r} was saved with Keras {saved_keras}; this is Keras "
            f"{keras.version()}.",
            stacklevel=3,
        )
    return config, metadata


def from_preset(
    preset: str | os.PathLike,
    load_weights: bool = True,
    revision: str | None = None,
    cache_dir: str | None = None,
    expected_class: type | None = None,
    **overrides,
) -> keras.Model:
    """Instantiates a model from a preset.

    Args:
        preset: a zoo name (`keras_msrnn.list_presets()`),
            `"hf://org/name[@revision]"`, or a local preset folder.
        load_weights: bool. Load the pretrained weights (else a fresh
            initialisation of the same architecture).
        revision: str. Hub branch, tag or commit (also `@revision` in the
            handle).
        cache_dir: str. Hugging Face cache folder (defaults to its
            `HF_HUB_CACHE` / `HF_HOME`).
        **overrides: model arguments that replace the saved ones (for
            example `output_length=20` or a different `sampling`).

    Returns:
        The model, built, with the preset's metadata in `model.preset_metadata`.

    Example:

    ```python
    model = keras_msrnn.from_preset("ms-predrnn-mnist")
    forecast = model.predict(context)           # (batch, 10, 64, 64, 1)
    model.compile()
    model.fit(my_frames, epochs=2)              # fine-tune
    ```
    """
    folder, downloaded = resolve_preset(preset, revision, cache_dir)
    try:
        return _instantiate(folder, preset, load_weights, expected_class, overrides)
    except PresetError:
        if downloaded:
            _evict_from_cache(folder, cache_dir)
        raise


def _instantiate(folder, preset, load_weights, expected_class, overrides):
    config, metadata = load_preset_config(folder, preset)
    model_class = keras.saving.get_registered_object(config["registered_name"])
    if expected_class is not None and not issubclass(model_class, expected_class):
        raise PresetError(
            f"Preset {preset!r} holds a {model_class.__name__}, not a {expected_class.__name__}."
        )
    if overrides:
        config = dict(config, config={**config["config"], **overrides})
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except (TypeError, ValueError) as error:
        raise PresetError(
            f"Preset {preset!r} could not be built{_with(overrides)}: {error}"
        ) from None
    if not model.built:
        raise PresetError(
            f"Preset {preset!r}: config.json has no build_config, so weights cannot load."
        )
    if load_weights:
        weights = os.path.join(folder, WEIGHTS_FILE)
        if not os.path.isfile(weights):
            raise PresetError(f"Preset {preset!r} has no {WEIGHTS_FILE}.")
        try:
            model.load_weights(weights)
        except Exception as error:  # h5py and Keras raise many types here
            raise PresetError(
                f"Preset {preset!r}: {WEIGHTS_FILE} does not match the model{_with(overrides)} "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})."
            ) from None
    model.preset_metadata = metadata
    return model


def _with(overrides):
    return f" with overrides {overrides}" if overrides else ""


# === Saving and uploading ===


def save_to_preset(
    model: keras.Model,
    preset_dir: str,
    metadata: dict | None = None,
    weights_dtype: str | None = None,
) -> str:
    """Writes `model` as a preset folder (config, metadata, weights, card).

    Args:
        model: a built keras_msrnn model.
        preset_dir: folder to write (created if needed; files are replaced).
        metadata: dict of extra metadata: `description`, `recipe`,
            `dataset`, `metrics`, `training` (budget), `license`, ... They
            also fill the model card.
        weights_dtype: `None` stores the weights as they are; `"float16"`
            stores floating-point weights at half precision, half the size.
            They load into the model's own dtype; call
            `round_weights(model, "float16")` first to evaluate exactly
            what is stored.
    """
    if weights_dtype not in (None, "float16"):
        raise ValueError(
            f"`weights_dtype` must be None or 'float16'. Received: weights_dtype={weights_dtype!r}"
        )
    if not getattr(model, "built", False):
        raise ValueError("Build the model (call it or fit it once) before saving a preset.")
    registered = keras.saving.get_registered_name(type(model))
    if not registered.startswith("keras_msrnn>"):
        raise ValueError(f"{type(model).__name__} is not a registered keras_msrnn model.")
    os.makedirs(preset_dir, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    frame_shape = getattr(model, "frame_shape", None)
    full_metadata = {
        "format_version": FORMAT_VERSION,
        "keras_version": keras.version(),
        "keras_msrnn_version": __version__,
        "backend_saved": keras.config.backend(),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d@%H:%M:%S"),
        "class_name": registered,
        "parameter_count": int(model.count_params()),
        "input_shape": [getattr(model, "input_length", None), *(frame_shape or ())],
        "output_length": getattr(model, "output_length", None),
        "weights_dtype": weights_dtype or "as trained",
    }
    full_metadata.update(metadata or {})
    _write_json(os.path.join(preset_dir, CONFIG_FILE), config)
    _write_json(os.path.join(preset_dir, METADATA_FILE), full_metadata)
    _save_model_weights(model, os.path.join(preset_dir, WEIGHTS_FILE), weights_dtype)
    _write_card(preset_dir, config, full_metadata)
    return preset_dir


def _preset_name(preset_dir, metadata):
    return metadata.get("name") or os.path.basename(os.path.normpath(preset_dir))


def _write_card(folder, config, metadata, load_identifier=None):
    """Writes the model card; it loads by zoo name, by `load_identifier` or by folder."""
    name = _preset_name(folder, metadata)
    if load_identifier is None:
        load_identifier = name if registry.is_registered(name) else os.path.normpath(folder)
    with open(os.path.join(folder, README_FILE), "w", encoding="utf-8") as file:
        file.write(model_card.render(config, metadata, name, load_identifier))


def _save_model_weights(model, path, dtype=None):
    """The model's weights without its optimizer state (twice the size, useless to a preset)."""
    optimizer = getattr(model, "optimizer", None)
    model.optimizer = None
    try:
        model.save_weights(path)
    finally:
        model.optimizer = optimizer
    if dtype is not None:
        _cast_float_weights(path, dtype)


def _cast_float_weights(path, dtype):
    """Rewrites a Keras `.weights.h5` file with its float32 arrays stored as `dtype`."""
    import h5py
    import numpy as np

    temporary = path + ".partial"
    with h5py.File(path, "r") as source, h5py.File(temporary, "w") as target:
        target.attrs.update(source.attrs)

        def copy(name, node):
            if isinstance(node, h5py.Group):
                target.require_group(name).attrs.update(node.attrs)
                return
            data = node[()]
            if node.dtype == np.float32:
                data = data.astype(dtype)
            target.create_dataset(name, data=data).attrs.update(node.attrs)

        source.visititems(copy)
    os.replace(temporary, path)


def round_weights(model, dtype):
    """Rounds the model's floating-point weights to `dtype` precision, in place."""
    for variable in model.weights:
        if keras.backend.is_float_dtype(variable.dtype):
            variable.assign(keras.ops.cast(keras.ops.cast(variable, dtype), variable.dtype))


def _write_json(path, content):
    with open(path, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2, sort_keys=False)
        file.write("\n")


def validate_preset_dir(preset_dir):
    """Checks a folder before upload; returns its metadata."""
    if not os.path.isdir(preset_dir):
        raise FileNotFoundError(f"Preset folder {preset_dir!r} does not exist.")
    _, metadata = load_preset_config(preset_dir, preset_dir)
    if not os.path.isfile(os.path.join(preset_dir, WEIGHTS_FILE)):
        raise FileNotFoundError(f"Preset folder {preset_dir!r} has no {WEIGHTS_FILE}.")
    return metadata


def upload_preset(
    handle: str,
    preset_dir: str,
    commit_message: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
):
    """Uploads a preset folder to the Hugging Face Hub.

    Creates the repository if needed and writes the model card
    (`README.md` with YAML front matter) that loads it from `handle`. Authentication comes
    from `HF_TOKEN` or `hf auth login`.

    Args:
        handle: `"hf://org/name"`.
        preset_dir: folder written by `save_to_preset`.
        commit_message: str. Defaults to "Upload keras-msrnn preset".
        private: bool. Visibility of a newly created repository.
        revision: str. Branch to commit to.

    Returns:
        The commit: its URL as a string, with its sha in `.oid`.
    """
    import huggingface_hub

    repo_id, handle_revision = parse_hf_handle(handle)
    if handle_revision:
        raise PresetError(f"Upload to a branch with revision=..., not {handle!r}.")
    metadata = validate_preset_dir(preset_dir)
    with tempfile.TemporaryDirectory() as staging:
        # The uploaded card says how to load the preset from where it lands.
        folder = os.path.join(staging, "preset")
        os.makedirs(folder)
        for name in REQUIRED_FILES:
            shutil.copy2(os.path.join(preset_dir, name), folder)
        metadata = dict(metadata, name=_preset_name(preset_dir, metadata))
        _write_card(
            folder, _read_json(folder, CONFIG_FILE, preset_dir), metadata, f"{HF_SCHEME}{repo_id}"
        )
        repo = huggingface_hub.create_repo(repo_id, exist_ok=True, private=private)
        commit = huggingface_hub.upload_folder(
            repo_id=repo.repo_id,
            folder_path=folder,
            commit_message=commit_message or "Upload keras-msrnn preset",
            revision=revision,
            allow_patterns=[*REQUIRED_FILES, README_FILE],
        )
    return commit


def publish_zoo(
    organization: str,
    commit_message: str | None = None,
    private: bool | None = None,
    published_file: str | None = None,
) -> dict[str, str]:
    """Uploads every trained zoo preset to `hf://<organization>/<name>`.

    Each upload's commit is recorded in `published_file` (by default the
    package's `published.json`), which pins the name to that revision:
    `from_preset(name)` downloads it from there when no local copy exists.

    Returns:
        `{name: "hf://<organization>/<name>@<commit>"}` of what was uploaded.
    """
    if not registry.ORGANIZATION.match(organization):
        raise PresetError(f"Invalid Hub organization {organization!r}.")
    published_file = published_file or registry.PUBLISHED_FILE
    handles = registry.published_handles(published_file)
    uploaded = {}
    for name in registry.names():
        where, folder = registry.locate(name, published_file)
        if where not in ("bundled", "repository"):
            continue
        handle = f"{HF_SCHEME}{organization}/{name}"
        commit = upload_preset(handle, folder, commit_message=commit_message, private=private)
        uploaded[name] = f"{handle}@{commit.oid}"
    handles.update(uploaded)
    _write_json(published_file, dict(sorted(handles.items())))
    return uploaded


def list_presets() -> dict[str, dict]:
    """Every zoo name with its status: `{name: {...}}`.

    Each entry has `cell`, `dataset`, `multi_scale`, `status` (`"trained"`,
    `"published"`, `"recipe only"`, and for OpenSTL's checkpoints
    (`<cell>-<dataset>-openstl`) `"imported"` or `"import recipe"`), `where`
    (`"bundled"`, `"repository"`, `"hub"` or None), `location`,
    `train_command` (or `import_command`), and for local presets the
    `training` budget, test `metrics` and `parameter_count` of their
    metadata. Aliases appear with `alias_of`.
    """
    names = registry.names() + sorted(registry.ALIASES)
    return {name: registry.status(name) for name in names}
