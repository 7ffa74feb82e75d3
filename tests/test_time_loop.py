"""The time loop as one loop of the graph (`unroll=False`) against the unrolled one."""

import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_msrnn.backend import time_loop
from keras_msrnn.cells import available_cells
from keras_msrnn.datasets import FrameWindows
from keras_msrnn.models import LinearSampling, MSStack
from tests.conftest import fast_subset


def frames(time, seed, batch=2, size=8):
    return np.random.default_rng(seed).random((batch, time, size, size, 1), dtype="float32")


def test_scan_returns_the_last_carry_and_every_output_and_keeps_nones():
    def running_sum(carry, x):
        total, nothing = carry
        total = total + x
        return (total, nothing), (total, None)

    values = np.arange(12, dtype="float32").reshape(4, 3)
    (total, nothing), (sums, none) = time_loop.scan(
        running_sum, (ops.zeros(3), None), ops.convert_to_tensor(values)
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(total), values.sum(0))
    np.testing.assert_array_equal(ops.convert_to_numpy(sums), np.cumsum(values, 0))
    assert nothing is None and none is None


def test_the_loop_is_unrolled_unless_asked_and_bad_values_are_named():
    assert MSStack(cell="convlstm", filters=4, scales=(1, 1)).unroll is True
    with pytest.raises(ValueError, match=re.escape("`unroll` must be True or False")):
        MSStack(cell="convlstm", unroll="yes")


@pytest.mark.parametrize("cell", fast_subset(available_cells(), {"convlstm", "mim", "predrnn_v2"}))
def test_graph_loop_forecasts_and_trains_as_the_unrolled_loop(cell):
    config = dict(
        cell=cell,
        filters=4,
        scales=(1, 2, 1),
        input_length=3,
        output_length=3,
        seed=5,
        sampling=LinearSampling(decay_steps=2),
        decoupling_loss_weight=0.1,
    )
    context, future = frames(3, seed=0), frames(3, seed=1)
    unrolled, looped = (MSStack(unroll=unroll, **config) for unroll in (True, False))
    for model in (unrolled, looped):
        model((context, future))
    looped.set_weights(unrolled.get_weights())
    np.testing.assert_allclose(
        looped.predict(context, verbose=0), unrolled.predict(context, verbose=0), atol=1e-6
    )

    # At eta = 0.5 each sample draws which steps see a true future frame;
    # both models draw the same masks from the same seed.
    initial = unrolled.get_weights()
    for model in (unrolled, looped):
        model.sampling_step.assign(1)
        model.compile(optimizer=keras.optimizers.SGD(1e-2))
        model.train_on_batch((context, future), future)
    steps = [after - before for after, before in zip(unrolled.get_weights(), initial)]
    assert max(np.abs(step).max() for step in steps) > 1e-3
    for after, before, step in zip(looped.get_weights(), initial, steps):
        np.testing.assert_allclose(after - before, step, rtol=1e-3, atol=1e-6)


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="tf.function's tracing")
def test_the_first_training_step_traces_the_model_once():
    model = MSStack(cell="convlstm", filters=4, scales=(1, 2, 1), input_length=3, output_length=2)
    context, future = frames(3, seed=0), frames(2, seed=1)
    model((context, future))
    model.compile()
    calls = []
    unroll = model._unroll
    model._unroll = lambda *args: calls.append(1) or unroll(*args)
    model.train_on_batch((context, future), future)
    model.train_on_batch((context, future), future)
    # Twice if the optimizer's variables are first made inside the trace.
    assert len(calls) == 1


def _unbuilt_feeds():
    context, future = frames(3, seed=0, batch=4), frames(2, seed=1, batch=4)
    windows = FrameWindows(
        np.concatenate([context, future], 1), input_length=3, output_length=2, batch_size=2
    )
    return {
        "train_on_batch": lambda model: model.train_on_batch((context, future), future),
        "fit on arrays": lambda model: model.fit(
            (context, future), future, batch_size=2, verbose=0
        ),
        "fit on a PyDataset": lambda model: model.fit(windows, verbose=0),
    }


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="tf.function's tracing")
@pytest.mark.parametrize("feed", list(_unbuilt_feeds()))
def test_an_unbuilt_model_traces_its_first_training_step_once(feed):
    model = MSStack(cell="convlstm", filters=4, scales=(1, 2, 1), input_length=3, output_length=2)
    model.compile()
    calls = []
    unroll = model._unroll
    model._unroll = lambda *args: calls.append(1) or unroll(*args)
    _unbuilt_feeds()[feed](model)
    # Twice if the model's variables are first made inside the trace.
    assert len(calls) == 1


@pytest.mark.parametrize(
    "data",
    ["context", "pair", "dataset", "tf.data"],
)
def test_a_loop_builds_an_unbuilt_model_from_its_first_batch(data):
    context, future = frames(3, seed=0, batch=4), frames(2, seed=1, batch=4)
    if data == "tf.data":
        tf = pytest.importorskip("tensorflow")
        feed = tf.data.Dataset.from_tensor_slices(((context, future), future)).batch(2)
    else:
        feed = {
            "context": context,
            "pair": (context, future),
            "dataset": FrameWindows(
                np.concatenate([context, future], 1), input_length=3, output_length=2, batch_size=2
            ),
        }[data]
    model = MSStack(cell="convlstm", filters=4, scales=(1, 2, 1), input_length=3, output_length=2)
    model._build_from_data(feed)
    assert model.built and model.frame_shape == (8, 8, 1)
    np.testing.assert_allclose(
        model.predict_on_batch(context), model.predict(context, verbose=0), atol=1e-6
    )


def test_building_from_data_leaves_shapes_it_cannot_know_to_the_first_call():
    model = MSStack(cell="convlstm", filters=4, scales=(1, 2, 1), input_length=3, output_length=2)
    model._build_from_data(iter([frames(3, seed=0)]))
    model._build_from_data(np.zeros((2, 3, 8, 8), "float32"))
    assert not model.built
