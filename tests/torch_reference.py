"""A PyTorch transcription of the authors' models, for parity at any size.

Written from msrnn_reference.md, in the reference's own layout (time-major,
NCHW) and parameter names, with the 6-layer multi-scale wiring spelled out
as in `models/ms_*.py` rather than derived from `scales`. Only the tests use
it; it needs torch, whatever the Keras backend.
"""

import torch
import torch.nn.functional as F
from torch import nn


class ConvLSTM(nn.Module):
    def __init__(self, filters, kernel_size):
        super().__init__()
        pad = kernel_size // 2
        self._conv_x2h = nn.Conv2d(filters, 4 * filters, kernel_size, padding=pad)
        self._conv_h2h = nn.Conv2d(filters, 4 * filters, kernel_size, padding=pad)

    def forward(self, x, state, m):
        h, c = state
        i, f, g, o = torch.chunk(self._conv_x2h(x) + self._conv_h2h(h), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, m, (h, c)


class PredRNN(nn.Module):
    def __init__(self, filters, kernel_size):
        super().__init__()
        pad = kernel_size // 2
        conv = lambda out: nn.Conv2d(filters, out * filters, kernel_size, padding=pad)  # noqa: E731
        self._conv_x2h, self._conv_h2h = conv(4), conv(4)
        self._conv_x2h_m, self._conv_m2h_m = conv(3), conv(3)
        self._conv_c2o, self._conv_m2o = conv(1), conv(1)
        self._conv_c_m = nn.Conv2d(2 * filters, filters, 1)

    def forward(self, x, state, m):
        h, c = state
        i, f, g, o = torch.chunk(self._conv_x2h(x) + self._conv_h2h(h), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        i_m, f_m, g_m = torch.chunk(self._conv_x2h_m(x) + self._conv_m2h_m(m), 3, dim=1)
        m = torch.sigmoid(f_m) * m + torch.sigmoid(i_m) * torch.tanh(g_m)
        o = torch.sigmoid(o + self._conv_c2o(c) + self._conv_m2o(m))
        h = o * torch.tanh(self._conv_c_m(torch.cat([c, m], dim=1)))
        return h, m, (h, c)


CELLS = {"convlstm": ConvLSTM, "predrnn": PredRNN}


def down(x):
    return F.max_pool2d(x, 2, 2)


def up(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Model(nn.Module):
    def __init__(self, cell, filters, kernel_size, channels, layers, multi_scale):
        super().__init__()
        if multi_scale:
            assert layers == 6, "the reference MS wiring has 6 layers"
        self.multi_scale = multi_scale
        self.filters = filters
        self.embed = nn.Module()
        self.embed.conv_embed = nn.Conv2d(channels, filters, 1)
        self.rnns = nn.Module()
        self.rnns.lstm = nn.ModuleList(CELLS[cell](filters, kernel_size) for _ in range(layers))
        self.fc = nn.Module()
        self.fc.conv_fc = nn.Conv2d(filters, channels, 1)

    def _plain_step(self, x, states, m):
        for layer, cell in enumerate(self.rnns.lstm):
            x, m, states[layer] = cell(x, states[layer], m)
        return x, m

    def _ms_step(self, x, states, m):
        cells = self.rnns.lstm
        h0, m, states[0] = cells[0](x, states[0], m)
        h1, m, states[1] = cells[1](down(h0), states[1], down(m))
        h2, m, states[2] = cells[2](down(h1), states[2], down(m))
        h3, m, states[3] = cells[3](h2, states[3], m)
        h4, m, states[4] = cells[4](up(h3) + h1, states[4], up(m))
        h5, m, states[5] = cells[5](up(h4) + h0, states[5], up(m))
        return h5, m

    def forward(self, frames, input_length, teacher_forcing):
        """frames (S, B, C, H, W) -> predictions (S-1, B, C, H, W)."""
        _, batch, _, height, width = frames.shape
        sizes = [1, 2, 4, 4, 2, 1] if self.multi_scale else [1] * len(self.rnns.lstm)
        states = []
        for size in sizes:
            zeros = torch.zeros(batch, self.filters, height // size, width // size)
            states.append((zeros, zeros))
        m = torch.zeros(batch, self.filters, height, width)
        step = self._ms_step if self.multi_scale else self._plain_step
        outputs = []
        for t in range(frames.shape[0] - 1):
            frame = frames[t] if (teacher_forcing or t < input_length) else outputs[-1]
            h, m = step(self.embed.conv_embed(frame), states, m)
            outputs.append(self.fc.conv_fc(h))
        return torch.stack(outputs)
