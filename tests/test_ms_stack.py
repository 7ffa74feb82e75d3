import re

import keras
import numpy as np
import pytest
from keras import ops

import keras_msrnn
from keras_msrnn import MSStack
from keras_msrnn.losses import msrnn_loss
from keras_msrnn.models import EpochReverseSampling, LinearSampling, ReverseSampling, TeacherForcing
from keras_msrnn.models.ms_stack import skip_sources
from tests.conftest import fast_subset
from tests.layer_test import run_layer_test

TINY = dict(filters=4, scales=(1, 2, 1), input_length=3, output_length=2)


def frames(batch=2, time=5, size=8, channels=1, seed=0):
    return np.random.default_rng(seed).random((batch, time, size, size, channels), dtype="float32")


def numpy(x):
    return ops.convert_to_numpy(x)


# --- wiring -----------------------------------------------------------------


def test_msrnn_skips_join_layer1_to_layer4_and_layer0_to_layer5():
    assert skip_sources((1, 2, 4, 4, 2, 1)) == (None, None, None, None, 1, 0)
    assert skip_sources((1,) * 6) == (None,) * 6
    assert skip_sources((1, 2, 1, 2, 1)) == (None, None, 0, None, 2)


def test_layer_sizes_follow_the_scales_with_integer_division():
    model = MSStack(cell="convlstm")
    assert model.layer_sizes(124, 124) == [
        (124, 124),
        (62, 62),
        (31, 31),
        (31, 31),
        (62, 62),
        (124, 124),
    ]
    assert MSStack(cell="convlstm", patch_size=2).layer_sizes(64, 32)[2] == (8, 4)


@pytest.mark.parametrize("cell, expected", [("convlstm", 1_772_737), ("predrnn", 3_594_817)])
def test_parameter_counts_at_msrnn_size_equal_the_reference_and_the_plain_stack(cell, expected):
    for scales in ((1, 2, 4, 4, 2, 1), (1,) * 6):
        model = MSStack(cell=cell, filters=64, scales=scales)
        model.build((None, 10, 64, 64, 1))
        assert model.count_params() == expected


@pytest.mark.parametrize("cell", fast_subset(["convlstm", "predrnn"], {"convlstm"}))
@pytest.mark.parametrize("patch_size, channels", [(1, 1), (2, 3)])
def test_forecast_shape(cell, patch_size, channels):
    model = MSStack(cell=cell, patch_size=patch_size, **TINY)
    context = frames(time=3, size=8, channels=channels)
    forecast = model(context)
    assert tuple(forecast.shape) == (2, 2, 8, 8, channels)
    assert np.all(np.isfinite(numpy(forecast)))


def test_longer_context_uses_its_last_input_length_frames():
    model = MSStack(cell="predrnn", **TINY)
    sequence = frames(time=5)
    np.testing.assert_allclose(numpy(model(sequence)), numpy(model(sequence[:, -3:])), atol=1e-6)


def test_predict_on_any_frame_size_divisible_by_the_largest_factor():
    model = MSStack(
        cell="convlstm", filters=4, scales=(1, 2, 4, 4, 2, 1), input_length=2, output_length=1
    )
    assert tuple(model(frames(batch=1, time=2, size=12)).shape) == (1, 1, 12, 12, 1)


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(cell="lstm"),
            "Unknown cell 'lstm'. Available cells: convlstm, mim, motionrnn, preciplstm, predrnn, "
            "predrnn++, predrnn_v2, trajgru",
        ),
        (dict(cell=None), "Unknown cell None"),
        (dict(scales=(1, 3, 2, 1)), "Consecutive `scales` must divide one another"),
        (dict(scales=()), "non-empty sequence of positive int"),
        (dict(scales=(1, 2)), "first and last layers must work at full resolution"),
        (dict(scales=(2, 1)), "first and last layers must work at full resolution"),
        (dict(filters=0), "`filters` must be a positive int"),
        (dict(input_length=0), "`input_length` must be a positive int"),
        (dict(kernel_size=4), "`kernel_size` must be a positive odd int"),
        (dict(sampling="cosine"), "Unknown sampling schedule 'cosine'"),
        (dict(reconstruction_loss_weight=-1.0), "`reconstruction_loss_weight` must be >= 0"),
        (dict(decoupling_reduction="sum"), "`decoupling_reduction` must be one of"),
        (dict(filters=[4, 4]), "`filters` gives 2 widths for 3 layers"),
        (dict(filters=[4, 0, 4]), "`filters` must be a positive int"),
        (
            dict(cell="predrnn", filters=[4, 8, 4]),
            "The 'predrnn' cell's memory passes through every layer, so all layers need one "
            "width. Received: filters=[4, 8, 4]",
        ),
        (
            dict(filters=[4, 8, 6]),
            "Layer 0's output (4 channels) is added to layer 1's (8): they need one width",
        ),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    config = dict(cell="convlstm", **TINY)
    config.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        MSStack(**config)


