"""The training checkpoint: every variable a resumed run needs, in one file.

A checkpoint holds the model's weights, its non-trainable state (the
scheduled-sampling counter and the random seed generators), the optimizer's
slots and iteration count, and the running loss of the epoch in progress,
plus a JSON record of the run (global step, recipe, logged epochs, wall
time). It is one `.npz` file written to a temporary name, flushed to disk and
renamed over the previous one, so a kill at any moment leaves either the old
or the new checkpoint, never a torn one.
"""

import contextlib
import json
import os
import zipfile

import keras
import numpy as np

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT_VERSION = 1
_STATE_KEY = "state"
# Order matters: it is the order of the arrays in the file.
VARIABLE_GROUPS = ("trainable", "non_trainable", "optimizer", "metrics")
_TEMPORARY = ".partial"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def checkpoint_variables(model):
    """`{group: [variables]}` of everything that makes a run resumable."""
    return {
        "trainable": list(model.trainable_variables),
        "non_trainable": list(model.non_trainable_variables),
        "optimizer": list(model.optimizer.variables),
        "metrics": list(model.metrics_variables),
    }


def _flatten(groups):
    return [(group, variable) for group in VARIABLE_GROUPS for variable in groups[group]]


def temporary_path(path):
    """Where `path` is written before it is renamed into place."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}{_TEMPORARY}{extension}")


def remove_stale_temporaries(folder):
    """Deletes what a process killed during a write left behind."""
    for name in os.listdir(folder):
        if name.startswith(".") and _TEMPORARY in name:
            os.remove(os.path.join(folder, name))


def write_atomically(path, write):
    """Calls `write(file)` on a temporary file, then renames it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_text_atomically(path, text):
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def save_checkpoint(path, model, state):
    """Writes the model's resumable variables and the JSON `state` to `path`."""
    variables = _flatten(checkpoint_variables(model))
    state = dict(
        state,
        format_version=FORMAT_VERSION,
        variables=[[group, variable.path, list(variable.shape)] for group, variable in variables],
    )
    arrays = {
        f"v{index}": keras.ops.convert_to_numpy(variable)
        for index, (_, variable) in enumerate(variables)
    }
    arrays[_STATE_KEY] = np.array(json.dumps(state))
    write_atomically(path, lambda file: np.savez(file, **arrays))


def read_checkpoint_state(path):
    """The JSON state of a checkpoint, without touching any model."""
    with _open(path) as archive:
        return _state(archive, path)


def load_checkpoint(path, model):
    """Assigns a checkpoint's variables to `model` (built, optimizer built)."""
    with _open(path) as archive:
        state = _state(archive, path)
        variables = _flatten(checkpoint_variables(model))
        saved = state["variables"]
        if len(saved) != len(variables):
            raise CheckpointError(
                f"Checkpoint {path} holds {len(saved)} variables; this model has {len(variables)}."
            )
        for index, ((group, variable), (saved_group, saved_path, saved_shape)) in enumerate(
            zip(variables, saved)
        ):
            if group != saved_group or list(variable.shape) != saved_shape:
                raise CheckpointError(
                    f"Checkpoint {path} does not fit the model: variable {index} is {saved_group} "
                    f"{saved_path} {tuple(saved_shape)} there and {group} {variable.path} "
                    f"{tuple(variable.shape)} here."
                )
        for index, (_, variable) in enumerate(variables):
            variable.assign(archive[f"v{index}"])
    return state


@contextlib.contextmanager
def _open(path):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"Checkpoint {path} is unreadable ({error}).") from None
    with archive:
        yield archive


def _state(archive, path):
    try:
        state = json.loads(str(archive[_STATE_KEY]))
    except (KeyError, ValueError, OSError) as error:
        raise CheckpointError(f"Checkpoint {path} has no readable state ({error}).") from None
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {path} has format {state['format_version']}; this keras-msrnn reads up to "
            f"{FORMAT_VERSION}."
        )
    return state
