import keras
import numpy as np
import pytest
from keras import ops

from keras_msrnn import cells
from tests.layer_test import run_layer_test

CELL_CLASSES = [
    cells.ConvLSTMCell,
    cells.PredRNNCell,
    cells.PredRNNPPCell,
    cells.PredRNNV2Cell,
    cells.MIMCell,
    cells.TrajGRUCell,
    cells.PrecipLSTMCell,
    cells.MotionRNNCell,
]


def test_available_cells():
    assert {"convlstm", "mim", "predrnn", "predrnn++"} <= set(cells.available_cells())
    assert cells.get_cell_class("PredRNN") is cells.PredRNNCell


NON_DEFAULT_OPTIONS = {
    cells.ConvLSTMCell: {
        "kernel_size": 5,
        "bias_initializer": keras.initializers.Ones(),
        "forget_bias": 1.0,
        "layer_norm": True,
    },
    cells.PredRNNCell: {
        "kernel_size": 5,
        "kernel_initializer": keras.initializers.GlorotUniform(seed=1),
        "use_bias": False,
        "forget_bias": 1.0,
    },
    cells.PredRNNPPCell: {"gradient_highway": True, "forget_bias": 1.0, "wiring": "openstl"},
    cells.PredRNNV2Cell: {"kernel_size": 1, "layer_norm": True},
    cells.MIMCell: {"forget_bias": 1.0, "wiring": "openstl"},
    cells.TrajGRUCell: {"links": 3},
    cells.PrecipLSTMCell: {"window": 5},
    cells.MotionRNNCell: {
        "motion_highway": False,
        "neighbourhood": 2,
        "alpha": 0.25,
        "reference_quirks": True,
    },
}


def one_step(cell):
    """One step on fixed inputs; the states and memory are non-zero so every path counts."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 12, 8), "float32")
    states = tuple(0.1 * ops.ones_like(s) for s in cell.get_initial_state(2, 8, 12))
    memory = ops.ones((2, 8, 12, 8)) if cell.uses_memory else None
    extra = (
        {"previous_input": rng.random((2, 8, 12, 8), "float32")}
        if cell.takes_previous_input
        else {}
    )
    return cell(x, states, memory, **extra)


@pytest.mark.parametrize("cell_class", CELL_CLASSES)
def test_cells_serialize_with_their_options(cell_class, tmp_path):
    options = {"filters": 8, "name": "cell", **NON_DEFAULT_OPTIONS[cell_class]}
    # A layer norm rescales the bfloat16 rounding of the convolutions before the
    # gates (by 1 / std, in float32); the 5x5 ConvLSTM here lands within 0.1.
    tolerance = 0.1 if options.get("layer_norm") else 0.05
    run_layer_test(cell_class, options, one_step, mixed_precision_atol=tolerance)


@pytest.mark.parametrize("cell_class", CELL_CLASSES)
def test_a_lost_option_is_caught(cell_class, monkeypatch):
    """The check above fails when get_config drops an option (here: the last one)."""
    option = list(NON_DEFAULT_OPTIONS[cell_class])[-1]
    original = cell_class.get_config

    def forgetful(self):
        config = original(self)
        config.pop(option)
        return config

    monkeypatch.setattr(cell_class, "get_config", forgetful)
    with pytest.raises((AssertionError, KeyError)):
        run_layer_test(cell_class, {"filters": 8, **NON_DEFAULT_OPTIONS[cell_class]}, one_step)


@pytest.mark.parametrize(
    "cell_class, options",
    [(cell_class, {}) for cell_class in CELL_CLASSES]
    + [
        (cells.PredRNNPPCell, {"gradient_highway": True}),
        (cells.PredRNNPPCell, {"wiring": "openstl"}),
        (cells.PredRNNPPCell, {"gradient_highway": True, "wiring": "openstl"}),
        (cells.MIMCell, {"use_mim": False}),
        (cells.MIMCell, {"wiring": "openstl"}),
        (cells.MIMCell, {"use_mim": False, "wiring": "openstl"}),
    ],
)
def test_one_step_on_its_own(cell_class, options):
    cell = cell_class(filters=8, **options)
    step = one_step(cell)
    states = cell.get_initial_state(2, 8, 12)

    assert isinstance(step, cells.CellOutput)
    assert cell.state_names[0] == "h" and len(cell.state_names) == len(states)
    assert tuple(step.output.shape) == (2, 8, 12, 8)
    assert [tuple(s.shape) for s in step.states] == [tuple(s.shape) for s in states]
    np.testing.assert_array_equal(
        ops.convert_to_numpy(step.states[0]), ops.convert_to_numpy(step.output)
    )
    if cell.returns_increments:
        assert [tuple(d.shape) for d in step.increments] == [(2, 8, 12, 8)] * 2
    else:
        assert step.increments is None
    if cell.uses_memory:
        assert tuple(step.memory.shape) == (2, 8, 12, 8)
    else:
        assert step.memory is None


def test_convlstm_equations_with_1x1_kernels():
    rng = np.random.default_rng(1)
    cell = cells.ConvLSTMCell(filters=2, kernel_size=1)
    cell.build((1, 3, 3, 4))
    wx, bx = rng.normal(size=(4, 8)), rng.normal(size=8)
    wh, bh = rng.normal(size=(2, 8)), rng.normal(size=8)
    cell.conv_x2h.set_weights([wx.reshape(1, 1, 4, 8), bx])
    cell.conv_h2h.set_weights([wh.reshape(1, 1, 2, 8), bh])
    x, h, c = rng.random((1, 3, 3, 4)), rng.random((1, 3, 3, 2)), rng.random((1, 3, 3, 2))

    new_h, (_, new_c), _, _ = cell(x.astype("float32"), (h.astype("float32"), c.astype("float32")))

    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = np.split(x @ wx + bx + h @ wh + bh, 4, axis=-1)
    expected_c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    np.testing.assert_allclose(ops.convert_to_numpy(new_c), expected_c, atol=1e-5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(new_h), sigmoid(o) * np.tanh(expected_c), atol=1e-5
    )


def test_bad_cell_arguments():
    with pytest.raises(ValueError, match="`filters` must be a positive int"):
        cells.ConvLSTMCell(filters=-1)
    with pytest.raises(ValueError, match="`kernel_size` must be a positive odd int"):
        cells.PredRNNCell(filters=4, kernel_size=2)
    with pytest.raises(
        ValueError, match=r"`wiring` must be one of msrnn, openstl. Received: wiring='pt'"
    ):
        cells.PredRNNPPCell(filters=4, wiring="pt")
    with pytest.raises(ValueError, match=r"`wiring` must be one of msrnn, openstl"):
        cells.MIMCell(filters=4, wiring="OpenSTL")
    with pytest.raises(ValueError, match=r"MotionRNNCell has the MS-RNN wiring only"):
        cells.MotionRNNCell(filters=4, wiring="openstl")


def test_preciplstm_needs_filters_input_channels():
    with pytest.raises(ValueError, match="inputs must have filters=6 channels"):
        cells.PrecipLSTMCell(filters=6).build((2, 8, 8, 3))


def test_motionrnn_needs_filters_divisible_by_four():
    with pytest.raises(ValueError, match="filters divisible by 4"):
        cells.MotionRNNCell(filters=6)
