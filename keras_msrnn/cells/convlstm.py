"""ConvLSTM (Shi et al., 2015)."""

from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import (
    CellOutput,
    RecurrentCell,
    gates,
    lstm_update,
    register_cell,
)


@keras_msrnn_export
@register_cell("convlstm")
class ConvLSTMCell(RecurrentCell):
    """Convolutional LSTM cell without peepholes, as in the MS-RNN code.

    `[i, f, g, o] = W_x * x + W_h * h`, `c' = σ(f)c + σ(i)tanh(g)`,
    `h' = σ(o)tanh(c')`. Both gate convolutions carry a bias, so the
    parameter count equals the reference's.

    Args:
        filters: int. Channels of `h` and `c`.
        kernel_size: int. Size of both gate convolutions. Defaults to 3.
        forget_bias: float. Added to the forget gate before its sigmoid.
            Defaults to 0, as in the MS-RNN and OpenSTL code.
        layer_norm: bool. OpenSTL's `layer_norm=1`: a layer norm over all
            gates and space, with an elementwise affine, after each of the
            two gate convolutions. Defaults to False.
        **kwargs: see `keras_msrnn.cells.RecurrentCell` (e.g. `use_bias`).

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`, the layer input.
        states: tuple `(h, c)`, each `(batch, height, width, filters)`.
        memory: unused; returned unchanged.

    Returns:
        `CellOutput(h', (h', c'), memory)`.

    Example:

    ```python
    cell = keras_msrnn.cells.ConvLSTMCell(filters=16)
    x = keras.random.uniform((2, 32, 32, 8))
    h, states, _, _ = cell(x, cell.get_initial_state(2, 32, 32))
    ```

    Reference:
     - [Shi et al., 2015](https://arxiv.org/abs/1506.04214)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    @property
    def state_names(self):
        return ("h", "c")

    def __init__(self, filters, kernel_size=3, forget_bias=0.0, layer_norm=False, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.forget_bias = float(forget_bias)
        self.layer_norm = bool(layer_norm)
        self.conv_x2h = self.make_conv(4 * filters, name="conv_x2h")
        self.conv_h2h = self.make_conv(4 * filters, name="conv_h2h")

    def build(self, input_shape):
        state_shape = self.state_shape(input_shape)
        self.conv_x2h.build(input_shape)
        self.conv_h2h.build(state_shape)
        if self.layer_norm:
            blocks = {"conv_x2h": 4 * self.filters, "conv_h2h": 4 * self.filters}
            self.build_layer_norm(blocks, *state_shape[1:3])

    def call(self, inputs, states, memory=None):
        h, c = states
        i, f, g, o = gates(self._gate_sum(inputs, h), 4)
        c = lstm_update(c, i, f, g, self.forget_bias)
        h = ops.sigmoid(o) * ops.tanh(c)
        return CellOutput(h, (h, c), memory)

    def _gate_sum(self, inputs, h):
        """`W_x * x + W_h * h`: one convolution over `[x, h]`, except with layer norm."""
        if not self.layer_norm:
            return self.apply_conv_sum((self.conv_x2h, inputs), (self.conv_h2h, h))
        (x_gates,) = self.normalize(["conv_x2h"], self.apply_conv(self.conv_x2h, inputs))
        (h_gates,) = self.normalize(["conv_h2h"], self.apply_conv(self.conv_h2h, h))
        return x_gates + h_gates

    def get_config(self):
        return {
            **super().get_config(),
            "forget_bias": self.forget_bias,
            "layer_norm": self.layer_norm,
        }
