"""MotionRNN (Wu et al., 2021) on the MIM cell, as in the MS-RNN code."""

from keras import layers, ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import CellOutput, register_cell
from keras_msrnn.cells.mim import MIMCell
from keras_msrnn.ops.warp import warp


@keras_msrnn_export
@register_cell("motionrnn")
class MotionRNNCell(MIMCell):
    """MotionRNN: a MIM cell followed by MotionGRU and the Motion Highway.

    MotionGRU works on the MIM block's new hidden state `h_b`, at half its
    resolution and `filters // 4` channels, with a transient motion `F` and
    a motion trend `D` (`2 k**2` channels each, `k = 3`):

    - `H = Conv(k2, s2)(h_b)`; `u, r = σ(W * [H, F])`;
      `F' = u tanh(W * [H, rF]) + (1 - u)F + D'` with `D' = D + α(F - D)`
    - the `k**2` warps `warp(H, F'_j)` weighted by `σ(W * H)`, merged by a
      1x1 convolution and a transposed convolution back to `h_b`'s size
      (`H_dec`), then gated: `X = g h_b + (1 - g) H_dec`, `g = σ(W * [H_dec, h_b])`
    - Motion Highway: `h' = X + (1 - o) x` with the block's output gate `o`;
      in the last layer of a stack `h' = h_b` (the reference computes and
      carries its motion states but discards `X`; this cell skips computing
      the discarded part).

    Reference quirks (`reference_quirks=True` reproduces both):
    - Q2: the reference merges the warps with a reshape that scrambles pixel
      positions into channels before the 1x1 convolution. The default merges
      each pixel's `k**2` warps of every channel, as intended.
    - Q3: the reference reshapes the flows as `(k**2, B, 2, h, w)`, which
      pairs channels per sample only at batch 1. The default pairs channels
      `(2j, 2j + 1)` of each sample, as intended (identical at batch 1).

    Odd sizes (MS-MotionRNN at 124x124 has a 31x31 layer, where the reference
    fails): the stride-2 encoder floors, and `H_dec` is zero-padded at the
    bottom and right back to the layer's size, so any size works.

    Args:
        filters: int. Channels of every MIM state; divisible by 4.
        kernel_size: int. Size of the MIM gate convolutions. Defaults to 3.
        use_mim: bool. As `MIMCell` (False in the first layer of a stack).
        motion_highway: bool. Whether `X` and the highway form the output
            (False in the last layer of a stack, as in the reference).
        neighbourhood: int. `k`, the warp neighbourhood. Defaults to 3.
        alpha: float. Trend update rate. Defaults to 0.5.
        reference_quirks: bool. Reproduce the reference's Q2 and Q3.
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs, memory, previous_input: as `MIMCell`.
        states: the MIM states followed by `(F, D)`, which have `2 k**2`
            channels at half the spatial size (floor).

    Returns:
        `CellOutput(h', states', m')`.

    Example:

    ```python
    model = keras_msrnn.MSStack(cell="motionrnn", filters=64)
    ```

    Reference:
     - [Wu et al., 2021](https://arxiv.org/abs/2103.02243)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        use_mim=True,
        motion_highway=True,
        neighbourhood=3,
        alpha=0.5,
        reference_quirks=False,
        **kwargs,
    ):
        if filters % 4:
            raise ValueError(
                f"MotionRNNCell needs filters divisible by 4. Received: filters={filters}"
            )
        if kwargs.get("wiring", "msrnn") != "msrnn":
            raise ValueError(
                "MotionRNNCell has the MS-RNN wiring only (OpenSTL has no MotionRNN). "
                f"Received: wiring={kwargs['wiring']!r}"
            )
        super().__init__(filters, kernel_size, use_mim=use_mim, **kwargs)
        self.motion_highway = bool(motion_highway)
        self.neighbourhood = neighbourhood
        self.alpha = float(alpha)
        self.reference_quirks = bool(reference_quirks)
        self.motion_filters = filters // 4
        self.motion_channels = 2 * neighbourhood**2
        small = self.motion_filters
        motion = self.motion_channels
        self.conv_enc = self.make_conv(small, 2, strides=2, padding="valid", name="conv_enc")
        self.conv_u = self.make_conv(motion, kernel_size=1, name="conv_u")
        self.conv_r = self.make_conv(motion, kernel_size=1, name="conv_r")
        self.conv_z = self.make_conv(motion, kernel_size=1, name="conv_z")
        self.conv_hm = self.make_conv(neighbourhood**2, kernel_size=1, name="conv_hm")
        self.conv_dec = self.make_conv(small, kernel_size=1, name="conv_dec")
        self.deconv_dec = self.make_conv(
            filters, 4, strides=2, layer=layers.Conv2DTranspose, name="deconv_dec"
        )
        self.conv_g = self.make_conv(filters, kernel_size=1, name="conv_g")

    @property
    def state_names(self):
        return super().state_names + ("motion", "trend")

    @classmethod
    def for_layer(cls, layer_index, num_layers, **config):
        config.setdefault("motion_highway", layer_index < num_layers - 1)
        return super().for_layer(layer_index, num_layers, **config)

    def build(self, input_shape):
        super().build(input_shape)
        batch, height, width = input_shape[:3]
        half = (batch, height // 2, width // 2)
        self.conv_enc.build(self.state_shape(input_shape))
        for conv in (self.conv_u, self.conv_r, self.conv_z):
            conv.build(half + (self.motion_filters + self.motion_channels,))
        self.conv_hm.build(half + (self.motion_filters,))
        self.conv_dec.build(half + (self.motion_filters * self.neighbourhood**2,))
        self.deconv_dec.build(half + (self.motion_filters,))
        self.conv_g.build((batch, height, width, 2 * self.filters))

    def get_initial_state(self, batch_size, height, width):
        mim_states = super().get_initial_state(batch_size, height, width)[:-2]
        motion = ops.zeros(
            (batch_size, height // 2, width // 2, self.motion_channels), dtype=self.compute_dtype
        )
        return (*mim_states, motion, motion)

    def _flows(self, motion):
        """(B, h, w, 2k²) -> (B, h, w, k², 2): the k² displacement fields."""
        _, height, width, channels = motion.shape
        links = channels // 2
        if not self.reference_quirks:
            return ops.reshape(motion, (-1, height, width, links, 2))
        # Q3: reshape of the channels-first flows to (k², B, 2, h, w).
        channels_first = ops.transpose(motion, (0, 3, 1, 2))
        grouped = ops.reshape(channels_first, (links, -1, 2, height, width))
        return ops.transpose(grouped, (1, 3, 4, 0, 2))

    def _merge_warps(self, warped):
        """(B, h, w, k², C4) -> (B, h, w, k² C4) in the decoder's channel order."""
        _, height, width, links, channels = warped.shape
        if not self.reference_quirks:
            return ops.reshape(
                ops.transpose(warped, (0, 1, 2, 4, 3)), (-1, height, width, channels * links)
            )
        # Q2: the reference views its (B, C4, h, w, k²) stack as
        # (B, C4 k², h, w) without permuting, scrambling positions.
        stacked = ops.transpose(warped, (0, 4, 1, 2, 3))
        scrambled = ops.reshape(stacked, (-1, channels * links, height, width))
        return ops.transpose(scrambled, (0, 2, 3, 1))

    def _decode(self, encoded, motion, hidden):
        mask = ops.sigmoid(self.apply_conv(self.conv_hm, encoded))
        warped = warp(encoded, self._flows(motion)) * mask[..., None]
        decoded = self.deconv_dec(self.apply_conv(self.conv_dec, self._merge_warps(warped)))
        pad_rows = hidden.shape[1] - decoded.shape[1]
        pad_cols = hidden.shape[2] - decoded.shape[2]
        if pad_rows or pad_cols:  # odd layer sizes: the encoder floored
            decoded = ops.pad(decoded, [[0, 0], [0, pad_rows], [0, pad_cols], [0, 0]])
        g = ops.sigmoid(self.apply_conv(self.conv_g, ops.concatenate([decoded, hidden], axis=-1)))
        return g * hidden + (1.0 - g) * decoded

    def call(self, inputs, states, memory=None, previous_input=None):
        *mim_states, motion, trend = states
        hidden, mim_states, memory, output_gate = self.mim_block(
            inputs, mim_states, memory, previous_input
        )
        encoded = self.conv_enc(hidden)
        both = ops.concatenate([encoded, motion], axis=-1)
        u = ops.sigmoid(self.apply_conv(self.conv_u, both))
        r = ops.sigmoid(self.apply_conv(self.conv_r, both))
        z = ops.tanh(self.apply_conv(self.conv_z, ops.concatenate([encoded, r * motion], axis=-1)))
        new_trend = trend + self.alpha * (motion - trend)
        new_motion = u * z + (1.0 - u) * motion + new_trend
        if self.motion_highway:
            hidden = self._decode(encoded, new_motion, hidden) + (1.0 - output_gate) * inputs
        return CellOutput(hidden, (hidden, *mim_states[1:], new_motion, new_trend), memory)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "motion_highway": self.motion_highway,
                "neighbourhood": self.neighbourhood,
                "alpha": self.alpha,
                "reference_quirks": self.reference_quirks,
            }
        )
        return config