@pytest.mark.parametrize(
    "inputs, message",
    [
        (np.zeros((2, 3, 8, 8), "float32"), "rank 5"),
        (np.zeros((2, 3, 9, 9, 1), "float32"), "divisible by 2"),
        (np.zeros((2, 2, 8, 8, 1), "float32"), "at least input_length=3 frames"),
    ],
)
def test_bad_inputs_are_rejected(inputs, message):
    model = MSStack(cell="predrnn", **TINY)
    with pytest.raises(ValueError, match=message):
        model(inputs)


def test_wrong_channels_after_build_are_rejected():
    model = MSStack(cell="predrnn", **TINY)
    model(frames(time=3))
    with pytest.raises(
        ValueError, match=r"built for frames of \(height, width, channels\) = \(8, 8, 1\)"
    ):
        model(frames(time=3, channels=2))


def test_short_future_is_rejected_in_training():
    model = MSStack(cell="predrnn", **TINY)
    with pytest.raises(ValueError, match="at least output_length=2 frames"):
        model((frames(time=3), frames(time=1)), training=True)


def test_patch_size_must_divide_the_frame():
    model = MSStack(
        cell="convlstm", filters=4, scales=(1,), patch_size=3, input_length=1, output_length=1
    )
    with pytest.raises(ValueError, match="divisible by 3"):
        model(frames(time=1, size=8))


# --- scheduled sampling ---------------------------------------------------------


