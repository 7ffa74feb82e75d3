"""A PyTorch transcription of the authors' models, for parity at any size.

Written from msrnn_reference.md (sections 2 and 3), in the reference's own
layout (time-major, NCHW) and parameter names, with the 6-layer multi-scale
wiring spelled out as in `models/ms_*.py` rather than derived from `scales`.
`tests/test_parity_any_size.py` first checks it against the authors' goldens,
then compares `keras_msrnn` with it at other sizes. Only the tests use it; it
needs torch, whatever the Keras backend.
"""

import torch
import torch.nn.functional as F
from torch import nn


def _conv(in_channels, out_channels, kernel_size, bias=True):
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


def _lstm_update(memory, i, f, g):
    return torch.sigmoid(f) * memory + torch.sigmoid(i) * torch.tanh(g)


def _zeros(batch, channels, height, width):
    return torch.zeros(batch, channels, height, width)


class Cell(nn.Module):
    """One layer: `forward(x, state, m, x_prev) -> (h, m, state)`."""

    state_size = 2  # tensors of `filters` channels at the layer's scale

    def __init__(self, filters, kernel_size, layer):
        super().__init__()
        self.filters, self.kernel_size, self.layer = filters, kernel_size, layer

    def conv(self, multiple, in_multiple=1):
        return _conv(in_multiple * self.filters, multiple * self.filters, self.kernel_size)

    def initial_state(self, batch, height, width):
        return tuple(_zeros(batch, self.filters, height, width) for _ in range(self.state_size))


