"""MIM: Memory In Memory (Wang et al., 2019)."""

from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import (
    CellOutput,
    RecurrentCell,
    gates,
    lstm_update,
    register_cell,
)

WIRINGS = ("msrnn", "openstl")
# The MS-RNN cell's gate convolutions with their gate counts, in creation order;
# the first seven are the MIM-N and MIM-S blocks, which OpenSTL's first layer
# lacks.
MSRNN_CONVS = {
    "conv_x2h_n": 3,
    "conv_n2h_n": 3,
    "conv_diff2o": 1,
    "conv_n2o": 1,
    "conv_x2h_s": 4,
    "conv_c2h_s": 4,
    "conv_s2o": 1,
    "conv_x2h": 4,
    "conv_h2h": 4,
    "conv_c2o": 1,
    "conv_x2h_m": 3,
    "conv_m2h_m": 3,
    "conv_m2o": 1,
}
MIM_BLOCK_CONVS = tuple(MSRNN_CONVS)[:7]
READS_INPUT = ("conv_x2h_n", "conv_diff2o", "conv_x2h", "conv_x2h_m")
# OpenSTL's MIM blocks (layers above the first): gate convolutions by name and
# gate count; `mimn_*` belong to the non-stationary MIMN, `mims_*` to the
# stationary MIMS, both split i, g, f, o.
OPENSTL_BLOCK_CONVS = {
    "conv_t_cc": 3,
    "conv_s_cc": 4,
    "conv_x_cc": 4,
    "mims_conv_h": 4,
    "mims_conv_x": 4,
    "mimn_conv_h": 4,
    "mimn_conv_x": 4,
}


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

    With `wiring="openstl"` the cell is OpenSTL's MIM
    (`openstl/modules/mim_modules.py`). Its first layer is PredRNN's ST-LSTM;
    above it, with `P(x, h, c)` the peephole LSTM
    `[i, g, f, o] = W * x + W * h`, `c' = σ(f + w_f c)c + σ(i + w_i c)tanh(g)`,
    `h' = σ(o + w_o c')tanh(c')` (elementwise peephole weights `w`):

    - MIMN: `(d, n_c) <- P(δ, d, n_c)`, where `δ = x - x_prev` in the second
      layer and the MIMN output `d` of the layer below in higher layers (the
      stack passes it as `difference_below`); at the first step the MIMN is
      skipped and `d = 0`, as in OpenSTL.
    - MIMS: `(T, s) <- P(d, c, s)`; `c' = T + σ(i_x + i_t)tanh(g_x + g_t)`.
    - `m' = σ(f_x + f_s)m + σ(i_x + i_s)tanh(g_x + g_s)`,
      `o = σ(o_x + o_t + o_s)` with `_t` from `h` and `_s` from the previous
      `m`; `h' = o tanh(W_1x1 * [c', m'])`.

    Args:
        filters: int. Channels of every state and memory.
        kernel_size: int. Size of the gate convolutions. Defaults to 3.
        use_mim: bool. Whether the MIM blocks replace the forget path.
        forget_bias: float. Added to every forget gate before the sigmoid.
            Defaults to 0, as in the MS-RNN code; OpenSTL uses 1.
        wiring: `"msrnn"` (the MS-RNN authors' equations above, the default)
            or `"openstl"`.
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`.
        states: `(h, c, n, s)`, or `(h, c)` with `use_mim=False`; OpenSTL's
            blocks: `(h, c, difference, difference_c, stationary)`.
        memory: the spatiotemporal memory `(batch, height, width, filters)`.
        previous_input: `x_prev`, shaped like `inputs`, or None for zeros
            (None at a stack's first step).
        difference_below: OpenSTL's blocks: the layer below's MIMN output,
            or None where it has none.

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

    def __init__(
        self, filters, kernel_size=3, use_mim=True, forget_bias=0.0, wiring="msrnn", **kwargs
    ):
        super().__init__(filters, kernel_size, **kwargs)
        if wiring not in WIRINGS:
            raise ValueError(
                f"`wiring` must be one of {', '.join(WIRINGS)}. Received: wiring={wiring!r}"
            )
        self.use_mim = bool(use_mim)
        self.forget_bias = float(forget_bias)
        self.wiring = wiring
        self.peepholes = {}
        if self.openstl_block:
            for name, multiple in OPENSTL_BLOCK_CONVS.items():
                setattr(self, name, self.make_conv(multiple * filters, name=name))
            self.conv_c_m = self.make_conv(filters, kernel_size=1, name="conv_c_m")
            return
        st_lstm_only = wiring == "openstl"  # OpenSTL's first layer owns no MIM weights
        for name, multiple in MSRNN_CONVS.items():
            if not (st_lstm_only and name in MIM_BLOCK_CONVS):
                setattr(self, name, self.make_conv(multiple * filters, name=name))
        self.conv_c_m = self.make_conv(filters, kernel_size=1, name="conv_c_m")

    @property
    def openstl_block(self):
        """Whether this is one of OpenSTL's MIM blocks (a layer above the first)."""
        return self.wiring == "openstl" and self.use_mim

    @property
    def takes_difference_below(self):
        return self.openstl_block

    @property
    def state_names(self):
        if self.openstl_block:
            return ("h", "c", "difference", "difference_c", "stationary")
        return ("h", "c", "n", "s") if self.use_mim else ("h", "c")

    @classmethod
    def for_layer(cls, layer_index, num_layers, **config):
        config.setdefault("use_mim", layer_index > 0)
        return cls(**config)

    def build(self, input_shape):
        state_shape = self.state_shape(input_shape)
        self.conv_c_m.build(state_shape[:-1] + (2 * self.filters,))
        if self.openstl_block:
            self.conv_x_cc.build(input_shape)
            for name in OPENSTL_BLOCK_CONVS:
                if name != "conv_x_cc":
                    getattr(self, name).build(state_shape)
            height, width = state_shape[1:3]
            for block in ("mims", "mimn"):
                self.peepholes[block] = tuple(
                    self.add_weight(
                        shape=(height, width, gates * self.filters),
                        initializer="zeros",
                        name=f"{block}_{name}",
                    )
                    for name, gates in (("ct_weight", 2), ("oc_weight", 1))
                )
            return
        for name in MSRNN_CONVS:
            if hasattr(self, name):  # OpenSTL's first layer has no MIM-N/MIM-S weights
                getattr(self, name).build(input_shape if name in READS_INPUT else state_shape)

    def _stationary_memory(self, difference, c, n, s):
        """MIM-N then MIM-S; returns (T, n', s')."""
        i, f, g = gates(self.apply_conv_sum((self.conv_x2h_n, difference), (self.conv_n2h_n, n)), 3)
        n = lstm_update(n, i, f, g)
        non_stationary = ops.sigmoid(
            self.apply_conv_sum((self.conv_diff2o, difference), (self.conv_n2o, n))
        ) * ops.tanh(n)
        i, f, g, o = gates(
            self.apply_conv_sum((self.conv_x2h_s, non_stationary), (self.conv_c2h_s, c)), 4
        )
        s = lstm_update(s, i, f, g)
        return ops.sigmoid(o + self.apply_conv(self.conv_s2o, s)) * ops.tanh(s), n, s

    def mim_block(self, inputs, states, memory, previous_input):
        """The MIM update; returns `(h', states', m', o)` with `o` the output gate."""
        h, c = states[:2]
        i, f, g, o = gates(self.apply_conv_sum((self.conv_x2h, inputs), (self.conv_h2h, h)), 4)
        if self.use_mim:
            difference = inputs if previous_input is None else inputs - previous_input
            transient, n, s = self._stationary_memory(difference, c, *states[2:4])
            new_c = transient + ops.sigmoid(i) * ops.tanh(g)
        else:
            new_c = lstm_update(c, i, f, g, self.forget_bias)
        i_m, f_m, g_m = gates(
            self.apply_conv_sum((self.conv_x2h_m, inputs), (self.conv_m2h_m, memory)), 3
        )
        memory = lstm_update(memory, i_m, f_m, g_m, self.forget_bias)
        o = ops.sigmoid(o + self.apply_conv_sum((self.conv_c2o, new_c), (self.conv_m2o, memory)))
        h = o * ops.tanh(self.apply_conv(self.conv_c_m, ops.concatenate([new_c, memory], axis=-1)))
        new_states = (h, new_c, n, s) if self.use_mim else (h, new_c)
        return h, new_states, memory, o

    def _peephole_lstm(self, block, inputs, h, c):
        """OpenSTL's MIMN/MIMS update `P(x, h, c)`; returns `(h', c')`."""
        i_h, g_h, f_h, o_h = gates(self.apply_conv(getattr(self, f"{block}_conv_h"), h), 4)
        i_x, g_x, f_x, o_x = gates(self.apply_conv(getattr(self, f"{block}_conv_x"), inputs), 4)
        to_gates, to_output = self.peepholes[block]
        i_c, f_c = gates(ops.concatenate([c, c], axis=-1) * to_gates, 2)
        c = lstm_update(c, i_h + i_x + i_c, f_h + f_x + f_c, g_h + g_x, self.forget_bias)
        return ops.sigmoid(o_h + o_x + c * to_output) * ops.tanh(c), c

    def _openstl_block(self, inputs, states, memory, previous_input, difference_below):
        h, c, difference, difference_c, stationary = states
        if previous_input is None:  # OpenSTL discards its first MIMN output
            difference = ops.zeros_like(h)
        else:
            source = inputs - previous_input if difference_below is None else difference_below
            difference, difference_c = self._peephole_lstm("mimn", source, difference, difference_c)
        i_t, g_t, o_t = gates(self.apply_conv(self.conv_t_cc, h), 3)
        i_s, g_s, f_s, o_s = gates(self.apply_conv(self.conv_s_cc, memory), 4)
        i_x, g_x, f_x, o_x = gates(self.apply_conv(self.conv_x_cc, inputs), 4)
        transient, stationary = self._peephole_lstm("mims", difference, c, stationary)
        c = transient + ops.sigmoid(i_x + i_t) * ops.tanh(g_x + g_t)
        memory = lstm_update(memory, i_x + i_s, f_x + f_s, g_x + g_s, self.forget_bias)
        o = ops.sigmoid(o_x + o_t + o_s)
        h = o * ops.tanh(self.apply_conv(self.conv_c_m, ops.concatenate([c, memory], axis=-1)))
        return CellOutput(h, (h, c, difference, difference_c, stationary), memory)

    def call(self, inputs, states, memory=None, previous_input=None, difference_below=None):
        if self.openstl_block:
            return self._openstl_block(inputs, states, memory, previous_input, difference_below)
        h, new_states, memory, _ = self.mim_block(inputs, states, memory, previous_input)
        return CellOutput(h, new_states, memory)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"use_mim": self.use_mim, "forget_bias": self.forget_bias, "wiring": self.wiring}
        )
        return config
