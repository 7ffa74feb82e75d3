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


CELLS = {
    "convlstm": ConvLSTMCell,
    "predrnn": SpatioTemporalLSTMCell,
    "predrnnv2": SpatioTemporalLSTMCell,
    "predrnnpp": CausalLSTMCell,
}


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
