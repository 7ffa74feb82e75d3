"""Resumable, time-boxed training runs.

`train(recipe, workdir)` trains the recipe's model with `fit` and keeps
everything a later call needs to continue in `workdir`:

- `checkpoint.npz`: weights, optimizer slots and iterations, the
  scheduled-sampling counter, the random seed generators, the running loss of
  the epoch in progress, the global step and the logged epochs. It is
  written atomically every `checkpoint_minutes`, at every epoch end, and when
  the run stops: at `max_minutes`, on SIGTERM (what cluster schedulers send)
  and on Ctrl-C. A second Ctrl-C stops at once, keeping the last checkpoint;
  so does `kill -9`.
- `log.csv`: one row per finished epoch, rewritten from the checkpoint, so
  it never holds a row of an epoch the checkpoint does not.
- `training_state.json`: the run's progress in words a person reads.
- `model.keras`: the model as of the end of the latest call.

Calling `train` again with the same recipe and work directory continues
from the checkpoint; the batch of every global step is a pure function of
the step (`SequenceDataset.batch(index, epoch)`), so a run stopped and
resumed any number of times gives the weights, optimizer state, sampling
counter and log rows of an uninterrupted run. A finished run says so and
returns; a recipe that now asks for more steps continues.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import threading
import time
from typing import NamedTuple

import keras
import numpy as np

from keras_msrnn.backend.distribute import (
    any_process,
    data_parallel_scope,
    describe_data_parallel,
    is_primary_process,
    needs_tf_data_input,
    prepare_model,
    rows_of_this_process,
)
from keras_msrnn.backend.tf_data import generator_as_tf_dataset
from keras_msrnn.training.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    load_checkpoint,
    read_checkpoint_state,
    remove_stale_temporaries,
    save_checkpoint,
    temporary_path,
    write_text_atomically,
)
from keras_msrnn.training.recipes import build_model, load_recipe, make_dataset, make_optimizer

STATE_FILE = "training_state.json"
LOG_FILE = "log.csv"
MODEL_FILE = "model.keras"
# Recipe sections whose change makes a checkpoint meaningless; `steps` may grow.
_RESUMABLE_CHANGES = {
    ("training", "steps"),
    ("name",),
    ("description",),
    ("evaluation",),
    ("validation",),
    ("variants",),
}


class TrainingResult:
    """What a call of `train` did: the model, where it stopped and why.

    Attributes:
        model: the trained (or partly trained) model.
        step: global training steps done so far, over all calls.
        total_steps: steps the recipe asks for.
        stopped_by: None when the run is finished, else `"max_minutes"`,
            `"SIGTERM"` or `"SIGINT"`.
        workdir: the work directory.
    """

    def __init__(self, model, step, total_steps, stopped_by, workdir):
        self.model = model
        self.step = step
        self.total_steps = total_steps
        self.stopped_by = stopped_by
        self.workdir = workdir

    @property
    def finished(self):
        return self.step >= self.total_steps


def train(
    recipe: str | dict,
    workdir: str,
    data_dir: str | None = None,
    max_minutes: float | None = None,
    checkpoint_minutes: float = 5.0,
    verbose: int = 1,
    validation_sequences: int | None = None,
    tensorboard: bool = False,
    data_parallel: bool = False,
) -> TrainingResult:
    """Trains, or resumes training of, a recipe's model in `workdir`.

    Args:
        recipe: a recipe dict or the path of a JSON recipe.
        workdir: folder for the checkpoint, logs and final model.
        data_dir: the data set's folder (overrides the recipe's).
        max_minutes: float. Stop (with a checkpoint) at the first step
            after this many minutes; call again to continue.
        checkpoint_minutes: float. Also write a checkpoint this often
            (it survives `kill -9`).
        verbose: 0, 1 (progress bar) or 2 (a line per epoch), as in `fit`.
        validation_sequences: int. After every epoch, score the model on
            this many sequences of the test split (MS-RNN validates on its
            test set too): `val_loss`, and the future frames' `val_mse`
            (per-frame pixel sum) and `val_ssim`, in `log.csv` and the
            progress line. Defaults to the recipe's `validation` section,
            else none. Validation changes nothing in the model.
        tensorboard: bool. Also write the epoch rows as TensorBoard logs in
            `workdir/tensorboard` (needs TensorFlow installed).
        data_parallel: bool. Split each step's batch over all devices
            (`keras_msrnn.backend.distribute`: JAX's DataParallel,
            TensorFlow's MirroredStrategy, PyTorch's DDP under torchrun). The result
            equals single-device training at the same batch, and its
            checkpoint and preset load on one device.

    Returns:
        A `TrainingResult`.

    Example:

    ```python
    result = keras_msrnn.training.train("recipe.json", "runs/mine", max_minutes=30)
    while not result.finished:            # e.g. one call per cluster job
        result = keras_msrnn.training.train("recipe.json", "runs/mine", max_minutes=30)
    ```
    """
    started = time.monotonic()
    recipe = load_recipe(recipe)
    scope = contextlib.nullcontext()
    if data_parallel:
        scope = data_parallel_scope(recipe["training"]["batch_size"])
    with scope:
        return _train(
            recipe,
            workdir,
            data_dir,
            started + 60.0 * max_minutes if max_minutes is not None else None,
            checkpoint_minutes,
            verbose,
            validation_sequences,
            tensorboard,
            started,
        )


def _train(
    recipe,
    workdir,
    data_dir,
    deadline,
    checkpoint_minutes,
    verbose,
    validation_sequences,
    tensorboard,
    started,
):
    training = recipe["training"]
    steps_per_epoch, total_steps = training["steps_per_epoch"], training["steps"]
    primary = is_primary_process()
    verbose = verbose if primary else 0  # one process of a data-parallel job speaks
    os.makedirs(workdir, exist_ok=True)
    if primary:
        remove_stale_temporaries(workdir)
    seed = training.get("seed", 0)
    keras.utils.set_random_seed(seed)
    train_data = make_dataset(
        recipe,
        "train",
        data_dir,
        batch_size=training["batch_size"],
        shuffle=True,
        seed=seed,
        drop_remainder=True,
    )
    if len(train_data) == 0:
        raise ValueError(
            f"The training data holds {train_data.num_sequences} sequences, fewer than one batch "
            "of "
            f"{training['batch_size']}."
        )
    if validation_sequences is None:
        validation_sequences = recipe.get("validation", {}).get("num_sequences", 0)
    validation_data = None
    if validation_sequences:
        validation_data = make_dataset(
            recipe,
            "test",
            data_dir,
            batch_size=training["batch_size"],
            max_sequences=validation_sequences,
        )
    model = build_model(recipe)
    (context, _), _ = train_data.batch(0, 0)
    model.build((None,) + context.shape[1:])
    model.compile(optimizer=make_optimizer(training))
    model.optimizer.build(model.trainable_variables)

    state = _resume_state(workdir, recipe, model)
    step = state["step"]
    if step >= total_steps:
        _say(verbose, f"{workdir}: already finished ({step} of {total_steps} steps).")
        return TrainingResult(model, step, total_steps, None, workdir)
    if step:
        _say(verbose, f"{workdir}: resuming at step {step} of {total_steps}.")
    prepare_model(model)
    callbacks = [] if not tensorboard else [_tensorboard(os.path.join(workdir, "tensorboard"))]
    _say(
        verbose,
        f"training {recipe.get('name', 'the recipe')} on {keras.config.backend()}"
        f"{describe_data_parallel()}; the first step traces the unrolled sequence (on "
        "TensorFlow and JAX this can take a minute on a CPU)",
    )
    with _stop_requests() as stop_requests:
        limits = _Limits(started, deadline, 60.0 * checkpoint_minutes, stop_requests)
        progress = _Progress(workdir, recipe, state, limits, validation_data, primary)
        for first_step, last_step in _fit_segments(step, total_steps, steps_per_epoch):
            model.fit(
                _feed(train_data, first_step, last_step),
                initial_epoch=first_step // steps_per_epoch,
                epochs=-(-last_step // steps_per_epoch),
                steps_per_epoch=min(last_step - first_step, steps_per_epoch),
                callbacks=[progress, *callbacks],
                shuffle=False,  # the batches' order is fixed by the global step
                verbose=verbose,
            )
            if progress.stopped_by:
                break
    # On TensorFlow, fit wraps a generator feed in a tf.data iterator that reference
    # cycles keep alive; left to interpreter exit, its finalizer can no longer call
    # Python (an error line, and a stopped run that lingers before it exits).
    gc.collect()
    if primary:
        _save_model(model, os.path.join(workdir, MODEL_FILE))
    return TrainingResult(model, progress.step, total_steps, progress.stopped_by, workdir)


def _say(verbose, message):
    if verbose:
        print(message, flush=True)


def _fit_segments(step, total_steps, steps_per_epoch):
    """`fit` calls as (first, last) global steps: the rest of a partial epoch, then whole epochs."""
    epoch_end = -(-step // steps_per_epoch) * steps_per_epoch
    if step < epoch_end:
        yield step, epoch_end
        step = epoch_end
    if step < total_steps:
        yield step, total_steps


def _feed(dataset, first_step, last_step):
    """`fit`'s input for global steps `first_step .. last_step - 1`."""
    if not needs_tf_data_input():
        return (rows_of_this_process(batch) for batch in _batches(dataset, first_step, last_step))
    return generator_as_tf_dataset(
        lambda: _batches(dataset, first_step, last_step), dataset.batch(0, 0)
    )