def test_linear_schedule_decays_from_one_to_zero():
    schedule = LinearSampling(decay_steps=4)
    etas = [float(numpy(schedule.eta(step))) for step in range(6)]
    np.testing.assert_allclose(etas, [1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    probabilities = schedule.feed_probabilities(0, 3, 3)
    assert probabilities[:3] == [1.0, 1.0, 1.0] and len(probabilities) == 5


def _training_forecast(model, context, future):
    return numpy(model((context, future), training=True))


def test_training_feeds_true_frames_at_eta_one_and_predictions_at_eta_zero():
    model = MSStack(cell="predrnn", sampling=LinearSampling(decay_steps=1), **TINY)
    context, future = frames(time=3, seed=1), frames(time=2, seed=2)
    sequence = np.concatenate([context, future[:, :1]], axis=1)
    teacher_forced = numpy(model.rollout(sequence, [1.0] * 4))[:, 2:]
    free_running = numpy(model.rollout(context))[:, 2:]

    at_eta_one = _training_forecast(model, context, future)  # step 0: eta = 1
    at_eta_zero = _training_forecast(model, context, future)  # step 1: eta = 0

    np.testing.assert_allclose(at_eta_one, teacher_forced, atol=1e-6)
    np.testing.assert_allclose(at_eta_zero, free_running, atol=1e-6)
    assert int(numpy(model.sampling_step)) == 2
    model(context)  # inference does not advance the schedule
    assert int(numpy(model.sampling_step)) == 2


def test_masks_are_drawn_per_sample():
    model = MSStack(cell="convlstm", sampling=LinearSampling(decay_steps=2), **TINY)
    model.sampling_step.assign(1)  # eta = 0.5
    batch = 64
    context = np.repeat(frames(batch=1, time=3), batch, axis=0)
    future = np.repeat(frames(batch=1, time=2, seed=3), batch, axis=0)
    forced = numpy(model.rollout(np.concatenate([context, future[:, :1]], 1), [1.0] * 4))[:, -1]

    mixed = _training_forecast(model, context, future)[:, -1]

    fed_truth = np.all(np.isclose(mixed, forced, atol=1e-6), axis=(1, 2, 3))
    assert 0.2 < fed_truth.mean() < 0.8


def test_teacher_forcing_and_free_running_schedules():
    context, future = frames(time=3), frames(time=2, seed=5)
    forced_model = MSStack(cell="convlstm", sampling=TeacherForcing(), **TINY)
    free_model = MSStack(cell="convlstm", sampling="free_running", **TINY)
    forced_model(context)
    free_model(context)
    free_model.set_weights(forced_model.get_weights())
    sequence = np.concatenate([context, future[:, :1]], axis=1)
    np.testing.assert_allclose(
        _training_forecast(forced_model, context, future),
        numpy(forced_model.rollout(sequence, [1.0] * 4))[:, 2:],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        _training_forecast(free_model, context, future), numpy(free_model(context)), atol=1e-6
    )


# --- losses and training --------------------------------------------------------


def test_reconstruction_loss_covers_context_frames_through_add_loss():
    model = MSStack(cell="predrnn", reconstruction_loss_weight=0.5, **TINY)
    context = frames(time=3)
    model((context, frames(time=2, seed=9)))
    expected = 0.5 * np.mean(numpy(msrnn_loss(context[:, 1:], model.rollout(context)[:, :2])))
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(numpy(model.losses[0])), expected, rtol=1e-5)


def _bouncing_square(batch, time, size=8):
    """A bright 2x2 square moving one pixel right per frame: a learnable sequence."""
    sequences = np.zeros((batch, time, size, size, 1), "float32")
    for b in range(batch):
        row = b % (size - 2)
        for t in range(time):
            col = (b + t) % (size - 2)
            sequences[b, t, row : row + 2, col : col + 2] = 1.0
    return sequences


@pytest.mark.parametrize("cell", fast_subset(["convlstm", "predrnn"], {"convlstm"}))
def test_fit_evaluate_predict(cell):
    sequences = _bouncing_square(batch=8, time=5)
    context, future = sequences[:, :3], sequences[:, 3:]
    model = MSStack(
        cell=cell, sampling=LinearSampling(decay_steps=20), reconstruction_loss_weight=1.0, **TINY
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate((context, future), future, verbose=0)

    history = model.fit((context, future), future, batch_size=4, epochs=20, verbose=0)

    after = model.evaluate((context, future), future, verbose=0)
    assert int(numpy(model.sampling_step)) == 40
    assert after < 0.5 * before, (before, after, history.history["loss"])
    assert model.predict(context, verbose=0).shape == future.shape


def test_default_compile_is_msrnn_adam_and_loss():
    model = MSStack(cell="convlstm", **TINY)
    model.compile()
    assert isinstance(model.loss, keras_msrnn.losses.MSRNNLoss)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    np.testing.assert_allclose(float(numpy(model.optimizer.learning_rate)), 3e-4)


@pytest.mark.large
def test_mixed_bfloat16_trains_without_nan():
    sequences = _bouncing_square(batch=4, time=5)
    model = MSStack(cell="predrnn", dtype="mixed_bfloat16", **TINY)
    model.compile()
    history = model.fit(
        (sequences[:, :3], sequences[:, 3:]), sequences[:, 3:], batch_size=2, epochs=1, verbose=0
    )
    assert model.cells[0].conv_x2h.compute_dtype == "bfloat16"
    assert all(np.isfinite(history.history["loss"]))
    assert np.all(np.isfinite(numpy(model.predict(sequences[:, :3], verbose=0)).astype("float32")))


def _values(probabilities):
    return [float(numpy(p)) for p in probabilities]


def test_reverse_sampling_per_iteration_follows_predrnn_v2():
    schedule = ReverseSampling(start_step=10, end_step=20, exp_alpha=5.0)
    assert _values(schedule.feed_probabilities(0, 3, 3)) == [1.0, 0.5, 0.5, 0.5, 0.5]
    middle = _values(schedule.feed_probabilities(15, 3, 3))
    np.testing.assert_allclose(middle, [1.0] + [1 - 0.5 * np.exp(-1.0)] * 2 + [0.25] * 2, rtol=1e-6)
    assert _values(schedule.feed_probabilities(20, 3, 3)) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_reverse_sampling_per_epoch_follows_the_msrnn_code():
    schedule = EpochReverseSampling(epochs=6, steps_per_epoch=10)  # start 2, end 4, alpha 0.4
    assert _values(schedule.feed_probabilities(9, 2, 2)) == [1.0, 0.5, 0.5]  # epoch 1
    np.testing.assert_allclose(
        _values(schedule.feed_probabilities(15, 2, 2)), [1.0, 0.5, 0.5], rtol=1e-6
    )  # epoch 2 = start
    np.testing.assert_allclose(
        _values(schedule.feed_probabilities(25, 2, 2)),
        [1.0, 1 - 0.5 * np.exp(-2.5), 0.25],
        rtol=1e-6,
    )  # epoch 3
    assert _values(schedule.feed_probabilities(59, 2, 2)) == [1.0, 1.0, 0.0]  # epoch 6 = test time


@pytest.mark.large
def test_predrnn_v2_adds_the_decoupling_loss_when_targets_are_given():
    model = MSStack(
        cell="predrnn_v2", decoupling_loss_weight=0.1, decoupling_reduction="mean", **TINY
    )
    context, future = frames(time=3), frames(time=2, seed=4)
    model(context)
    assert model.losses == []  # inference computes no loss terms
    model((context, future))
    _, raw = model.rollout(context, return_decoupling=True)
    assert tuple(raw.shape) == (4, 3, 2, 4)
    np.testing.assert_allclose(
        float(numpy(model.losses[0])), 0.1 * float(np.mean(numpy(raw))), rtol=1e-5
    )


@pytest.mark.large
def test_predrnn_v2_trains_with_reverse_sampling():
    sequences = _bouncing_square(batch=4, time=5)
    model = MSStack(cell="predrnn_v2", sampling=ReverseSampling(1, 3, 1.0), **TINY)
    model.compile()
    history = model.fit(
        (sequences[:, :3], sequences[:, 3:]), sequences[:, 3:], batch_size=2, epochs=2, verbose=0
    )
    assert all(np.isfinite(history.history["loss"]))
    assert int(numpy(model.sampling_step)) == 4


@pytest.mark.large
def test_ms_motionrnn_runs_on_odd_layer_sizes():
    # 20x20 frames give 5x5 layers, odd like the 31x31 layers of 124x124 radar.
    model = MSStack(
        cell="motionrnn", filters=4, scales=(1, 2, 4, 4, 2, 1), input_length=2, output_length=1
    )
    forecast = numpy(model(frames(batch=1, time=2, size=20)))
    assert forecast.shape == (1, 1, 20, 20, 1) and np.all(np.isfinite(forecast))


@pytest.mark.large
@pytest.mark.parametrize("quirks", [False, True])
def test_motionrnn_samples_are_independent_unless_reproducing_the_reference(quirks):
    model = MSStack(cell="motionrnn", cell_config={"reference_quirks": quirks}, **TINY)
    batch = frames(batch=2, time=3)
    model(batch)
    for weight in model.trainable_weights:  # large flows, so that mixing them shows
        weight.assign(3.0 * weight)
    together = numpy(model(batch))
    alone = np.concatenate([numpy(model(batch[i : i + 1])) for i in range(2)])
    # Q3: the reference's flow reshape mixes samples when the batch exceeds 1.
    assert np.allclose(together, alone, rtol=1e-4, atol=1e-4) != quirks


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            {
                "cell": "trajgru",
                "cell_config": {"links": 3},
                "kernel_size": 5,
                "patch_size": 2,
                "seed": 7,
                "sampling": keras_msrnn.models.LinearSampling(decay_steps=50),
                "reconstruction_loss_weight": 0.5,
            },
            marks=pytest.mark.large,
            id="trajgru",
        ),
        pytest.param(
            {"cell": "convlstm", "filters": [4, 6, 4], "scales": (1, 1, 1)},
            id="convlstm-per-layer-widths",
        ),
        pytest.param(
            {
                "cell": "predrnn_v2",
                "decoupling_loss_weight": 0.1,
                "decoupling_reduction": "mean",
                "sampling": keras_msrnn.models.EpochReverseSampling(epochs=6, steps_per_epoch=10),
                "use_bias": False,
                "embed_inputs": False,
                "loss": "mse",
                "unroll": False,
            },
            id="predrnn_v2",
        ),
    ],
)
def test_ms_stack_serializes_with_its_options(options, tmp_path):
    frames = np.random.default_rng(0).random((1, 3, 16, 16, 1)).astype("float32")
    options = {"filters": 4, "scales": (1, 2, 1), "input_length": 3, "output_length": 2, **options}
    run_layer_test(keras_msrnn.MSStack, options, lambda model: model(frames), tmp_path)


