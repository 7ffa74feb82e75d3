"""PredRNN's spatiotemporal LSTM (Wang et al., 2017)."""

from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import (
    CellOutput,
    RecurrentCell,
    gates,
    register_cell,
    shift,
)

# Gate blocks that OpenSTL's layer norm normalizes together: its fused
# convolution of x feeds both of this cell's input convolutions.
NORM_GROUPS = {
    "x": ("conv_x2h", "conv_x2h_m"),
    "h": ("conv_h2h",),
    "m": ("conv_m2h_m",),
    "o": ("conv_o",),
}


@keras_msrnn_export
@register_cell("predrnn")
class PredRNNCell(RecurrentCell):
    """Spatiotemporal LSTM (ST-LSTM), the cell of PredRNN.

    Besides the LSTM state `(h, c)` the cell reads and writes the
    spatiotemporal memory `m`, which flows upwards through the stack within a
    time step and from the top layer back to the bottom layer at the next one:

    - `[i, f, g, o] = W_x * x + W_h * h`; `c' = σ(f + b_f)c + σ(i)tanh(g)`
    - `[i', f', g'] = W'_x * x + W_m * m`; `m' = σ(f' + b_f)m + σ(i')tanh(g')`
    - `o = σ(o + W_co * c' + W_mo * m')`; `h' = o tanh(W_1x1 * [c', m'])`

    Args:
        filters: int. Channels of `h`, `c` and `m`.
        kernel_size: int. Size of the gate convolutions. Defaults to 3.
        forget_bias: float. `b_f`, added to both forget gates before their
            sigmoid. Defaults to 0 as in the MS-RNN code; OpenSTL uses 1.
        layer_norm: bool. OpenSTL's `layer_norm=1`: a layer norm with a full
            per-position affine after the convolutions of `x` (all seven gate
            blocks together), `h`, `m` and of `[c', m']` for `o`. It ties the
            cell to the frame size it was built for. Defaults to False.
        **kwargs: see `keras_msrnn.cells.RecurrentCell` (e.g. `use_bias`).

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`, the layer input.
        states: tuple `(h, c)`, each `(batch, height, width, filters)`.
        memory: tensor `(batch, height, width, filters)`, the spatiotemporal
            memory arriving from the layer below (or from the top layer at
            the previous step).

    Returns:
        `CellOutput(h', (h', c'), m')`.

    Example:

    ```python
    cell = keras_msrnn.cells.PredRNNCell(filters=16)
    x = keras.random.uniform((2, 32, 32, 16))
    states = cell.get_initial_state(2, 32, 32)
    h, states, m, _ = cell(x, states, keras.ops.zeros((2, 32, 32, 16)))
    ```

    Reference:
     - [Wang et al., 2017](https://papers.nips.cc/paper/6689-predrnn)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    @property
    def state_names(self):
        return ("h", "c")

    uses_memory = True

    def __init__(self, filters, kernel_size=3, forget_bias=0.0, layer_norm=False, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.forget_bias = float(forget_bias)
        self.layer_norm = bool(layer_norm)
        self.conv_x2h = self.make_conv(4 * filters, name="conv_x2h")
        self.conv_h2h = self.make_conv(4 * filters, name="conv_h2h")
        self.conv_x2h_m = self.make_conv(3 * filters, name="conv_x2h_m")
        self.conv_m2h_m = self.make_conv(3 * filters, name="conv_m2h_m")
        self.conv_c2o = self.make_conv(filters, name="conv_c2o")
        self.conv_m2o = self.make_conv(filters, name="conv_m2o")
        self.conv_c_m = self.make_conv(filters, kernel_size=1, name="conv_c_m")

    def build(self, input_shape):
        state_shape = self.state_shape(input_shape)
        self.conv_x2h.build(input_shape)
        self.conv_x2h_m.build(input_shape)
        for conv in (self.conv_h2h, self.conv_m2h_m, self.conv_c2o, self.conv_m2o):
            conv.build(state_shape)
        self.conv_c_m.build(state_shape[:-1] + (2 * self.filters,))
        if self.layer_norm:
            blocks = (*NORM_GROUPS["x"], *NORM_GROUPS["h"], *NORM_GROUPS["m"])
            channels = {block: getattr(self, block).filters for block in blocks}
            self.build_layer_norm({**channels, "conv_o": self.filters}, *state_shape[1:3])

    def _input_and_state_gates(self, inputs, h, memory):
        """`W_x * x + W_h * h` and `W_xm * x + W_m * m`.

        Each sum is one convolution over the concatenated sources, except
        with layer norm, which normalises each convolution's output first.
        """
        if not self.norm_weights:
            return (
                self.apply_conv_sum((self.conv_x2h, inputs), (self.conv_h2h, h)),
                self.apply_conv_sum((self.conv_x2h_m, inputs), (self.conv_m2h_m, memory)),
            )
        x_gates, x_memory_gates = self.normalize(
            NORM_GROUPS["x"],
            self.apply_conv(self.conv_x2h, inputs),
            self.apply_conv(self.conv_x2h_m, inputs),
        )
        (h_gates,) = self.normalize(NORM_GROUPS["h"], self.apply_conv(self.conv_h2h, h))
        (m_gates,) = self.normalize(NORM_GROUPS["m"], self.apply_conv(self.conv_m2h_m, memory))
        return x_gates + h_gates, x_memory_gates + m_gates

    def st_lstm(self, inputs, states, memory):
        """One ST-LSTM update; returns `(h', c', m', Δc, Δm)`."""
        h, c = states
        lstm_gates, memory_gates = self._input_and_state_gates(inputs, h, memory)
        i, f, g, o = gates(lstm_gates, 4)
        delta_c = ops.sigmoid(i) * ops.tanh(g)
        c = ops.sigmoid(shift(f, self.forget_bias)) * c + delta_c
        i_m, f_m, g_m = gates(memory_gates, 3)
        delta_m = ops.sigmoid(i_m) * ops.tanh(g_m)
        memory = ops.sigmoid(shift(f_m, self.forget_bias)) * memory + delta_m
        c_and_memory = ops.concatenate([c, memory], axis=-1)
        (o_cm,) = self.normalize(
            NORM_GROUPS["o"],
            self.apply_stacked_conv((self.conv_c2o, self.conv_m2o), c_and_memory),
        )
        o = ops.sigmoid(o + o_cm)
        h = o * ops.tanh(self.apply_conv(self.conv_c_m, c_and_memory))
        return h, c, memory, delta_c, delta_m

    def call(self, inputs, states, memory=None):
        h, c, memory, _, _ = self.st_lstm(inputs, states, memory)
        return CellOutput(h, (h, c), memory)

    def get_config(self):
        config = super().get_config()
        config.update({"forget_bias": self.forget_bias, "layer_norm": self.layer_norm})
        return config


@keras_msrnn_export
@register_cell("predrnn_v2")
class PredRNNV2Cell(PredRNNCell):
    """PredRNN-V2's cell: the ST-LSTM that also returns its memory increments.

    The equations are PredRNN's. The cell returns the increments
    `Δc = σ(i)tanh(g)` and `Δm = σ(i')tanh(g')` as a fourth output, from
    which `MSStack` computes PredRNN-V2's decoupling loss with a shared 1x1
    adapter (`MSStack(decoupling_loss_weight=..., decoupling_reduction=...)`).
    Train it with reverse scheduled sampling
    (`keras_msrnn.models.ReverseSampling` or `EpochReverseSampling`).

    Args:
        filters: int. Channels of `h`, `c` and `m`.
        kernel_size: int. Size of the gate convolutions. Defaults to 3.
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs, states, memory: as `PredRNNCell`.

    Returns:
        `CellOutput(h', (h', c'), m', increments=(Δc, Δm))`.

    Example:

    ```python
    model = keras_msrnn.MSStack(
        cell="predrnn_v2",
        sampling=keras_msrnn.models.ReverseSampling(25000, 50000, 5000))
    ```

    Reference:
     - [Wang et al., PredRNN, TPAMI 2022](https://arxiv.org/abs/2103.09504)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    returns_increments = True

    def call(self, inputs, states, memory=None):
        h, c, memory, delta_c, delta_m = self.st_lstm(inputs, states, memory)
        return CellOutput(h, (h, c), memory, (delta_c, delta_m))