def _batches(dataset, first_step, last_step):
    """The batches of global steps `first_step .. last_step - 1`.

    Global steps run through the data in passes, reshuffled at each pass.
    """
    for step in range(first_step, last_step):
        data_pass, index = divmod(step, len(dataset))
        yield dataset.batch(index, data_pass)


def _resume_state(workdir, recipe, model):
    """The checkpoint's state (its variables loaded into `model`), or a fresh one."""
    path = os.path.join(workdir, CHECKPOINT_FILE)
    if not os.path.exists(path):
        return {"step": 0, "epochs": [], "seconds_total": 0.0, "recipe": recipe, "metrics": None}
    changed = _recipe_changes(read_checkpoint_state(path).get("recipe", {}), recipe)
    if changed:
        raise CheckpointError(
            f"{path} was written by a different recipe ({', '.join(changed)} changed); "
            "train in a new work directory, or delete the checkpoint to start over."
        )
    state = load_checkpoint(path, model)
    # fit() resets the metrics at each epoch's start; the running loss of the
    # interrupted epoch goes back in then (see _Progress.on_epoch_begin).
    state["metrics"] = [keras.ops.convert_to_numpy(v) for v in model.metrics_variables]
    return state


def _recipe_changes(saved, recipe, prefix=()):
    changes = []
    for key in sorted(set(saved) | set(recipe)):
        path = prefix + (key,)
        if path in _RESUMABLE_CHANGES:
            continue
        old, new = saved.get(key), recipe.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes.extend(_recipe_changes(old, new, path))
        elif old != new:
            changes.append(".".join(path))
    return changes


