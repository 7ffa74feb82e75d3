"""PredRNN++: the Causal LSTM with a Gradient Highway Unit (Wang et al., 2018)."""

from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import CellOutput, RecurrentCell, gates, register_cell, shift

GRADIENT_HIGHWAY_LAYER = 1
WIRINGS = ("msrnn", "openstl")


@keras_msrnn_export
@register_cell("predrnn++")
class PredRNNPPCell(RecurrentCell):
    """Causal LSTM, the cell of PredRNN++, with an optional Gradient Highway Unit.

    The Causal LSTM cascades the temporal memory `c` into the spatiotemporal
    memory `m`:

    - `[i, f, g] = W_1 * [x, h, c]`; `c' = σ(f)c + σ(i)tanh(g)`
    - `[i', f', g'] = W_2 * [x, c', m]`;
      `m' = σ(f')tanh(W_m1x1 * m) + σ(i')tanh(g')`
    - `o = tanh(W_3 * [x, c', m'])` (tanh, and `h` is not used, as in the
      reference); `h' = o tanh(W_1x1 * [c', m'])`

    In the layer with `gradient_highway=True` (the second layer of a stack,
    as in the reference) the Gradient Highway Unit runs first and replaces the
    input: `[p, s] = W_xz * x + W_zz * z`, `z' = σ(s)tanh(p) + (1 - σ(s))z`,
    `x <- z'`; `z` is then one more recurrent state. Every layer owns the two
    GHU convolutions, as in the reference, so parameter counts match even
    though only one layer uses them.

    With `wiring="openstl"` the cell is OpenSTL's transcription
    (`openstl/modules/predrnnpp_modules.py`), which wires three gates
    differently: the candidate `g'` does not read `m`
    (`[i', f', g'] = W_2 * [x, c'] + [W_m * m, W_m * m, 0]`); the memory term
    is `tanh(W_m * m)` with a `kernel_size` convolution that also gives the
    `m` part of `i'` and `f'`; and the output gate also reads the previous
    `h`: `o = tanh(W_3 * [x, h, c', m'])`. Only the highway layer owns GHU
    convolutions, as in OpenSTL.

    Args:
        filters: int. Channels of `h`, `c`, `m` and `z`.
        kernel_size: int. Size of the gate convolutions. Defaults to 3.
        gradient_highway: bool. Whether this layer runs the GHU.
        forget_bias: float. Added to both forget gates (`f`, `f'`) before
            the sigmoid. Defaults to 0, as in the MS-RNN code; OpenSTL uses 1.
        wiring: `"msrnn"` (the MS-RNN authors' equations above, the default)
            or `"openstl"`.
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`.
        states: tuple `(h, c)`, or `(h, c, z)` with the gradient highway.
        memory: the spatiotemporal memory `(batch, height, width, filters)`.

    Returns:
        `CellOutput(h', states', m')`.

    Example:

    ```python
    model = keras_msrnn.MSStack(cell="predrnn++", filters=64)
    ```

    Reference:
     - [Wang et al., 2018](https://arxiv.org/abs/1804.06300)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    uses_memory = True

    def __init__(
        self,
        filters,
        kernel_size=3,
        gradient_highway=False,
        forget_bias=0.0,
        wiring="msrnn",
        **kwargs,
    ):
        super().__init__(filters, kernel_size, **kwargs)
        if wiring not in WIRINGS:
            raise ValueError(
                f"`wiring` must be one of {', '.join(WIRINGS)}. Received: wiring={wiring!r}"
            )
        self.gradient_highway = bool(gradient_highway)
        self.forget_bias = float(forget_bias)
        self.wiring = wiring
        self.owns_highway = self.gradient_highway or wiring == "msrnn"
        if self.owns_highway:
            self.conv_x = self.make_conv(2 * filters, name="conv_x")
            self.conv_z = self.make_conv(2 * filters, name="conv_z")
        self.conv_x_h_c = self.make_conv(3 * filters, name="conv_x_h_c")
        if wiring == "openstl":
            self.conv_x_c_m = self.make_conv(3 * filters, name="conv_x_c_m")
            self.conv_m = self.make_conv(3 * filters, name="conv_m")
        else:
            self.conv_x_c_m = self.make_conv(3 * filters, name="conv_x_c_m")
            self.conv_m = self.make_conv(filters, kernel_size=1, name="conv_m")
        self.conv_o = self.make_conv(filters, name="conv_o")
        self.conv_c_m = self.make_conv(filters, kernel_size=1, name="conv_c_m")

    @property
    def state_names(self):
        return ("h", "c", "z") if self.gradient_highway else ("h", "c")

    @classmethod
    def for_layer(cls, layer_index, num_layers, **config):
        config.setdefault("gradient_highway", layer_index == GRADIENT_HIGHWAY_LAYER)
        return cls(**config)

    def build(self, input_shape):
        state_shape = self.state_shape(input_shape)
        if self.owns_highway:
            self.conv_x.build(input_shape)
            self.conv_z.build(state_shape)
        # The highway's output replaces the input.
        channels = self.filters if self.gradient_highway else input_shape[-1]

        def with_states(count):
            return state_shape[:-1] + (channels + count * self.filters,)

        openstl = self.wiring == "openstl"
        self.conv_x_h_c.build(with_states(2))
        self.conv_x_c_m.build(with_states(1 if openstl else 2))
        self.conv_o.build(with_states(3 if openstl else 2))
        self.conv_m.build(state_shape)
        self.conv_c_m.build(state_shape[:-1] + (2 * self.filters,))

    def call(self, inputs, states, memory=None):
        h, c = states[:2]
        if self.gradient_highway:
            p, s = gates(self.apply_conv_sum((self.conv_x, inputs), (self.conv_z, states[2])), 2)
            s = ops.sigmoid(s)
            z = s * ops.tanh(p) + (1.0 - s) * states[2]
            inputs = z
        i, f, g = gates(
            self.apply_conv(self.conv_x_h_c, ops.concatenate([inputs, h, c], axis=-1)), 3
        )
        c = ops.sigmoid(shift(f, self.forget_bias)) * c + ops.sigmoid(i) * ops.tanh(g)
        if self.wiring == "openstl":
            i_m, f_m, g_m = gates(
                self.apply_conv(self.conv_x_c_m, ops.concatenate([inputs, c], axis=-1)), 3
            )
            i_mm, f_mm, memory_term = gates(self.apply_conv(self.conv_m, memory), 3)
            i_m, f_m = i_m + i_mm, f_m + f_mm
            output_gate_inputs = [inputs, h, c]
        else:
            i_m, f_m, g_m = gates(
                self.apply_conv(self.conv_x_c_m, ops.concatenate([inputs, c, memory], axis=-1)), 3
            )
            memory_term = self.apply_conv(self.conv_m, memory)
            output_gate_inputs = [inputs, c]
        memory = ops.sigmoid(shift(f_m, self.forget_bias)) * ops.tanh(memory_term) + ops.sigmoid(
            i_m
        ) * ops.tanh(g_m)
        o = ops.tanh(
            self.apply_conv(self.conv_o, ops.concatenate([*output_gate_inputs, memory], axis=-1))
        )
        h = o * ops.tanh(self.apply_conv(self.conv_c_m, ops.concatenate([c, memory], axis=-1)))
        new_states = (h, c, z) if self.gradient_highway else (h, c)
        return CellOutput(h, new_states, memory)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "gradient_highway": self.gradient_highway,
                "forget_bias": self.forget_bias,
                "wiring": self.wiring,
            }
        )
        return config
