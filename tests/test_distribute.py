"""Data-parallel training: equal to one device at the same global batch, and portable."""

import json
import os
import re
import subprocess

import keras
import numpy as np
import pytest

import keras_msrnn
from keras_msrnn import training
from tests.test_training import tiny_recipe, train_command

BACKEND = keras.config.backend()
# Two devices on one CPU, set up before the framework starts, hence a subprocess:
# JAX reads XLA_FLAGS; TensorFlow splits its CPU into two logical devices.
TWO_DEVICES = {
    "jax": {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    "tensorflow": {},
}
TF_TWO_CPUS = (
    "import sys, tensorflow as tf; "
    "tf.config.set_logical_device_configuration(tf.config.list_physical_devices('CPU')[0], "
    "[tf.config.LogicalDeviceConfiguration()] * 2); "
    "from keras_msrnn.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.large
@pytest.mark.skipif(BACKEND not in TWO_DEVICES, reason="no data-parallel engine wired in here")
def test_two_devices_resume_and_equal_one_device_at_the_same_batch(tmp_path, shared_data):
    data_dir = shared_data / "mnist"
    recipe_path = tmp_path / "recipe.json"
    recipe_path.write_text(json.dumps(tiny_recipe()))
    workdir, preset = tmp_path / "parallel", tmp_path / "preset"
    env = {**os.environ, "KERAS_BACKEND": BACKEND, **TWO_DEVICES[BACKEND]}

    def train_in_subprocess(workdir, *options):
        command = train_command(recipe_path, workdir, data_dir, "--data-parallel", *options)
        if BACKEND == "tensorflow":  # python -c ... instead of python -m keras_msrnn.cli
            command[1:3] = ["-c", TF_TWO_CPUS]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    stopped = train_in_subprocess(workdir, "--verbose", "2", "--max-minutes", "0")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert "(data-parallel over 2 devices: cpu:0, cpu:1)" in stopped.stdout
    assert "stopped by max_minutes at step 1 of 4" in stopped.stdout
    finished = train_in_subprocess(workdir, "--verbose", "2", "--preset-out", str(preset))
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming at step 1 of 4" in finished.stdout
    odd_batch = tiny_recipe()
    odd_batch["training"]["batch_size"] = 3
    recipe_path.write_text(json.dumps(odd_batch))
    refused = train_in_subprocess(tmp_path / "odd")
    assert refused.returncode == 1
    # The last line; TensorFlow's own start-up log lines come before it.
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "keras-msrnn train: The batch size 3 does not split over the 2 devices (cpu:0, cpu:1); "
        "use a multiple of 2."
    )

    single = training.train(tiny_recipe(), str(tmp_path / "single"), str(data_dir), verbose=0)
    parallel = keras.saving.load_model(workdir / "model.keras")  # on this process's one device
    assert len(single.model.weights) == len(parallel.weights)
    for want, got in zip(single.model.weights, parallel.weights):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-7, err_msg=want.path
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


@pytest.mark.skipif(BACKEND in TWO_DEVICES, reason="this backend has a data-parallel engine")
def test_other_backends_say_data_parallel_is_not_there_yet(tmp_path):
    message = (
        "Data-parallel training runs on JAX (keras.distribution.DataParallel) and TensorFlow "
        f"(tf.distribute.MirroredStrategy); on {BACKEND} it is not implemented yet. Run with "
        "KERAS_BACKEND=jax or KERAS_BACKEND=tensorflow."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        training.train(tiny_recipe(), str(tmp_path / "run"), data_parallel=True, verbose=0)
    assert not (tmp_path / "run").exists()  # refused before anything was written