@contextlib.contextmanager
def _stop_requests():
    """Turns SIGTERM and the first Ctrl-C into a request to stop after the current step."""
    requests = []
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return

    def request_stop(signum, frame):
        if requests:  # asked twice: stop now, the last checkpoint stays
            raise KeyboardInterrupt
        requests.append(signal.Signals(signum).name)

    previous = {
        number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield requests
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Limits(NamedTuple):
    started: float
    deadline: float | None
    checkpoint_seconds: float
    stop_requests: list


class _Progress(keras.callbacks.Callback):
    """Counts global steps, validates, writes checkpoints and logs, stops on time or signal."""

    def __init__(self, workdir, recipe, state, limits, validation_data=None, primary=True):
        super().__init__()
        self.primary = primary  # writes the files; the other processes train alongside
        self.workdir = workdir
        self.recipe = recipe
        self.steps_per_epoch = recipe["training"]["steps_per_epoch"]
        self.total_steps = recipe["training"]["steps"]
        self.step = state["step"]
        self.epochs = list(state["epochs"])
        self.seconds_before = state["seconds_total"]
        self.resumed_metrics = state["metrics"] if self.step % self.steps_per_epoch else None
        self.limits = limits
        self.validation_data = validation_data
        self.last_checkpoint = time.monotonic()
        self.stopped_by = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.resumed_metrics is not None:
            for variable, value in zip(self.model.metrics_variables, self.resumed_metrics):
                variable.assign(value)
            self.resumed_metrics = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.limits.stop_requests:
            self.stopped_by = self.limits.stop_requests[0]
        elif (
            self.limits.deadline is not None
            and time.monotonic() >= self.limits.deadline
            and self.step < self.total_steps
        ):
            self.stopped_by = "max_minutes"
        # Every process of a data-parallel job stops at the same step.
        if any_process(self.stopped_by) and not self.stopped_by:
            self.stopped_by = "another process"
        if self.stopped_by:
            self.model.stop_training = True
        if self.step % self.steps_per_epoch == 0:
            return  # on_epoch_end saves this step together with the epoch's log row
        if (
            self.stopped_by
            or time.monotonic() - self.last_checkpoint >= self.limits.checkpoint_seconds
        ):
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if self.step != (epoch + 1) * self.steps_per_epoch:
            if logs is not None:
                logs.clear()  # a partial epoch: its loss so far is in the checkpoint, not a log
            return
        if self.primary and self.validation_data is not None and logs is not None:
            logs.update(validation_scores(self.model, self.validation_data))
        row = {"epoch": epoch, "step": self.step}
        row.update({key: float(value) for key, value in (logs or {}).items()})
        self.epochs.append(row)
        self.save()

    def save(self):
        if not self.primary:
            return
        seconds = round(self.seconds_before + time.monotonic() - self.limits.started, 1)
        state = {
            "step": self.step,
            "epochs": self.epochs,
            "seconds_total": seconds,
            "recipe": self.recipe,
        }
        save_checkpoint(os.path.join(self.workdir, CHECKPOINT_FILE), self.model, state)
        self.last_checkpoint = time.monotonic()
        write_text_atomically(os.path.join(self.workdir, LOG_FILE), _csv(self.epochs))
        summary = {
            "recipe": self.recipe.get("name"),
            "steps_done": self.step,
            "steps": self.total_steps,
            "epochs_done": len(self.epochs),
            "epochs": self.total_steps // self.steps_per_epoch,
            "finished": self.step >= self.total_steps,
            "seconds_total": seconds,
            "backend": keras.config.backend(),
        }
        write_text_atomically(
            os.path.join(self.workdir, STATE_FILE), json.dumps(summary, indent=2) + "\n"
        )


def validation_scores(model, data):
    """`val_loss` (the training objective) and the future frames' `val_mse` and `val_ssim`."""
    from keras_msrnn.metrics import frame_mse, ssim

    scores = {"val_loss": model.evaluate(data, verbose=0, return_dict=True)["loss"]}
    truths, forecasts = [], []
    for index in range(len(data)):
        (context, future), _ = data[index]
        truths.append(future)
        forecasts.append(np.clip(keras.ops.convert_to_numpy(model.predict_on_batch(context)), 0, 1))
    truth, forecast = np.concatenate(truths), np.concatenate(forecasts)
    scores["val_mse"] = float(frame_mse(truth, forecast).mean())
    scores["val_ssim"] = float(ssim(truth, forecast).mean())
    return scores


def _tensorboard(log_dir):
    try:
        import tensorflow  # noqa: F401 - Keras' TensorBoard callback writes through tf.summary
    except ImportError:
        raise RuntimeError(
            "TensorBoard logs need TensorFlow installed (pip install tensorflow); or train "
            "without them."
        ) from None
    return keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, update_freq="epoch")


def _csv(rows):
    columns = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    lines = [",".join(columns)]
    lines += [",".join(_cell(row.get(column)) for column in columns) for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value):
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else repr(float(value))


def _save_model(model, path):
    temporary = temporary_path(path)  # Keras insists on the .keras extension
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def read_training_state(workdir):
    """The `training_state.json` of a work directory (empty dict if none)."""
    path = os.path.join(workdir, STATE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as file:
        return json.load(file)