def test_openstl_options_change_the_architecture_and_bad_ones_are_named():
    frames = np.zeros((1, 3, 16, 16, 1), "float32")
    msrnn = keras_msrnn.MSStack(cell="predrnn", filters=4, scales=(1, 1), input_length=3)
    openstl = keras_msrnn.MSStack(
        cell="predrnn",
        filters=4,
        scales=(1, 1),
        input_length=3,
        use_bias=False,
        embed_inputs=False,
    )
    msrnn(frames), openstl(frames)
    assert openstl.embedding is None and not openstl.readout.use_bias
    assert all(not w.path.endswith("bias") for w in openstl.weights)
    # The first cell reads the 1-channel frame itself; every bias is gone.
    assert openstl.cells[0].conv_x2h.kernel.shape == (3, 3, 1, 16)
    embedding, readout_bias = 4 + 4, 1
    cell_biases = 2 * (16 + 16 + 12 + 12 + 4 + 4 + 4)  # 7 convolutions per layer
    first_input_kernels = 3 * 3 * (4 - 1) * (16 + 12)  # 4 embedded channels -> 1 frame channel
    assert msrnn.count_params() - openstl.count_params() == (
        embedding + readout_bias + cell_biases + first_input_kernels
    )
    with pytest.raises(ValueError, match="Set `use_bias` on MSStack"):
        keras_msrnn.MSStack(cell_config={"use_bias": False})
    with pytest.raises(ValueError, match=r"`loss` must be one of \('msrnn', 'mse'\)"):
        keras_msrnn.MSStack(loss="l1")
