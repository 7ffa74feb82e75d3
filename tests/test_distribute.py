"""Data-parallel training: equal to one device at the same global batch, and portable."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import training
from tests.conftest import fast_subset
from tests.test_training import tiny_recipe, train_command

BACKEND = keras.config.backend()
# Two devices on one CPU, set up before the framework starts, hence subprocesses:
# JAX reads XLA_FLAGS; TensorFlow splits its CPU into two logical devices;
# torch runs two gloo processes under torchrun.
TF_TWO_CPUS = (
    "import sys, tensorflow as tf; "
    "tf.config.set_logical_device_configuration(tf.config.list_physical_devices('CPU')[0], "
    "[tf.config.LogicalDeviceConfiguration()] * 2); "
    "from keras_msrnn.cli import main; sys.exit(main(sys.argv[1:]))"
)
LAUNCHERS = {
    "jax": [sys.executable, "-m", "keras_msrnn.cli"],
    "tensorflow": [sys.executable, "-c", TF_TWO_CPUS],
    "torch": [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    + ["--nproc_per_node", "2", "-m", "keras_msrnn.cli"],
}
ENVIRONMENTS = {
    "jax": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    "tensorflow": {},
    "torch": {"OMP_NUM_THREADS": "1"},
}
ANNOUNCED = {
    "jax": "(data-parallel over 2 devices: cpu:0, cpu:1)",
    "tensorflow": "(data-parallel over 2 devices: cpu:0, cpu:1)",
    "torch": "(data-parallel over 2 processes, DDP; this is rank 0)",
}
REFUSED = {
    "jax": "the 2 devices (cpu:0, cpu:1)",
    "tensorflow": "the 2 devices (cpu:0, cpu:1)",
    "torch": "the 2 processes (rank 0, rank 1)",
}


@pytest.mark.large
@pytest.mark.parametrize("cell", fast_subset(["convlstm", "predrnn++"], set()))
def test_two_devices_resume_and_equal_one_device_at_the_same_batch(cell, tmp_path, shared_data):
    data_dir = shared_data / "mnist"
    recipe = tiny_recipe()
    recipe["model"]["cell"] = cell  # PredRNN++: weights that no step uses (its GHU convs)
    recipe_path = tmp_path / "recipe.json"
    recipe_path.write_text(json.dumps(recipe))
    workdir, preset = tmp_path / "parallel", tmp_path / "preset"
    env = {**os.environ, "KERAS_BACKEND": BACKEND, **ENVIRONMENTS[BACKEND]}

    def train_in_subprocess(workdir, *options):
        command = train_command(recipe_path, workdir, data_dir, "--data-parallel", *options)
        command[:3] = LAUNCHERS[BACKEND]  # in place of python -m keras_msrnn.cli
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    stopped = train_in_subprocess(workdir, "--verbose", "2", "--max-minutes", "0")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert ANNOUNCED[BACKEND] in stopped.stdout
    assert stopped.stdout.count("stopped by max_minutes at step 1 of 4") == 1  # one speaker
    finished = train_in_subprocess(workdir, "--verbose", "2", "--preset-out", str(preset))
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming at step 1 of 4" in finished.stdout
    odd_batch = json.loads(json.dumps(recipe))
    odd_batch["training"]["batch_size"] = 3
    recipe_path.write_text(json.dumps(odd_batch))
    refused = train_in_subprocess(tmp_path / "odd")
    assert refused.returncode == 1
    # One line per process, among TensorFlow's start-up log and torchrun's own report
    # (a traceback of its ChildFailedError); none of keras-msrnn's processes has one.
    launcher_tracebacks = refused.stderr.count("ChildFailedError: ")
    assert refused.stderr.count("Traceback") == launcher_tracebacks
    assert refused.stderr.count(
        f"keras-msrnn train: The batch size 3 does not split over {REFUSED[BACKEND]}; use a "
        "multiple of 2.\n"
    ) == (2 if BACKEND == "torch" else 1)

    single = training.train(recipe, str(tmp_path / "single"), str(data_dir), verbose=0)
    parallel = keras.saving.load_model(workdir / "model.keras")  # on this process's one device
    assert len(single.model.weights) == len(parallel.weights)
    # Adam divides by the root of the squared gradients, so the float-order noise of
    # summing two halves of the batch grows in weights whose gradients are near zero.
    for want, got in zip(single.model.weights, parallel.weights):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-7, err_msg=want.path
        )
    assert int(np.asarray(parallel.sampling_step)) == 4  # one advance per global step
    # The preset holds the run's weights at half precision (PRESET_WEIGHTS_DTYPE).
    for variable in parallel.weights:
        if "float" in str(variable.dtype):
            variable.assign(np.asarray(variable).astype("float16").astype(variable.dtype))
    context = np.random.default_rng(0).random((2, 2, 32, 32, 1), "float32")
    np.testing.assert_allclose(
        keras_msrnn.from_preset(str(preset)).predict(context, verbose=0),
        parallel.predict(context, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_torch_data_parallel_needs_torchrun(tmp_path, monkeypatch):
    if BACKEND != "torch":
        pytest.skip("torch's data-parallel engine runs under torchrun")
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    message = (
        "On torch, data-parallel training runs one process per device under torchrun: "
        "torchrun --nproc_per_node=N -m keras_msrnn.cli train RECIPE --data-parallel."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        training.train(tiny_recipe(), str(tmp_path / "run"), data_parallel=True, verbose=0)
    assert not (tmp_path / "run").exists()  # refused before anything was written
