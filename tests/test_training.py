import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import training
from keras_msrnn.training import checkpoint


def tiny_recipe(steps=4):
    return {
        "name": "tiny",
        "model": {
            "cell": "convlstm",
            "filters": 2,
            "scales": [1, 2, 1],
            "input_length": 2,
            "output_length": 2,
            "sampling": {"class_name": "LinearSampling", "config": {"decay_steps": 4}},
        },
        "dataset": {"name": "moving_mnist", "config": {"frame_size": 32}},
        "training": {
            "batch_size": 2,
            "steps": steps,
            "steps_per_epoch": 2,
            "learning_rate": 0.01,
            "final_learning_rate": 0.001,
            "seed": 3,
        },
        "evaluation": {"num_sequences": 2, "batch_size": 2},
    }


def resumable_state(model):
    """Every variable a resumed run depends on, as numpy arrays by group."""
    groups = checkpoint.checkpoint_variables(model)
    return {
        name: [np.asarray(v) for v in variables]
        for name, variables in groups.items()
        if name != "metrics"
    }


def read_log(workdir):
    with open(os.path.join(workdir, "log.csv")) as file:
        header, *rows = file.read().splitlines()
    return header.split(","), [[float(value) for value in row.split(",")] for row in rows]


# Each script trains in its own way, then prints the page faults of
# allocating and freeing a 4 MB buffer, a mean over 10 times.
TRAIN_WITH_THE_TRAINER = """
import json, sys
from keras_msrnn import training
training.train(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], verbose=0)
"""
FIT_A_PYDATASET = """
import json, sys
from keras_msrnn import training
recipe = json.loads(sys.argv[1])
model = training.build_model(recipe)
model.compile()
data = training.make_dataset(recipe, "train", sys.argv[3], batch_size=2, num_sequences=8)
model.fit(data, steps_per_epoch=2, verbose=0)
"""
PAGE_FAULTS_OF_A_4MB_BUFFER = """
import resource
bytearray(4 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    buffer = bytearray(4 * 2**20)  # zero-filled: every page touched
    del buffer
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow", reason="TensorFlow's input iterators set the allocator"
)
@pytest.mark.parametrize(
    "training_script",
    [TRAIN_WITH_THE_TRAINER, FIT_A_PYDATASET],
    ids=["trainer", "model_fit"],
)
def test_training_on_tensorflow_leaves_freed_buffers_to_be_reused(
    training_script, tmp_path, shared_data
):
    # TensorFlow's first generator feed of a process freezes glibc's mmap
    # threshold: a 4 MB buffer would be mapped afresh at each allocation, 1,024
    # page faults each time. A fresh process, as TensorFlow sets it once and the
    # threshold it freezes at depends on what ran before.
    arguments = [json.dumps(tiny_recipe()), str(tmp_path / "run"), str(shared_data / "mnist")]
    measured = subprocess.run(
        [sys.executable, "-c", training_script + PAGE_FAULTS_OF_A_4MB_BUFFER, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env=same_threads_env(),
    )
    assert measured.returncode == 0, measured.stderr[-2000:]
    assert float(measured.stdout.split()[-1]) < 50


def test_the_allocator_callback_joins_the_users_callbacks_once():
    from keras_msrnn.backend.tf_data import RestoreMallocThresholds, with_malloc_thresholds_restored

    users = [keras.callbacks.History()]
    given = with_malloc_thresholds_restored(users)
    assert users == [users[0]]  # the user's list is left as it was
    if keras.config.backend() != "tensorflow":
        assert given is users and with_malloc_thresholds_restored(None) is None
        return
    assert given[0] is users[0] and isinstance(given[1], RestoreMallocThresholds)
    assert with_malloc_thresholds_restored(given) == given  # never twice
    callback_list = keras.callbacks.CallbackList(given)  # as fit hands it to evaluate
    assert with_malloc_thresholds_restored(callback_list) is callback_list


def test_a_run_stopped_after_every_step_equals_an_uninterrupted_one(tmp_path, shared_data):
    data_dir = str(shared_data / "mnist")
    whole = training.train(tiny_recipe(), str(tmp_path / "whole"), data_dir, verbose=0)
    assert whole.finished and whole.stopped_by is None
    chunks, steps_seen = str(tmp_path / "chunks"), []
    for _ in range(4):  # max_minutes=0 stops after the first step of every call
        result = training.train(tiny_recipe(), chunks, data_dir, max_minutes=0, verbose=0)
        steps_seen.append(result.step)
    assert steps_seen == [1, 2, 3, 4]  # resumed each time, never restarted
    assert result.finished
    expected, actual = resumable_state(whole.model), resumable_state(result.model)
    for group in expected:
        for want, got in zip(expected[group], actual[group]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=group)
    assert int(np.asarray(result.model.sampling_step)) == 4
    assert int(np.asarray(result.model.optimizer.iterations)) == 4
    (header, whole_rows), (chunk_header, chunk_rows) = read_log(whole.workdir), read_log(chunks)
    assert header == chunk_header and header[:3] == ["epoch", "step", "loss"]
    assert [row[:2] for row in chunk_rows] == [[0, 2], [1, 4]]  # one row per epoch, no repeats
    np.testing.assert_allclose(chunk_rows, whole_rows, rtol=1e-5)
    state = training.read_training_state(chunks)
    assert state["steps_done"] == 4 and state["finished"] and state["epochs_done"] == 2


@pytest.mark.large
def test_a_finished_run_says_so_and_continues_when_the_recipe_asks_for_more(
    tmp_path, shared_data, capsys
):
    data_dir, workdir = str(shared_data / "mnist"), str(tmp_path / "run")
    training.train(tiny_recipe(), workdir, data_dir, verbose=0)
    with open(os.path.join(workdir, "checkpoint.npz"), "rb") as file:
        before = file.read()
    again = training.train(tiny_recipe(), workdir, data_dir, verbose=1)
    assert again.finished and again.step == 4
    assert "already finished (4 of 4 steps)" in capsys.readouterr().out
    with open(os.path.join(workdir, "checkpoint.npz"), "rb") as file:
        assert file.read() == before
    longer = training.train(tiny_recipe(steps=6), workdir, data_dir, verbose=0)
    assert longer.step == 6 and int(np.asarray(longer.model.optimizer.iterations)) == 6
    assert [row[1] for row in read_log(workdir)[1]] == [2, 4, 6]


@pytest.mark.large
def test_a_checkpoint_of_another_recipe_is_refused_by_name(tmp_path, shared_data):
    data_dir, workdir = str(shared_data / "mnist"), str(tmp_path / "run")
    training.train(tiny_recipe(), workdir, data_dir, max_minutes=0, verbose=0)
    other = tiny_recipe()
    other["model"]["filters"] = 3
    other["training"]["seed"] = 4
    with pytest.raises(
        training.CheckpointError, match=r"different recipe \(model.filters, training.seed changed\)"
    ):
        training.train(other, workdir, data_dir, verbose=0)


@pytest.mark.large
def test_a_write_interrupted_before_the_rename_keeps_the_previous_checkpoint(
    tmp_path, shared_data, monkeypatch
):
    data_dir, workdir = str(shared_data / "mnist"), str(tmp_path / "run")
    training.train(tiny_recipe(), workdir, data_dir, max_minutes=0, verbose=0)
    path = os.path.join(workdir, "checkpoint.npz")
    assert checkpoint.read_checkpoint_state(path)["step"] == 1

    def killed(*args):
        raise KeyboardInterrupt  # as if the process died between writing and renaming

    monkeypatch.setattr(checkpoint.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny_recipe(), workdir, data_dir, max_minutes=0, verbose=0)
    monkeypatch.undo()
    assert checkpoint.read_checkpoint_state(path)["step"] == 1
    assert sorted(os.listdir(workdir)) == [
        "checkpoint.npz",
        "log.csv",
        "model.keras",
        "training_state.json",
    ]
    (tmp_path / "run" / f".checkpoint.123{checkpoint._TEMPORARY}.npz").write_bytes(
        b"left by kill -9"
    )
    assert training.train(tiny_recipe(), workdir, data_dir, verbose=0).step == 4
    assert sorted(os.listdir(workdir)) == [
        "checkpoint.npz",
        "log.csv",
        "model.keras",
        "training_state.json",
    ]


def test_a_torn_checkpoint_is_named(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(training.CheckpointError, match="checkpoint.npz is unreadable"):
        checkpoint.read_checkpoint_state(str(path))


@pytest.mark.large
def test_training_exports_a_preset(tmp_path, shared_data):
    workdir, data_dir = str(tmp_path / "run"), str(shared_data / "mnist")
    result = training.train(tiny_recipe(), workdir, data_dir, verbose=0)
    metadata = training.export_preset(
        result.model, tiny_recipe(), workdir, str(tmp_path / "preset"), data_dir, verbose=False
    )
    assert metadata["training"]["steps"] == 4
    assert set(metadata["metrics"]["future_frames"]) == {"mse", "mae", "ssim", "psnr"}
    loaded = keras_msrnn.from_preset(str(tmp_path / "preset"))
    frames = np.random.default_rng(0).random((1, 2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(frames, verbose=0), result.model.predict(frames, verbose=0), atol=1e-5
    )


def test_bad_recipes_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        training.load_recipe(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        training.load_recipe(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match=r"lacks section\(s\) \['dataset', 'training'\]"):
        training.load_recipe({"name": "x", "model": {}})
    recipe = tiny_recipe()
    recipe["training"]["steps"] = 5
    with pytest.raises(
        ValueError,
        match=r"training.steps \(5\) must be a multiple of training.steps_per_epoch \(2\)",
    ):
        training.load_recipe(recipe)
    recipe = tiny_recipe()
    recipe["dataset"]["name"] = "Nope"
    with pytest.raises(ValueError, match="Unknown dataset 'Nope'"):
        training.make_dataset(recipe, "train")


def same_threads_env():
    """Environment for a training subprocess that sums floats in the order this process does.

    PyTorch's CPU kernels split reductions over their threads; with a different thread count
    400 Adam steps drift apart by about 2e-4 relative, enough to hide a resume bug's size.
    """
    env = dict(os.environ)
    if keras.config.backend() == "torch":
        import torch

        env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return env


def train_command(recipe_path, workdir, data_dir, *options):
    """`keras-msrnn train` of a recipe file, as a subprocess argument list."""
    return [
        sys.executable,
        "-m",
        "keras_msrnn.cli",
        "train",
        str(recipe_path),
        "--workdir",
        str(workdir),
        "--data-dir",
        str(data_dir),
        *options,
    ]


@pytest.mark.large
def test_sigterm_and_kill_9_leave_a_run_that_resumes_to_the_uninterrupted_result(
    tmp_path, shared_data
):
    recipe_path = tmp_path / "recipe.json"
    recipe_path.write_text(json.dumps(tiny_recipe(steps=400)))
    workdir = tmp_path / "run"
    command = train_command(
        recipe_path, workdir, shared_data / "mnist", "--checkpoint-minutes", "0", "--verbose", "0"
    )
    state_path = workdir / "checkpoint.npz"

    def start_and_wait_for_progress():
        before = (
            checkpoint.read_checkpoint_state(str(state_path))["step"] if state_path.exists() else 0
        )
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=same_threads_env(),
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if (
                state_path.exists()
                and checkpoint.read_checkpoint_state(str(state_path))["step"] > before + 2
            ):
                return process
        process.kill()
        out, err = process.communicate()
        pytest.fail(
            f"training made no progress from step {before} (exit {process.returncode}): {out} "
            f"{err[-2000:]}"
        )

    process = start_and_wait_for_progress()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    # TensorFlow's generator iterator, left to interpreter exit, fails to finalize.
    assert "Error occurred when finalizing" not in err
    assert out.strip().startswith("stopped by SIGTERM at step ") and out.strip().endswith(
        "to resume"
    )
    for _ in range(3):  # kill -9 at checkpoint writes (one is written after every step)
        process = start_and_wait_for_progress()
        process.kill()
        process.wait()
        checkpoint.read_checkpoint_state(str(state_path))  # never torn
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=same_threads_env()
    )
    assert finished.returncode == 0, finished.stderr
    result = training.train(
        tiny_recipe(steps=400), str(workdir), str(shared_data / "mnist"), verbose=0
    )
    assert result.finished
    whole = training.train(
        tiny_recipe(steps=400), str(tmp_path / "whole"), str(shared_data / "mnist"), verbose=0
    )
    for group, values in resumable_state(whole.model).items():
        for want, got in zip(values, resumable_state(result.model)[group]):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=group)
    assert [row[:2] for row in read_log(str(workdir))[1]] == [
        [epoch, 2 * epoch + 2] for epoch in range(200)
    ]


@pytest.mark.large
def test_validation_rows_tensorboard_and_mixed_precision_from_the_command_line(
    tmp_path, shared_data, capsys
):
    pytest.importorskip("tensorflow")  # the TensorBoard writer
    from keras_msrnn import cli

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(tiny_recipe()))
    workdir = tmp_path / "run"
    argv = ["train", str(recipe), "--workdir", str(workdir)]
    argv += ["--data-dir", str(shared_data / "mnist"), "--validation-sequences", "2"]
    argv += ["--tensorboard", "--dtype", "mixed_bfloat16", "--verbose", "2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "the first step traces the unrolled sequence" in out and "val_ssim" in out
    header, rows = read_log(str(workdir))
    assert header[:3] == ["epoch", "step", "loss"]
    assert {"val_loss", "val_mse", "val_ssim"} <= set(header)
    assert len(rows) == 2 and all(np.isfinite(row).all() for row in rows)
    assert 0 < rows[-1][header.index("val_ssim")] <= 1
    assert list((workdir / "tensorboard").rglob("events.out.tfevents.*"))
    state = checkpoint.read_checkpoint_state(str(workdir / "checkpoint.npz"))
    assert state["recipe"]["model"]["dtype"] == "mixed_bfloat16"


@pytest.mark.large
def test_a_radar_preset_records_its_pixel_units(tmp_path, shared_data):
    recipe = tiny_recipe()
    recipe["model"].update(input_length=3, output_length=2)
    recipe["dataset"] = {"name": "radar_knmi", "config": {"frame_size": 32}}
    workdir = str(tmp_path / "run")
    result = training.train(recipe, workdir, str(shared_data / "radar_knmi"), verbose=0)
    metadata = training.export_preset(
        result.model,
        recipe,
        workdir,
        str(tmp_path / "preset"),
        str(shared_data / "radar_knmi"),
        verbose=False,
    )
    assert metadata["pixel_units"]["convention"] == "dwd"
    loaded = keras_msrnn.from_preset(str(tmp_path / "preset"))
    assert "pixel_to_rain" in loaded.preset_metadata["pixel_units"]["to_rain_rate"]
