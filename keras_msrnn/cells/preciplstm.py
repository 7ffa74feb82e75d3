"""PrecipLSTM (Ma et al., 2022): local attention and two extra memories."""

import keras
from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.backend.conv import conv2d_same
from keras_msrnn.cells.base import CellOutput, RecurrentCell, gates, lstm_update, register_cell
from keras_msrnn.ops.local_attention import local_attention
from keras_msrnn.validation import positive_int


@keras_msrnn_export
class LocalAttention(keras.layers.Layer):
    """Windowed self-attention over each pixel's neighbourhood.

    Bias-free 1x1 projections give queries, keys and values; each pixel then
    attends to the `window x window` pixels around it (see
    `keras_msrnn.ops.local_attention` for the exact offsets and padding).

    Args:
        filters: int. Channels of the projections and of the output.
        window: int. Width of the neighbourhood. Defaults to 30.
        **kwargs: arguments of `keras.layers.Layer`.

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`.

    Example:

    ```python
    attention = keras_msrnn.cells.LocalAttention(filters=16, window=9)
    y = attention(keras.random.uniform((2, 32, 32, 16)))
    ```

    Reference:
     - [Ma et al., PrecipLSTM, IEEE TGRS 2022](https://doi.org/10.1109/TGRS.2022.3213493)
    """

    def __init__(self, filters, window=30, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.window = window
        projection = dict(kernel_size=1, use_bias=False, dtype=self.dtype_policy)
        self.query = keras.layers.Conv2D(filters, name="query", **projection)
        self.key = keras.layers.Conv2D(filters, name="key", **projection)
        self.value = keras.layers.Conv2D(filters, name="value", **projection)

    def build(self, input_shape):
        for projection in (self.query, self.key, self.value):
            projection.build(input_shape)

    def call(self, inputs):
        return local_attention(
            *(conv2d_same(inputs, layer.kernel) for layer in (self.query, self.key, self.value)),
            self.window,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "window": self.window})
        return config


@keras_msrnn_export
@register_cell("preciplstm")
class PrecipLSTMCell(RecurrentCell):
    """PrecipLSTM's cell: ST-LSTM with local attention and SLAM and TDM memories.

    - `x_att = x + W_att * LA(x)` (windowed local attention)
    - LSTM: `[i, f, g, o] = W_x * x_att + W_h * h`; `c' = σ(f)c + σ(i)tanh(g)`
    - spatiotemporal memory `m` (zigzag, as PredRNN) from `x_att`
    - spatial local-attention memory `ms` from `x_att`
    - temporal-difference memory `mt` from `x - x_prev`, where `x_prev` is
      the input this layer received at the previous step (zeros at first);
      it is kept as the last recurrent state
    - `O = σ(o + W_co * c' + W_so * ms' + W_to * mt' + W_mo * m')`;
      `h' = O tanh(W_1x1 * [c', ms', mt', m'])`

    Args:
        filters: int. Channels of every state and memory.
        kernel_size: int. Size of the gate convolutions. Defaults to 3.
        window: int. Local-attention window. Defaults to 30 (MS-RNN's `la_num`).
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs: tensor `(batch, height, width, filters)`.
        states: `(h, c, ms, mt, x_prev)`, all with `filters` channels.
        memory: the spatiotemporal memory `(batch, height, width, filters)`.

    Returns:
        `CellOutput(h', states', m')`.

    Example:

    ```python
    model = keras_msrnn.MSStack(cell="preciplstm", cell_config={"window": 30})
    ```

    Reference:
     - [Ma et al., PrecipLSTM, IEEE TGRS 2022](https://doi.org/10.1109/TGRS.2022.3213493)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    @property
    def state_names(self):
        return ("h", "c", "ms", "mt", "x_prev")

    uses_memory = True
    reference_aliases = {
        "LA.conv1": "local_attention.query",
        "LA.conv2": "local_attention.key",
        "LA.conv3": "local_attention.value",
    }

    def __init__(self, filters, kernel_size=3, window=30, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.window = positive_int("window", window)
        self.local_attention = LocalAttention(
            filters, window, dtype=self.dtype_policy, name="local_attention"
        )
        self.conv_x_x_att = self.make_conv(filters, name="conv_x_x_att")
        for name, multiple in (
            ("conv_x2h", 4),
            ("conv_h2h", 4),
            ("conv_c2o", 1),
            ("conv_x2h_m", 3),
            ("conv_m2h_m", 3),
            ("conv_m2o", 1),
            ("conv_x2h_ms", 3),
            ("conv_ms2h_ms", 3),
            ("conv_ms2o", 1),
            ("conv_x2h_mt", 3),
            ("conv_mt2h_mt", 3),
            ("conv_mt2o", 1),
        ):
            setattr(self, name, self.make_conv(multiple * filters, name=name))
        self.c_m_ms_mt = self.make_conv(filters, kernel_size=1, name="c_m_ms_mt")

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise ValueError(
                "PrecipLSTMCell adds its attended input back to the input, so inputs "
                f"must have filters={self.filters} channels. Received input shape "
                f"{tuple(input_shape)}."
            )
        state_shape = self.state_shape(input_shape)
        self.local_attention.build(input_shape)
        self.conv_x_x_att.build(state_shape)
        for conv in (self.conv_x2h, self.conv_x2h_m, self.conv_x2h_ms, self.conv_x2h_mt):
            conv.build(input_shape if conv is self.conv_x2h_mt else state_shape)
        for conv in (
            self.conv_h2h,
            self.conv_c2o,
            self.conv_m2h_m,
            self.conv_m2o,
            self.conv_ms2h_ms,
            self.conv_ms2o,
            self.conv_mt2h_mt,
            self.conv_mt2o,
        ):
            conv.build(state_shape)
        self.c_m_ms_mt.build(state_shape[:-1] + (4 * self.filters,))

    def call(self, inputs, states, memory=None):
        h, c, spatial, temporal, previous_input = states
        attended = inputs + self.apply_conv(self.conv_x_x_att, self.local_attention(inputs))
        i, f, g, o = gates(self.apply_conv_sum((self.conv_x2h, attended), (self.conv_h2h, h)), 4)
        c = lstm_update(c, i, f, g)
        memory = self._memory_update(memory, self.conv_x2h_m, attended, self.conv_m2h_m)
        spatial = self._memory_update(spatial, self.conv_x2h_ms, attended, self.conv_ms2h_ms)
        temporal = self._memory_update(
            temporal, self.conv_x2h_mt, inputs - previous_input, self.conv_mt2h_mt
        )
        memories = ops.concatenate([c, spatial, temporal, memory], axis=-1)
        o = ops.sigmoid(
            o
            + self.apply_stacked_conv(
                (self.conv_c2o, self.conv_ms2o, self.conv_mt2o, self.conv_m2o), memories
            )
        )
        h = o * ops.tanh(self.apply_conv(self.c_m_ms_mt, memories))
        return CellOutput(h, (h, c, spatial, temporal, inputs), memory)

    def _memory_update(self, memory, input_conv, inputs, memory_conv):
        """An LSTM update of one of the memories from its input and itself."""
        fused_gates = self.apply_conv_sum((input_conv, inputs), (memory_conv, memory))
        return lstm_update(memory, *gates(fused_gates, 3))

    def get_config(self):
        config = super().get_config()
        config["window"] = self.window
        return config
