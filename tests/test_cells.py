import numpy as np
import pytest
from keras import ops

from keras_msrnn import cells

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


@pytest.mark.parametrize("cell_class", CELL_CLASSES)
def test_config_round_trip(cell_class):
    cell = cell_class(filters=8, kernel_size=5, name="c")
    restored = cell_class.from_config(cell.get_config())
    assert restored.get_config() == cell.get_config()


@pytest.mark.parametrize(
    "cell_class, options",
    [(cell_class, {}) for cell_class in CELL_CLASSES] + [(cells.PredRNNPPCell, {"gradient_highway": True})],
)
def test_one_step_on_its_own(cell_class, options):
    cell = cell_class(filters=8, **options)
    x = np.random.default_rng(0).random((2, 8, 12, 8), "float32")
    states = cell.get_initial_state(2, 8, 12)
    memory = ops.ones((2, 8, 12, 8)) if cell.uses_memory else None

    h, new_states, new_memory, *increments = cell(x, states, memory)

    assert tuple(h.shape) == (2, 8, 12, 8)
    assert [tuple(s.shape) for s in new_states] == [tuple(s.shape) for s in states]
    assert tuple(new_states[0].shape) == (2, 8, 12, 8)
    np.testing.assert_array_equal(ops.convert_to_numpy(new_states[0]), ops.convert_to_numpy(h))
    if cell.returns_increments:
        assert [tuple(d.shape) for d in increments[0]] == [(2, 8, 12, 8)] * 2
    else:
        assert increments == []
    if cell.uses_memory:
        assert tuple(new_memory.shape) == (2, 8, 12, 8)
    else:
        assert new_memory is None


def test_convlstm_equations_with_1x1_kernels():
    rng = np.random.default_rng(1)
    cell = cells.ConvLSTMCell(filters=2, kernel_size=1)
    cell.build((1, 3, 3, 4))
    wx, bx = rng.normal(size=(4, 8)), rng.normal(size=8)
    wh, bh = rng.normal(size=(2, 8)), rng.normal(size=8)
    cell.conv_x2h.set_weights([wx.reshape(1, 1, 4, 8), bx])
    cell.conv_h2h.set_weights([wh.reshape(1, 1, 2, 8), bh])
    x, h, c = rng.random((1, 3, 3, 4)), rng.random((1, 3, 3, 2)), rng.random((1, 3, 3, 2))

    new_h, (_, new_c), _ = cell(x.astype("float32"), (h.astype("float32"), c.astype("float32")))

    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = np.split(x @ wx + bx + h @ wh + bh, 4, axis=-1)
    expected_c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    np.testing.assert_allclose(ops.convert_to_numpy(new_c), expected_c, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(new_h), sigmoid(o) * np.tanh(expected_c), atol=1e-5)


def test_bad_cell_arguments():
    with pytest.raises(ValueError, match="`filters` must be a positive int"):
        cells.ConvLSTMCell(filters=-1)
    with pytest.raises(ValueError, match="`kernel_size` must be a positive odd int"):
        cells.PredRNNCell(filters=4, kernel_size=2)


def test_preciplstm_needs_filters_input_channels():
    with pytest.raises(ValueError, match="inputs must have filters=6 channels"):
        cells.PrecipLSTMCell(filters=6).build((2, 8, 8, 3))


def test_motionrnn_needs_filters_divisible_by_four():
    with pytest.raises(ValueError, match="filters divisible by 4"):
        cells.MotionRNNCell(filters=6)
