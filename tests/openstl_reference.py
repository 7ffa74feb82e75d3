"""A PyTorch transcription of OpenSTL's recurrent models, for import tests at any size.

Written from the "Math to note for an importer" section of
`../shared/reference/openstl/README.md`, with OpenSTL's module layout and
state_dict keys (`cell_list.{i}.conv_x.0.weight`, LayerNorm at `.1`, the
model's `conv_last`, PredRNN++'s `gradient_highway`). It runs OpenSTL's test
loop on patched frames `(batch, time, H/p, W/p, p*p*C)` and returns
`next_frames` in that layout. `tests/test_openstl.py` first holds it to the
goldens of OpenSTL's own code, then compares imported models with it at other
sizes. Only the tests use it; it needs torch, whatever the Keras backend.
"""

import torch
from torch import nn


def _gate_conv(in_channels, gates, filters, kernel_size, grid, layer_norm):
    """`conv_*`: a bias-free convolution, then OpenSTL's LayerNorm over gates and space."""
    layers = [
        nn.Conv2d(in_channels, gates * filters, kernel_size, padding=kernel_size // 2, bias=False)
    ]
    if layer_norm:
        layers.append(nn.LayerNorm([gates * filters, *grid]))
    return nn.Sequential(*layers)


def _pointwise(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, 1, bias=False)


class ConvLSTMCell(nn.Module):
    def __init__(self, in_channels, filters, kernel_size, grid, layer_norm):
        super().__init__()
        self.conv_x = _gate_conv(in_channels, 4, filters, kernel_size, grid, layer_norm)
        self.conv_h = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)
        # Stored by OpenSTL, never used by its forward.
        self.conv_o = _gate_conv(2 * filters, 1, filters, kernel_size, grid, layer_norm)
        self.conv_last = _pointwise(2 * filters, filters)

    def forward(self, x, h, c, memory):
        i_x, f_x, g_x, o_x = torch.split(self.conv_x(x), h.shape[1], dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), h.shape[1], dim=1)
        c = torch.sigmoid(f_x + f_h) * c + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        h = torch.sigmoid(o_x + o_h) * torch.tanh(c)
        return h, c, memory


class SpatioTemporalLSTMCell(nn.Module):
    """PredRNN's (and PredRNN-V2's, at test time) cell."""

    def __init__(self, in_channels, filters, kernel_size, grid, layer_norm):
        super().__init__()
        self.conv_x = _gate_conv(in_channels, 7, filters, kernel_size, grid, layer_norm)
        self.conv_h = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)
        self.conv_m = _gate_conv(filters, 3, filters, kernel_size, grid, layer_norm)
        self.conv_o = _gate_conv(2 * filters, 1, filters, kernel_size, grid, layer_norm)
        self.conv_last = _pointwise(2 * filters, filters)

    def forward(self, x, h, c, memory):
        filters = h.shape[1]
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), filters, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), filters, dim=1)
        i_m, f_m, g_m = torch.split(self.conv_m(memory), filters, dim=1)
        c = torch.sigmoid(f_x + f_h + 1.0) * c + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        memory = torch.sigmoid(f_xp + f_m + 1.0) * memory + torch.sigmoid(i_xp + i_m) * torch.tanh(
            g_xp + g_m
        )
        both = torch.cat([c, memory], dim=1)
        o = torch.sigmoid(o_x + o_h + self.conv_o(both))
        return o * torch.tanh(self.conv_last(both)), c, memory


class CausalLSTMCell(nn.Module):
    """PredRNN++'s cell, with OpenSTL's gate orders and tanh output gate."""

    def __init__(self, in_channels, filters, kernel_size, grid, layer_norm):
        super().__init__()
        self.conv_x = _gate_conv(in_channels, 7, filters, kernel_size, grid, layer_norm)
        self.conv_h = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)
        self.conv_c = _gate_conv(filters, 3, filters, kernel_size, grid, layer_norm)
        self.conv_m = _gate_conv(filters, 3, filters, kernel_size, grid, layer_norm)
        self.conv_o = _gate_conv(2 * filters, 1, filters, kernel_size, grid, layer_norm)  # unused
        self.conv_c2m = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)
        self.conv_om = _gate_conv(filters, 1, filters, kernel_size, grid, layer_norm)
        self.conv_last = _pointwise(2 * filters, filters)

    def forward(self, x, h, c, memory):
        filters = h.shape[1]
        i_x, f_x, g_x, i_xp, f_xp, g_xp, o_x = torch.split(self.conv_x(x), filters, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), filters, dim=1)
        i_c, f_c, g_c = torch.split(self.conv_c(c), filters, dim=1)
        i_m, f_m, m_m = torch.split(self.conv_m(memory), filters, dim=1)
        c = torch.sigmoid(f_x + f_h + f_c + 1.0) * c + torch.sigmoid(i_x + i_h + i_c) * torch.tanh(
            g_x + g_h + g_c
        )
        i_cm, g_cm, f_cm, o_c = torch.split(self.conv_c2m(c), filters, dim=1)
        memory = torch.sigmoid(f_xp + f_m + f_cm + 1.0) * torch.tanh(m_m) + torch.sigmoid(
            i_xp + i_m + i_cm
        ) * torch.tanh(g_xp + g_cm)
        o = torch.tanh(o_x + o_h + o_c + self.conv_om(memory))
        return o * torch.tanh(self.conv_last(torch.cat([c, memory], dim=1))), c, memory


