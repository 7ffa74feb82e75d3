"""MIM: Memory In Memory (Wang et al., 2019)."""

from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import CellOutput, RecurrentCell, gates, lstm_update, register_cell


@keras_msrnn_export
@register_cell("mim")
class MIMCell(RecurrentCell):
    """Memory In Memory cell: ST-LSTM whose forget path is two cascaded LSTMs.

    The cell reads the difference `δ = x - x_prev` between its input and the
    previous step's output of the layer below (`x_prev`, resampled to this
    layer's scale in a multi-scale stack; zeros in the first layer and at the
    first step). With `n`, `s` the states of the two blocks:

    - MIM-N: `[i, f, g] = W * δ + W * n`; `n' = σ(f)n + σ(i)tanh(g)`;
      `D = σ(W * δ + W * n') tanh(n')`
    - MIM-S: `[i, f, g, o] = W * D + W * c` (the previous `c`);
      `s' = σ(f)s + σ(i)tanh(g)`; `T = σ(o + W * s') tanh(s')`
    - `[i, f, g, o] = W_x * x + W_h * h`; `c' = T + σ(i)tanh(g)`
    - `m'`, `o` and `h'` as in PredRNN's ST-LSTM.

    With `use_mim=False` (the first layer of a stack, as in the reference) the
    cell uses the plain forget path `c' = σ(f)c + σ(i)tanh(g)`. The reference
    still computes and carries that layer's MIM blocks although nothing reads
    them; this cell owns their weights, so parameter counts match, but skips
    the computation, which changes no output.

    Args:
        filters: int. Channels of every state and memory.
        kernel_size: int. Size of the gate convolutions. Defaults to 3.
        use_mim: bool. Whether the MIM blocks replace the forget path.
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`.
        states: `(h, c, n, s)`, or `(h, c)` with `use_mim=False`.
        memory: the spatiotemporal memory `(batch, height, width, filters)`.
        previous_input: `x_prev`, shaped like `inputs`, or None for zeros.

    Returns:
        `CellOutput(h', states', m')`.

    Example:

    ```python
    model = keras_msrnn.MSStack(cell="mim", filters=64)
    ```

    Reference:
     - [Wang et al., 2019](https://arxiv.org/abs/1811.07490)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    uses_memory = True
    takes_previous_input = True

    def __init__(self, filters, kernel_size=3, use_mim=True, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.use_mim = bool(use_mim)
        for name, multiple in (
            ("conv_x2h_n", 3),
            ("conv_n2h_n", 3),
            ("conv_diff2o", 1),
            ("conv_n2o", 1),
            ("conv_x2h_s", 4),
            ("conv_c2h_s", 4),
            ("conv_s2o", 1),
            ("conv_x2h", 4),
            ("conv_h2h", 4),
            ("conv_c2o", 1),
            ("conv_x2h_m", 3),
            ("conv_m2h_m", 3),
            ("conv_m2o", 1),
        ):
            setattr(self, name, self.make_conv(multiple * filters, name=name))
        self.conv_c_m = self.make_conv(filters, kernel_size=1, name="conv_c_m")

    @property
    def state_names(self):
        return ("h", "c", "n", "s") if self.use_mim else ("h", "c")

    @classmethod
    def for_layer(cls, layer_index, num_layers, **config):
        config.setdefault("use_mim", layer_index > 0)
        return cls(**config)

    def build(self, input_shape):
        state_shape = self.state_shape(input_shape)
        for conv in (self.conv_x2h_n, self.conv_diff2o, self.conv_x2h, self.conv_x2h_m):
            conv.build(input_shape)
        for conv in (
            self.conv_n2h_n,
            self.conv_n2o,
            self.conv_x2h_s,
            self.conv_c2h_s,
            self.conv_s2o,
            self.conv_h2h,
            self.conv_c2o,
            self.conv_m2h_m,
            self.conv_m2o,
        ):
            conv.build(state_shape)
        self.conv_c_m.build(state_shape[:-1] + (2 * self.filters,))

    def _stationary_memory(self, difference, c, n, s):
        """MIM-N then MIM-S; returns (T, n', s')."""
        i, f, g = gates(
            self.apply_conv(self.conv_x2h_n, difference) + self.apply_conv(self.conv_n2h_n, n), 3
        )
        n = lstm_update(n, i, f, g)
        non_stationary = ops.sigmoid(
            self.apply_conv(self.conv_diff2o, difference) + self.apply_conv(self.conv_n2o, n)
        ) * ops.tanh(n)
        i, f, g, o = gates(
            self.apply_conv(self.conv_x2h_s, non_stationary) + self.apply_conv(self.conv_c2h_s, c),
            4,
        )
        s = lstm_update(s, i, f, g)
        return ops.sigmoid(o + self.apply_conv(self.conv_s2o, s)) * ops.tanh(s), n, s

    def mim_block(self, inputs, states, memory, previous_input):
        """The MIM update; returns `(h', states', m', o)` with `o` the output gate."""
        h, c = states[:2]
        i, f, g, o = gates(
            self.apply_conv(self.conv_x2h, inputs) + self.apply_conv(self.conv_h2h, h), 4
        )
        if self.use_mim:
            difference = inputs if previous_input is None else inputs - previous_input
            transient, n, s = self._stationary_memory(difference, c, *states[2:4])
            new_c = transient + ops.sigmoid(i) * ops.tanh(g)
        else:
            new_c = lstm_update(c, i, f, g)
        i_m, f_m, g_m = gates(
            self.apply_conv(self.conv_x2h_m, inputs) + self.apply_conv(self.conv_m2h_m, memory), 3
        )
        memory = lstm_update(memory, i_m, f_m, g_m)
        o = ops.sigmoid(
            o + self.apply_conv(self.conv_c2o, new_c) + self.apply_conv(self.conv_m2o, memory)
        )
        h = o * ops.tanh(self.apply_conv(self.conv_c_m, ops.concatenate([new_c, memory], axis=-1)))
        new_states = (h, new_c, n, s) if self.use_mim else (h, new_c)
        return h, new_states, memory, o

    def call(self, inputs, states, memory=None, previous_input=None):
        h, new_states, memory, _ = self.mim_block(inputs, states, memory, previous_input)
        return CellOutput(h, new_states, memory)

    def get_config(self):
        config = super().get_config()
        config["use_mim"] = self.use_mim
        return config