class ConvLSTM(Cell):
    def __init__(self, filters, kernel_size, layer):
        super().__init__(filters, kernel_size, layer)
        self._conv_x2h, self._conv_h2h = self.conv(4), self.conv(4)

    def forward(self, x, state, m, x_prev):
        h, c = state
        i, f, g, o = torch.chunk(self._conv_x2h(x) + self._conv_h2h(h), 4, dim=1)
        c = _lstm_update(c, i, f, g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, m, (h, c)


class PredRNN(Cell):
    """ST-LSTM (3.3); also PredRNN-V2's cell (3.7), which keeps its increments."""

    def __init__(self, filters, kernel_size, layer):
        super().__init__(filters, kernel_size, layer)
        self._conv_x2h, self._conv_h2h = self.conv(4), self.conv(4)
        self._conv_x2h_m, self._conv_m2h_m = self.conv(3), self.conv(3)
        self._conv_c2o, self._conv_m2o = self.conv(1), self.conv(1)
        self._conv_c_m = nn.Conv2d(2 * filters, filters, 1)

    def forward(self, x, state, m, x_prev):
        h, c = state
        i, f, g, o = torch.chunk(self._conv_x2h(x) + self._conv_h2h(h), 4, dim=1)
        i_m, f_m, g_m = torch.chunk(self._conv_x2h_m(x) + self._conv_m2h_m(m), 3, dim=1)
        self.increments = (torch.sigmoid(i) * torch.tanh(g), torch.sigmoid(i_m) * torch.tanh(g_m))
        c = _lstm_update(c, i, f, g)
        m = _lstm_update(m, i_m, f_m, g_m)
        o = torch.sigmoid(o + self._conv_c2o(c) + self._conv_m2o(m))
        h = o * torch.tanh(self._conv_c_m(torch.cat([c, m], dim=1)))
        return h, m, (h, c)


class PredRNNPlusPlus(Cell):
    """Causal LSTM, with the Gradient Highway Unit used in layer 1 only (3.4)."""

    state_size = 3

    def __init__(self, filters, kernel_size, layer):
        super().__init__(filters, kernel_size, layer)
        self._conv_x_h_c = self.conv(3, in_multiple=3)
        self._conv_x_c_m = self.conv(3, in_multiple=3)
        self._conv_m = nn.Conv2d(filters, filters, 1)
        self._conv_o = self.conv(1, in_multiple=3)
        self._conv_c_m = nn.Conv2d(2 * filters, filters, 1)
        self._conv_x, self._conv_z = self.conv(2), self.conv(2)

    def forward(self, x, state, m, x_prev):
        h, c, z = state
        if self.layer == 1:
            p, s = torch.chunk(self._conv_x(x) + self._conv_z(z), 2, dim=1)
            s = torch.sigmoid(s)
            z = s * torch.tanh(p) + (1 - s) * z
            x = z
        i, f, g = torch.chunk(self._conv_x_h_c(torch.cat([x, h, c], dim=1)), 3, dim=1)
        c = _lstm_update(c, i, f, g)
        i_m, f_m, g_m = torch.chunk(self._conv_x_c_m(torch.cat([x, c, m], dim=1)), 3, dim=1)
        m = torch.sigmoid(f_m) * torch.tanh(self._conv_m(m)) + torch.sigmoid(i_m) * torch.tanh(g_m)
        o = torch.tanh(self._conv_o(torch.cat([x, c, m], dim=1)))
        h = o * torch.tanh(self._conv_c_m(torch.cat([c, m], dim=1)))
        return h, m, (h, c, z)


class MIM(Cell):
    """MIM-N, MIM-S and the ST-LSTM memory (3.5); layer 0 keeps the LSTM forget path."""

    state_size = 4

    def __init__(self, filters, kernel_size, layer):
        super().__init__(filters, kernel_size, layer)
        self._conv_x2h_n, self._conv_n2h_n = self.conv(3), self.conv(3)
        self._conv_diff2o, self._conv_n2o = self.conv(1), self.conv(1)
        self._conv_x2h_s, self._conv_c2h_s = self.conv(4), self.conv(4)
        self._conv_s2o = self.conv(1)
        self._conv_x2h, self._conv_h2h = self.conv(4), self.conv(4)
        self._conv_c2o = self.conv(1)
        self._conv_x2h_m, self._conv_m2h_m = self.conv(3), self.conv(3)
        self._conv_m2o = self.conv(1)
        self._conv_c_m = nn.Conv2d(2 * filters, filters, 1)

    def forward(self, x, state, m, x_prev):
        h, c, n, s = state
        difference = x - x_prev
        i_n, f_n, g_n = torch.chunk(self._conv_x2h_n(difference) + self._conv_n2h_n(n), 3, dim=1)
        n = _lstm_update(n, i_n, f_n, g_n)
        non_stationary = torch.sigmoid(
            self._conv_diff2o(difference) + self._conv_n2o(n)
        ) * torch.tanh(n)
        i_s, f_s, g_s, o_s = torch.chunk(
            self._conv_x2h_s(non_stationary) + self._conv_c2h_s(c), 4, dim=1
        )
        s = _lstm_update(s, i_s, f_s, g_s)
        stationary = torch.sigmoid(o_s + self._conv_s2o(s)) * torch.tanh(s)
        i, f, g, o = torch.chunk(self._conv_x2h(x) + self._conv_h2h(h), 4, dim=1)
        if self.layer == 0:
            c = _lstm_update(c, i, f, g)
        else:
            c = stationary + torch.sigmoid(i) * torch.tanh(g)
        i_m, f_m, g_m = torch.chunk(self._conv_x2h_m(x) + self._conv_m2h_m(m), 3, dim=1)
        m = _lstm_update(m, i_m, f_m, g_m)
        self.output_gate = torch.sigmoid(o + self._conv_c2o(c) + self._conv_m2o(m))
        h = self.output_gate * torch.tanh(self._conv_c_m(torch.cat([c, m], dim=1)))
        return h, m, (h, c, n, s)


def warp(x, flow):
    """`grid_sample` of x at (x + u, y + v), normalised with (W - 1) as the reference (Q1)."""
    batch, _, height, width = x.shape
    xs = torch.arange(width, dtype=x.dtype).view(1, 1, width).expand(batch, height, width)
    ys = torch.arange(height, dtype=x.dtype).view(1, height, 1).expand(batch, height, width)
    grid_x = 2 * (xs + flow[:, 0]) / (width - 1) - 1
    grid_y = 2 * (ys + flow[:, 1]) / (height - 1) - 1
    grid = torch.stack([grid_x, grid_y], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class TrajGRU(Cell):
    """TrajGRU with L learned warp links (3.2)."""

    state_size = 1

    def __init__(self, filters, kernel_size, layer, links=10):
        super().__init__(filters, kernel_size, layer)
        self.links = links
        self._conv_x2h = self.conv(3)
        self._conv_x2f, self._conv_h2f = self.conv(1), self.conv(1)
        self._conv_flow = _conv(filters, 2 * self.links, kernel_size)
        self.project = nn.Conv2d(self.links * filters, 3 * filters, 1)

    def forward(self, x, state, m, x_prev):
        (h,) = state
        flows = self._conv_flow(F.leaky_relu(self._conv_x2f(x) + self._conv_h2f(h), 0.2))
        warped = torch.cat(
            [warp(h, -flows[:, 2 * link : 2 * link + 2]) for link in range(self.links)], dim=1
        )
        z_h, r_h, candidate_h = torch.chunk(self.project(warped), 3, dim=1)
        z_x, r_x, candidate_x = torch.chunk(self._conv_x2h(x), 3, dim=1)
        z, r = torch.sigmoid(z_x + z_h), torch.sigmoid(r_x + r_h)
        candidate = F.leaky_relu(candidate_x + r * candidate_h, 0.2)
        h = (1 - z) * candidate + z * h
        return h, m, (h,)


class MotionRNN(MIM):
    """MIM, then MotionGRU on the new hidden and the Motion Highway (3.6).

    As the reference with B > 1 too: the flows are split with its
    `reshape(k², B, 2, h, w)` (Q3) and the warps reach the decoder scrambled
    (Q2). Where an odd layer size makes the decoder one row or column short
    (Q5, where the reference fails), it is zero-padded at the bottom and
    right, as keras_msrnn's documented fix.
    """

    state_size = 6
    neighbourhood, alpha = 3, 0.5

    def __init__(self, filters, kernel_size, layer):
        super().__init__(filters, kernel_size, layer)
        small, links = filters // 4, self.neighbourhood**2
        self.motion_highway = True  # the model turns it off in the last layer (Q4)
        self._conv_enc = nn.Conv2d(filters, small, 2, stride=2)
        self._conv_u = nn.Conv2d(small + 2 * links, 2 * links, 1)
        self._conv_r = nn.Conv2d(small + 2 * links, 2 * links, 1)
        self._conv_z = nn.Conv2d(small + 2 * links, 2 * links, 1)
        self._conv_hm = nn.Conv2d(small, links, 1)
        self._conv_dec = nn.Conv2d(small * links, small, 1)
        self._deconv_dec = nn.ConvTranspose2d(small, filters, 4, stride=2, padding=1)
        self._conv_g = nn.Conv2d(2 * filters, filters, 1)

    def initial_state(self, batch, height, width):
        motion = _zeros(batch, 2 * self.neighbourhood**2, height // 2, width // 2)
        return super().initial_state(batch, height, width)[:4] + (motion, motion)

    def forward(self, x, state, m, x_prev):
        *mim_state, motion, trend = state
        hidden, m, mim_state = super().forward(x, tuple(mim_state), m, x_prev)
        encoded = self._conv_enc(hidden)
        both = torch.cat([encoded, motion], dim=1)
        u, r = torch.sigmoid(self._conv_u(both)), torch.sigmoid(self._conv_r(both))
        z = torch.tanh(self._conv_z(torch.cat([encoded, r * motion], dim=1)))
        trend = trend + self.alpha * (motion - trend)
        motion = u * z + (1 - u) * motion + trend
        if self.motion_highway:
            hidden = self._decode(encoded, motion, hidden) + (1 - self.output_gate) * x
        return hidden, m, (hidden, *mim_state[1:], motion, trend)

    def _decode(self, encoded, motion, hidden):
        batch, small, height, width = encoded.shape
        links = self.neighbourhood**2
        flows = motion.reshape(links, batch, 2, height, width)
        mask = torch.sigmoid(self._conv_hm(encoded))
        warped = torch.stack([warp(encoded, flows[j]) for j in range(links)], dim=-1)
        warped = warped * mask.permute(0, 2, 3, 1).unsqueeze(1)
        decoded = self._deconv_dec(
            self._conv_dec(warped.reshape(batch, small * links, height, width))
        )
        decoded = F.pad(
            decoded, (0, hidden.shape[3] - decoded.shape[3], 0, hidden.shape[2] - decoded.shape[2])
        )
        g = torch.sigmoid(self._conv_g(torch.cat([decoded, hidden], dim=1)))
        return g * hidden + (1 - g) * decoded


def local_attention(q, k, v, window):
    """Softmax over the window's offsets -(w//2) .. w-1-w//2, zero padding, no scaling (3.8)."""
    batch, channels, height, width = q.shape
    before = window // 2
    padding = (before, window - 1 - before, before, window - 1 - before)
    keys = F.unfold(F.pad(k, padding), window).view(
        batch, channels, window * window, height * width
    )
    values = F.unfold(F.pad(v, padding), window).view(
        batch, channels, window * window, height * width
    )
    weights = torch.softmax((q.view(batch, channels, 1, -1) * keys).sum(1), dim=1)
    return (weights.unsqueeze(1) * values).sum(2).view(batch, channels, height, width)


class PrecipLSTM(Cell):
    """Local attention on the input, ST-LSTM memory, SLAM and TDM (3.8)."""

    state_size = 4

    def __init__(self, filters, kernel_size, layer, window=30):
        super().__init__(filters, kernel_size, layer)
        self.window = window
        for name, multiple in (
            ("x2h", 4),
            ("h2h", 4),
            ("c2o", 1),
            ("x2h_m", 3),
            ("m2h_m", 3),
            ("m2o", 1),
            ("x2h_ms", 3),
            ("ms2h_ms", 3),
            ("ms2o", 1),
            ("x2h_mt", 3),
            ("mt2h_mt", 3),
            ("mt2o", 1),
        ):
            setattr(self, f"_conv_{name}", self.conv(multiple))
        self.c_m_ms_mt = nn.Conv2d(4 * filters, filters, 1)
        self.LA = nn.Module()
        for name in ("conv1", "conv2", "conv3"):
            setattr(self.LA, name, nn.Conv2d(filters, filters, 1, bias=False))
        self._conv_x_x_att = self.conv(1)

    def forward(self, x, state, m, x_prev):
        h, c, spatial, temporal = state
        attention = local_attention(
            self.LA.conv1(x), self.LA.conv2(x), self.LA.conv3(x), self.window
        )
        attended = x + self._conv_x_x_att(attention)
        i, f, g, o = torch.chunk(self._conv_x2h(attended) + self._conv_h2h(h), 4, dim=1)
        c = _lstm_update(c, i, f, g)
        m = _lstm_update(
            m, *torch.chunk(self._conv_x2h_m(attended) + self._conv_m2h_m(m), 3, dim=1)
        )
        spatial = _lstm_update(
            spatial,
            *torch.chunk(self._conv_x2h_ms(attended) + self._conv_ms2h_ms(spatial), 3, dim=1),
        )
        temporal = _lstm_update(
            temporal,
            *torch.chunk(self._conv_x2h_mt(x - x_prev) + self._conv_mt2h_mt(temporal), 3, dim=1),
        )
        o = torch.sigmoid(
            o
            + self._conv_c2o(c)
            + self._conv_ms2o(spatial)
            + self._conv_mt2o(temporal)
            + self._conv_m2o(m)
        )
        h = o * torch.tanh(self.c_m_ms_mt(torch.cat([c, spatial, temporal, m], dim=1)))
        return h, m, (h, c, spatial, temporal)


CELLS = {
    "convlstm": ConvLSTM,
    "trajgru": TrajGRU,
    "predrnn": PredRNN,
    "predrnn++": PredRNNPlusPlus,
    "mim": MIM,
    "motionrnn": MotionRNN,
    "predrnn_v2": PredRNN,
    "preciplstm": PrecipLSTM,
}
# Which tensor a layer's difference input subtracts (2.5, 2.6).
PREVIOUS_INPUT = {
    "mim": "previous_layer_output",
    "motionrnn": "previous_layer_output",
    "preciplstm": "own_previous_input",
}


def down(x):
    return F.max_pool2d(x, 2, 2)


def up(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


MS_SIZES = (1, 2, 4, 4, 2, 1)


def ms_resample(layer, x):
    """The resampling from layer `layer - 1`'s scale to layer `layer`'s (2.3)."""
    return {1: down, 2: down, 3: lambda t: t, 4: up, 5: up}[layer](x)


class Model(nn.Module):
    def __init__(self, cell, filters, kernel_size, channels, layers, multi_scale, **cell_options):
        super().__init__()
        if multi_scale:
            assert layers == 6, "the reference MS wiring has 6 layers"
        self.cell = cell
        self.multi_scale = multi_scale
        self.filters = filters
        self.embed = nn.Module()
        self.embed.conv_embed = nn.Conv2d(channels, filters, 1)
        self.rnns = nn.Module()
        self.rnns.lstm = nn.ModuleList(
            CELLS[cell](filters, kernel_size, layer, **cell_options) for layer in range(layers)
        )
        if cell == "motionrnn":
            self.rnns.lstm[-1].motion_highway = False
        if cell == "predrnn_v2":
            self.rnns.adapter = nn.Conv2d(filters, filters, 1)
        self.fc = nn.Module()
        self.fc.conv_fc = nn.Conv2d(filters, channels, 1)

    def _resample(self, layer, x):
        return ms_resample(layer, x) if self.multi_scale else x

    def _step(self, x, states, m, previous):
        """One time step through the stack.

        `previous` holds each layer's input and output at t - 1.
        """
        inputs, outputs = [], []
        for layer, cell in enumerate(self.rnns.lstm):
            if layer > 0:
                x = self._resample(layer, outputs[-1])
                m = self._resample(layer, m)
                if self.multi_scale and layer in (4, 5):
                    x = x + outputs[5 - layer]  # UNet skips: 1 -> 4, 0 -> 5
            source = PREVIOUS_INPUT.get(self.cell)
            if source == "own_previous_input":
                x_prev = previous["inputs"][layer]
            elif source == "previous_layer_output" and layer > 0:
                x_prev = self._resample(layer, previous["outputs"][layer - 1])
            else:
                x_prev = torch.zeros_like(x)
            inputs.append(x)
            h, m, states[layer] = cell(x, states[layer], m, x_prev)
            outputs.append(h)
            if self.cell == "predrnn_v2":
                self._decoupling.append(self._decoupling_term(*cell.increments))
        previous["inputs"], previous["outputs"] = inputs, outputs
        return outputs[-1], m

    def _decoupling_term(self, delta_c, delta_m):
        """|cos| between the adapted increments, per sample and channel (3.7)."""
        flat = [F.normalize(self.rnns.adapter(d).flatten(2), dim=2) for d in (delta_c, delta_m)]
        return torch.abs((flat[0] * flat[1]).sum(2))

    def forward(self, frames, input_length, teacher_forcing):
        """frames (S, B, C, H, W) -> predictions (S-1, B, C, H, W); PredRNN-V2's decoupling terms
        (S-1, L, B, C) are left in `self.decoupling`."""
        _, batch, _, height, width = frames.shape
        sizes = MS_SIZES if self.multi_scale else [1] * len(self.rnns.lstm)
        states = [
            cell.initial_state(batch, height // size, width // size)
            for cell, size in zip(self.rnns.lstm, sizes)
        ]
        zeros = [_zeros(batch, self.filters, height // size, width // size) for size in sizes]
        previous = {"inputs": zeros, "outputs": zeros}
        m = _zeros(batch, self.filters, height, width)
        outputs, decoupling = [], []
        for t in range(frames.shape[0] - 1):
            frame = frames[t] if (teacher_forcing or t < input_length) else outputs[-1]
            self._decoupling = []
            h, m = self._step(self.embed.conv_embed(frame), states, m, previous)
            outputs.append(self.fc.conv_fc(h))
            if self._decoupling:
                decoupling.append(torch.stack(self._decoupling))
        self.decoupling = torch.stack(decoupling) if decoupling else None
        return torch.stack(outputs)