class GHU(nn.Module):
    """PredRNN++'s gradient highway between layers 0 and 1."""

    def __init__(self, filters, kernel_size, grid):
        super().__init__()
        self.x_concat = _gate_conv(filters, 2, filters, kernel_size, grid, False)
        self.z_concat = _gate_conv(filters, 2, filters, kernel_size, grid, False)

    def forward(self, x, z):
        p, u = torch.split(self.x_concat(x) + self.z_concat(z), z.shape[1], dim=1)
        u = torch.sigmoid(u)
        return u * torch.tanh(p) + (1 - u) * z


class PeepholeLSTM(nn.Module):
    """MIM's MIMN (and the MIMS inside each MIMBlock): gates from x and h, peepholes on c.

    `forward(x, h, c) -> (h', c')`; both gate convolutions split i, g, f, o.
    """

    def __init__(self, filters, kernel_size, grid, layer_norm):
        super().__init__()
        self.ct_weight = nn.Parameter(torch.zeros(2 * filters, *grid))
        self.oc_weight = nn.Parameter(torch.zeros(filters, *grid))
        self.conv_h_concat = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)
        self.conv_x_concat = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)

    def forward(self, x, h, c):
        filters = h.shape[1]
        i_h, g_h, f_h, o_h = torch.split(self.conv_h_concat(h), filters, dim=1)
        i_c, f_c = torch.split(torch.cat([c, c], dim=1) * self.ct_weight, filters, dim=1)
        i_x, g_x, f_x, o_x = torch.split(self.conv_x_concat(x), filters, dim=1)
        c = torch.sigmoid(f_h + f_c + f_x + 1.0) * c + torch.sigmoid(i_h + i_c + i_x) * torch.tanh(
            g_h + g_x
        )
        return torch.sigmoid(o_h + o_x + c * self.oc_weight) * torch.tanh(c), c


class MIMN(PeepholeLSTM):
    def __init__(self, filters, kernel_size, grid, layer_norm):
        super().__init__(filters, kernel_size, grid, layer_norm)
        self.conv_last = _pointwise(2 * filters, filters)  # stored, never used


class MIMBlock(PeepholeLSTM):
    """A MIM layer above the first: its own convolutions, and the MIMS's (inherited)."""

    def __init__(self, in_channels, filters, kernel_size, grid, layer_norm):
        super().__init__(filters, kernel_size, grid, layer_norm)
        self.conv_t_cc = _gate_conv(filters, 3, filters, kernel_size, grid, layer_norm)
        self.conv_s_cc = _gate_conv(filters, 4, filters, kernel_size, grid, layer_norm)
        self.conv_x_cc = _gate_conv(in_channels, 4, filters, kernel_size, grid, layer_norm)
        self.conv_last = _pointwise(2 * filters, filters)

    def forward(self, x, difference, h, c, memory, stationary):
        """Returns `(h', c', m', stationary')`; `stationary` is the MIMS's own cell state."""
        filters = h.shape[1]
        i_t, g_t, o_t = torch.split(self.conv_t_cc(h), filters, dim=1)
        i_s, g_s, f_s, o_s = torch.split(self.conv_s_cc(memory), filters, dim=1)
        i_x, g_x, f_x, o_x = torch.split(self.conv_x_cc(x), filters, dim=1)
        memory = torch.sigmoid(f_x + f_s + 1.0) * memory + torch.sigmoid(i_x + i_s) * torch.tanh(
            g_x + g_s
        )
        c, stationary = super().forward(difference, c, stationary)
        c = c + torch.sigmoid(i_x + i_t) * torch.tanh(g_x + g_t)
        o = torch.sigmoid(o_x + o_t + o_s)
        return o * torch.tanh(self.conv_last(torch.cat([c, memory], dim=1))), c, memory, stationary


