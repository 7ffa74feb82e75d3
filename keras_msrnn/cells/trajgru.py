"""TrajGRU (Shi et al., 2017)."""

from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.cells.base import CellOutput, RecurrentCell, gates, register_cell
from keras_msrnn.ops.warp import warp
from keras_msrnn.validation import positive_int


def leaky_relu(x):
    return ops.leaky_relu(x, negative_slope=0.2)


@keras_msrnn_export
@register_cell("trajgru")
class TrajGRUCell(RecurrentCell):
    """Trajectory GRU: a convolutional GRU whose recurrence follows learned flows.

    A small network proposes `links` flow fields from the input and the
    hidden state; the hidden state is warped along each of them and the warps
    replace the recurrent convolution of a ConvGRU:

    - `flows = W_flow * leaky_relu(W_xf * x + W_hf * h)`, `2 * links`
      channels, flow `l` being channels `(2l, 2l + 1)` (width, height)
    - `w_l = warp(h, -flow_l)` (the reference negates the flows)
    - `[z_h, r_h, n_h] = P_1x1 * [w_0, ..., w_{L-1}]`;
      `[z_x, r_x, n_x] = W_x * x`
    - `z = σ(z_x + z_h)`, `r = σ(r_x + r_h)`,
      `h~ = leaky_relu(n_x + r h_h)`, `h' = (1 - z) h~ + z h`

    The warp uses the reference's coordinate convention (see
    `keras_msrnn.ops.warp`); all links are warped in one gather.

    Args:
        filters: int. Channels of `h`.
        kernel_size: int. Size of the input and flow convolutions. Defaults to 3.
        links: int. Number of flows `L`. Defaults to 10 (MS-RNN's setting).
        **kwargs: see `keras_msrnn.cells.RecurrentCell`.

    Call arguments:
        inputs: tensor `(batch, height, width, channels)`, at least 2x2.
        states: tuple `(h,)`.
        memory: unused; returned unchanged.

    Returns:
        `CellOutput(h', (h',), memory)`.

    Example:

    ```python
    model = keras_msrnn.MSStack(cell="trajgru", cell_config={"links": 13})
    ```

    Reference:
     - [Shi et al., 2017](https://arxiv.org/abs/1706.03458)
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    @property
    def state_names(self):
        return ("h",)

    def __init__(self, filters, kernel_size=3, links=10, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.links = positive_int("links", links)
        self.conv_x2h = self.make_conv(3 * filters, name="conv_x2h")
        self.conv_x2f = self.make_conv(filters, name="conv_x2f")
        self.conv_h2f = self.make_conv(filters, name="conv_h2f")
        self.conv_flow = self.make_conv(2 * links, name="conv_flow")
        self.project = self.make_conv(3 * filters, kernel_size=1, name="project")

    def build(self, input_shape):
        state_shape = self.state_shape(input_shape)
        self.conv_x2h.build(input_shape)
        self.conv_x2f.build(input_shape)
        self.conv_h2f.build(state_shape)
        self.conv_flow.build(state_shape)
        self.project.build(state_shape[:-1] + (self.links * self.filters,))

    def call(self, inputs, states, memory=None):
        (h,) = states
        flows = self.apply_conv(
            self.conv_flow,
            leaky_relu(self.apply_conv_sum((self.conv_x2f, inputs), (self.conv_h2f, h))),
        )
        height, width = h.shape[1:3]
        flows = ops.reshape(flows, (-1, height, width, self.links, 2))
        warped = warp(h, -flows)  # (B, H, W, links, C): channel l * C + c below
        warped = ops.reshape(warped, (-1, height, width, self.links * self.filters))
        z_h, r_h, n_h = gates(self.apply_conv(self.project, warped), 3)
        z_x, r_x, n_x = gates(self.apply_conv(self.conv_x2h, inputs), 3)
        z = ops.sigmoid(z_x + z_h)
        r = ops.sigmoid(r_x + r_h)
        candidate = leaky_relu(n_x + r * n_h)
        h = (1.0 - z) * candidate + z * h
        return CellOutput(h, (h,), memory)

    def get_config(self):
        config = super().get_config()
        config["links"] = self.links
        return config