class MIMModel(nn.Module):
    """OpenSTL's MIM: an ST-LSTM first layer, then MIMBlocks fed by a chain of MIMNs."""

    def __init__(self, num_hidden, filter_size, patch_channels, grid, layer_norm=False):
        super().__init__()
        self.num_hidden = list(num_hidden)
        self.stlstm_layer = nn.ModuleList(
            [SpatioTemporalLSTMCell(patch_channels, num_hidden[0], filter_size, grid, layer_norm)]
            + [
                MIMBlock(num_hidden[i - 1], num_hidden[i], filter_size, grid, layer_norm)
                for i in range(1, len(num_hidden))
            ]
        )
        self.stlstm_layer_diff = nn.ModuleList(
            MIMN(width, filter_size, grid, layer_norm) for width in num_hidden[1:]
        )
        self.conv_last = _pointwise(num_hidden[-1], patch_channels)

    def forward(self, frames, pre_seq_length):
        frames = frames.permute(0, 1, 4, 2, 3)
        batch, steps, _, height, width = frames.shape

        def zeros():
            return [torch.zeros(batch, w, height, width) for w in self.num_hidden]

        h, c, stationary, diff_h, diff_c = zeros(), zeros(), zeros(), zeros(), zeros()
        memory = torch.zeros(batch, self.num_hidden[0], height, width)
        outputs, x_gen = [], None
        for t in range(steps - 1):
            net = frames[:, t] if t < pre_seq_length else x_gen
            previous_h0 = h[0]
            h[0], c[0], memory = self.stlstm_layer[0](net, h[0], c[0], memory)
            for i in range(1, len(self.num_hidden)):
                # At t = 0 OpenSTL runs the MIMN on zeros and discards the result.
                if t > 0:
                    source = h[0] - previous_h0 if i == 1 else diff_h[i - 2]
                    diff_h[i - 1], diff_c[i - 1] = self.stlstm_layer_diff[i - 1](
                        source, diff_h[i - 1], diff_c[i - 1]
                    )
                h[i], c[i], memory, stationary[i] = self.stlstm_layer[i](
                    h[i - 1], diff_h[i - 1], h[i], c[i], memory, stationary[i]
                )
            x_gen = self.conv_last(h[-1])
            outputs.append(x_gen)
        return torch.stack(outputs, dim=1).permute(0, 1, 3, 4, 2)


CELLS = {
    "convlstm": ConvLSTMCell,
    "predrnn": SpatioTemporalLSTMCell,
    "predrnnv2": SpatioTemporalLSTMCell,
    "predrnnpp": CausalLSTMCell,
}


def build(method, num_hidden, filter_size, patch_channels, grid, layer_norm=False):
    """OpenSTL's recurrent model for `method` (lower case, e.g. "predrnnpp")."""
    if method == "mim":
        return MIMModel(num_hidden, filter_size, patch_channels, grid, layer_norm)
    return Model(method, num_hidden, filter_size, patch_channels, grid, layer_norm)


class Model(nn.Module):
    """OpenSTL's recurrent model for `method`, run as its test loop (no scheduled sampling)."""

    def __init__(self, method, num_hidden, filter_size, patch_channels, grid, layer_norm=False):
        super().__init__()
        self.method, self.num_hidden = method, list(num_hidden)
        cell = CELLS[method]
        self.cell_list = nn.ModuleList(
            cell(
                patch_channels if index == 0 else num_hidden[index - 1],
                width,
                filter_size,
                grid,
                layer_norm,
            )
            for index, width in enumerate(num_hidden)
        )
        if method == "predrnnpp":
            self.gradient_highway = GHU(num_hidden[0], filter_size, grid)
        if method == "predrnnv2":
            self.adapter = _pointwise(num_hidden[0], num_hidden[0])
        self.conv_last = _pointwise(num_hidden[-1], patch_channels)

    def forward(self, frames, pre_seq_length):
        """`next_frames` for patched `frames` `(batch, time, H/p, W/p, p*p*C)`."""
        frames = frames.permute(0, 1, 4, 2, 3)
        batch, steps, _, height, width = frames.shape
        h = [torch.zeros(batch, w, height, width) for w in self.num_hidden]
        c = [torch.zeros(batch, w, height, width) for w in self.num_hidden]
        memory = torch.zeros(batch, self.num_hidden[0], height, width)
        z = torch.zeros(batch, self.num_hidden[0], height, width)
        outputs, x_gen = [], None
        for t in range(steps - 1):
            net = frames[:, t] if t < pre_seq_length else x_gen
            h[0], c[0], memory = self.cell_list[0](net, h[0], c[0], memory)
            below = h[0]
            if self.method == "predrnnpp":
                z = self.gradient_highway(h[0], z)
                below = z
            for index in range(1, len(self.cell_list)):
                h[index], c[index], memory = self.cell_list[index](
                    below, h[index], c[index], memory
                )
                below = h[index]
            x_gen = self.conv_last(below)
            outputs.append(x_gen)
        return torch.stack(outputs, dim=1).permute(0, 1, 3, 4, 2)
