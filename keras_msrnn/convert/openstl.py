"""Import of OpenSTL checkpoints (github.com/chengtan9907/OpenSTL).

OpenSTL's recurrent models are this library's cells with OpenSTL's choices
switched on: no convolution biases, frames fed to the first layer without an
embedding, a forget bias of 1 in PredRNN's two forget gates. The import maps
each OpenSTL tensor onto the matching convolution of a plain `MSStack`
(PredRNN's fused `conv_x` is split by gate into the cell's two input
convolutions, its `conv_o` over `[c, M]` into the `c` and `M` halves), so the
imported model forecasts, trains, saves and publishes like any other.

Importable today: all five of OpenSTL's recurrent models with this library's
cells. MIM with `layer_norm=0`, ConvLSTM, PredRNN and PredRNN-V2 with or
without `layer_norm`, PredRNN++ (OpenSTL runs it only with `layer_norm=0`).
ConvLSTM takes layers of different widths, as in OpenSTL. MIM with
`layer_norm=1` raises an error that says so.
"""

import ast
import os
from typing import NamedTuple

import numpy as np

from keras_msrnn.models.ms_stack import MSStack

# OpenSTL `method` (lower case) -> this library's cell.
METHODS = {
    "convlstm": "convlstm",
    "predrnn": "predrnn",
    "predrnnv2": "predrnn_v2",
    "predrnnpp": "predrnn++",
    "mim": "mim",
}
IMPORTABLE = ("convlstm", "predrnn", "predrnnv2", "predrnnpp", "mim")
# Tensors OpenSTL stores but its forward pass never reads (its README, "Math
# to note"): ConvLSTM cells' conv_o (with its LayerNorm) and conv_last,
# PredRNN++ cells' conv_o.
UNUSED = {
    "convlstm": ("conv_o.0.weight", "conv_o.1.weight", "conv_o.1.bias", "conv_last.weight"),
    "predrnnpp": ("conv_o.0.weight",),
}
# PredRNN's fused conv_x holds the gates i, f, g, i', f', g', o; the cell's
# conv_x2h takes i, f, g, o and conv_x2h_m takes i', f', g'.
PREDRNN_X_GATES = {"conv_x2h": (0, 1, 2, 6), "conv_x2h_m": (3, 4, 5)}
CONFIG_KEYS = ("method", "in_shape", "pre_seq_length", "aft_seq_length", "num_hidden")
# OpenSTL's method config files leave the frame size and sequence lengths to
# the data set (`dataname`); these are its defaults (openstl/utils/parser.py).
DATASETS = {
    "mmnist": {"in_shape": [10, 1, 64, 64], "pre_seq_length": 10, "aft_seq_length": 10},
    "taxibj": {"in_shape": [4, 2, 32, 32], "pre_seq_length": 4, "aft_seq_length": 4},
    "kth": {"in_shape": [10, 1, 128, 128], "pre_seq_length": 10, "aft_seq_length": 20},
    "kth20": {"in_shape": [10, 1, 128, 128], "pre_seq_length": 10, "aft_seq_length": 20},
    "kth40": {"in_shape": [10, 1, 128, 128], "pre_seq_length": 10, "aft_seq_length": 40},
}


def read_config(config, **overrides):
    """OpenSTL hyperparameters from a dict or a config `.py` file.

    A file is parsed, never executed: only module-level assignments of
    literals (numbers, strings, lists, ...) are read; any other assignment is
    ignored. Where `dataname` is given (in the config or `overrides`), the
    data set's `in_shape` and sequence lengths fill what the config lacks, as
    in OpenSTL.

    Args:
        config: dict with OpenSTL's names, or the path of a config `.py`.
        **overrides: settings that replace the config's, e.g.
            `dataname="mmnist"`.

    Returns:
        dict.
    """
    values = {**_config_values(config), **overrides}
    dataname = values.get("dataname")
    if dataname is not None:
        if dataname not in DATASETS:
            raise ValueError(
                f"Unknown OpenSTL dataname {dataname!r}; known: {', '.join(DATASETS)} (or give "
                "in_shape, pre_seq_length and aft_seq_length)."
            )
        values = {**DATASETS[dataname], **values}
    return values


def _config_values(config):
    if isinstance(config, dict):
        return dict(config)
    path = os.fspath(config)
    try:
        with open(path) as file:
            tree = ast.parse(file.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"Cannot read the OpenSTL config {path}: {error}") from None
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue  # an expression: never evaluated
    return values


def read_weights(weights):
    """OpenSTL's state_dict as `{key: float32 array}`.

    Args:
        weights: a mapping of state_dict keys to arrays or tensors, or the
            path of a `.pth` (a bare state_dict or one under `state_dict`)
            or a Lightning `.ckpt` (keys prefixed `model.`).
    """
    if not hasattr(weights, "items"):
        weights = _load_torch_file(os.fspath(weights))
    if "state_dict" in weights and hasattr(weights["state_dict"], "items"):
        weights = weights["state_dict"]
    state = {str(key): _to_numpy(value) for key, value in weights.items()}
    if state and all(key.startswith("model.") for key in state):
        state = {key[len("model.") :]: value for key, value in state.items()}
    return state


def _load_torch_file(path):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading {path} needs PyTorch (pip install torch); or pass the state_dict as "
            "a dict of numpy arrays."
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"Cannot read the OpenSTL checkpoint {path}: {error}") from None


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype="float32")


def _num_hidden(config):
    """OpenSTL's `num_hidden` as a list of per-layer widths."""
    value = config["num_hidden"]
    return [int(w) for w in value.split(",")] if isinstance(value, str) else list(value)


def _method(config):
    method = str(config["method"]).lower().replace("_", "").replace("-", "")
    if method not in METHODS:
        raise ValueError(
            f"OpenSTL method {config['method']!r} is not one of this library's cells; "
            f"known: {', '.join(METHODS)}."
        )
    if method not in IMPORTABLE:
        raise ValueError(
            f"Importing OpenSTL's {config['method']} is not supported yet; importable: "
            "ConvLSTM, PredRNN, PredRNNpp, PredRNNv2, MIM."
        )
    if int(config.get("layer_norm", 0)) and method == "mim":
        raise ValueError(
            f"Importing OpenSTL's {config['method']} with layer_norm=1 is not supported yet."
        )
    if int(config.get("layer_norm", 0)) and method == "predrnnpp":
        raise ValueError(
            "OpenSTL's PredRNNpp does not run with layer_norm=1 (its gradient highway's "
            "LayerNorm has half the channels of its convolution), so no such checkpoint exists."
        )
    widths = _num_hidden(config)
    if len(set(widths)) > 1 and method != "convlstm":
        raise ValueError(
            f"num_hidden={config['num_hidden']!r}: OpenSTL's {config['method']} passes its "
            "memory through every layer and runs only with equal widths (it fails on "
            "unequal ones), so no such checkpoint exists."
        )
    if method == "predrnnpp" and len(widths) < 2:
        raise ValueError(
            "OpenSTL's PredRNNpp needs at least 2 layers (its gradient highway sits between "
            f"layers 0 and 1). Received: num_hidden={config['num_hidden']!r}"
        )
    if int(config.get("stride", 1)) != 1:
        raise ValueError(f"OpenSTL's stride must be 1. Received: stride={config['stride']!r}")
    return method


def _cell_config(method, config):
    """The cell options that give OpenSTL's equations."""
    if method == "convlstm":
        return {"layer_norm": bool(int(config.get("layer_norm", 0)))}
    if method in ("predrnnpp", "mim"):
        return {"forget_bias": 1.0, "wiring": "openstl"}
    return {"forget_bias": 1.0, "layer_norm": bool(int(config.get("layer_norm", 0)))}


def build_model(config):
    """The (unbuilt-weights) `MSStack` with OpenSTL's architecture for `config`."""
    config = read_config(config)
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise ValueError(f"The OpenSTL config lacks {', '.join(missing)}.")
    method = _method(config)
    widths = _num_hidden(config)
    _, channels, height, width = (int(v) for v in config["in_shape"])
    cell = METHODS[method]
    input_length, output_length = int(config["pre_seq_length"]), int(config["aft_seq_length"])
    # OpenSTL trains on the mean squared error over all T - 1 predictions (+
    # beta * decoupling): as a loss on the forecast plus add_loss terms that
    # is the objective times (T - 1) / aft_seq_length.
    steps = input_length + output_length - 1
    model = MSStack(
        cell=cell,
        filters=widths,
        scales=(1,) * len(widths),
        kernel_size=int(config.get("filter_size", 3)),
        input_length=input_length,
        output_length=output_length,
        patch_size=int(config.get("patch_size", 1)),
        sampling="free_running",
        loss="mse",
        reconstruction_loss_weight=(input_length - 1) / output_length,
        decoupling_loss_weight=float(config.get("decouple_beta", 0.1)) * steps / output_length,
        decoupling_reduction="mean",
        use_bias=False,
        embed_inputs=False,
        cell_config=_cell_config(method, config),
    )
    model.build((None, model.input_length, height, width, channels))
    return model


class Part(NamedTuple):
    """A block of one OpenSTL tensor: output gates `gates` of `count`, inputs `inputs`."""

    key: str
    gates: tuple | None = None
    count: int = 1
    inputs: slice = slice(None)

    def of(self, state):
        tensor = state[self.key]
        if self.gates is not None:
            blocks = np.split(tensor, self.count, axis=0)
            tensor = np.concatenate([blocks[g] for g in self.gates], axis=0)
        return tensor[:, self.inputs]


class Slot(NamedTuple):
    """A Keras variable and the OpenSTL blocks it is made of.

    A kernel's parts are stacked along the input channels, in the order the
    cell concatenates its convolution's inputs; a spatial weight (LayerNorm
    affine, MIM peephole) has one.
    """

    variable: object
    parts: tuple
    kind: str = "kernel"

    def value(self, state):
        blocks = [part.of(state) for part in self.parts]
        if self.kind == "spatial":  # (channels, H, W) -> (H, W, channels)
            return np.transpose(blocks[0], (1, 2, 0))
        # (out, in, kh, kw) -> Keras (kh, kw, in, out)
        return np.transpose(np.concatenate(blocks, axis=1), (2, 3, 1, 0))


def _convlstm_slots(cell, prefix, filters):
    slots = []
    for source, block in (("conv_x", "conv_x2h"), ("conv_h", "conv_h2h")):
        slots.append(Slot(getattr(cell, block).kernel, (Part(f"{prefix}{source}.0.weight"),)))
        if cell.layer_norm:
            for index, kind in enumerate(("weight", "bias")):
                part = Part(f"{prefix}{source}.1.{kind}")
                slots.append(Slot(cell.norm_weights[block][index], (part,), "spatial"))
    return slots


def _predrnn_slots(cell, prefix, filters):
    # conv_o reads [c, M]: its input channels split into the c and M halves.
    slots = [
        Slot(cell.conv_h2h.kernel, (Part(prefix + "conv_h.0.weight"),)),
        Slot(cell.conv_m2h_m.kernel, (Part(prefix + "conv_m.0.weight"),)),
        Slot(cell.conv_c2o.kernel, (Part(prefix + "conv_o.0.weight", inputs=slice(filters)),)),
        Slot(
            cell.conv_m2o.kernel,
            (Part(prefix + "conv_o.0.weight", inputs=slice(filters, None)),),
        ),
        Slot(cell.conv_c_m.kernel, (Part(prefix + "conv_last.weight"),)),
    ]
    for name, gates in PREDRNN_X_GATES.items():
        slots.append(
            Slot(getattr(cell, name).kernel, (Part(prefix + "conv_x.0.weight", gates, 7),))
        )
    if getattr(cell, "layer_norm", False):  # MIM's first layer has no layer norm option
        for index, kind in enumerate(("weight", "bias")):
            for name, gates in PREDRNN_X_GATES.items():
                part = Part(f"{prefix}conv_x.1.{kind}", gates, 7)
                slots.append(Slot(cell.norm_weights[name][index], (part,), "spatial"))
            for source, block in (
                ("conv_h", "conv_h2h"),
                ("conv_m", "conv_m2h_m"),
                ("conv_o", "conv_o"),
            ):
                part = Part(f"{prefix}{source}.1.{kind}")
                slots.append(Slot(cell.norm_weights[block][index], (part,), "spatial"))
    return slots


def _predrnn_pp_slots(cell, prefix, filters):
    """OpenSTL's Causal LSTM onto `PredRNNPPCell(wiring="openstl")`.

    OpenSTL sums one convolution per source (x, h, c, c', M, M'); the cell
    convolves their concatenation, so each of its kernels stacks OpenSTL's
    gate rows along the input channels. conv_x holds the gates
    i, f, g, i', f', g', o; conv_h i, f, g, o; conv_c i, f, g; conv_c2m
    i', g', f', o (its own order); conv_m i', f' and the memory term.
    """
    x, h, c2m = (
        prefix + name for name in ("conv_x.0.weight", "conv_h.0.weight", "conv_c2m.0.weight")
    )
    slots = [
        Slot(
            cell.conv_x_h_c.kernel,
            (Part(x, (0, 1, 2), 7), Part(h, (0, 1, 2), 4), Part(prefix + "conv_c.0.weight")),
        ),
        Slot(cell.conv_x_c_m.kernel, (Part(x, (3, 4, 5), 7), Part(c2m, (0, 2, 1), 4))),
        Slot(cell.conv_m.kernel, (Part(prefix + "conv_m.0.weight"),)),
        Slot(
            cell.conv_o.kernel,
            (
                Part(x, (6,), 7),
                Part(h, (3,), 4),
                Part(c2m, (3,), 4),
                Part(prefix + "conv_om.0.weight"),
            ),
        ),
        Slot(cell.conv_c_m.kernel, (Part(prefix + "conv_last.weight"),)),
    ]
    if cell.gradient_highway:
        slots.append(Slot(cell.conv_x.kernel, (Part("gradient_highway.x_concat.0.weight"),)))
        slots.append(Slot(cell.conv_z.kernel, (Part("gradient_highway.z_concat.0.weight"),)))
    return slots


def _mim_slots(cell, prefix, filters):
    """OpenSTL's MIM onto `MIMCell(wiring="openstl")`: layer 0 is PredRNN's cell.

    A block's MIMN lives apart in OpenSTL (`stlstm_layer_diff.{i-1}`); this
    library's block owns it.
    """
    if not cell.use_mim:
        return _predrnn_slots(cell, prefix, filters)
    layer = int(prefix.split(".")[1])
    slots = [
        Slot(getattr(cell, name).kernel, (Part(f"{prefix}{name}.0.weight"),))
        for name in ("conv_t_cc", "conv_s_cc", "conv_x_cc")
    ]
    slots.append(Slot(cell.conv_c_m.kernel, (Part(prefix + "conv_last.weight"),)))
    for block, source in (("mims", prefix), ("mimn", f"stlstm_layer_diff.{layer - 1}.")):
        for name, key in (("conv_h", "conv_h_concat"), ("conv_x", "conv_x_concat")):
            slots.append(
                Slot(getattr(cell, f"{block}_{name}").kernel, (Part(f"{source}{key}.0.weight"),))
            )
        for variable, key in zip(cell.peepholes[block], ("ct_weight", "oc_weight")):
            slots.append(Slot(variable, (Part(source + key),), "spatial"))
    return slots


CELL_SLOTS = {
    "convlstm": _convlstm_slots,
    "predrnn": _predrnn_slots,
    "predrnnv2": _predrnn_slots,
    "predrnnpp": _predrnn_pp_slots,
    "mim": _mim_slots,
}
# Where OpenSTL keeps each layer's tensors.
LAYER_PREFIX = {"mim": "stlstm_layer.{}."}


def _slots(model, method):
    """Every Keras variable of `model` with the OpenSTL blocks it is made of."""
    slots = [Slot(model.readout.kernel, (Part("conv_last.weight"),))]
    if model.adapter is not None:
        slots.append(Slot(model.adapter.kernel, (Part("adapter.weight"),)))
    for index, cell in enumerate(model.cells):
        prefix = LAYER_PREFIX.get(method, "cell_list.{}.").format(index)
        slots += CELL_SLOTS[method](cell, prefix, cell.filters)
    return slots


def _gate_convs(method, layer):
    """OpenSTL's gate convolutions of one layer, with their gate counts."""
    st_lstm = {"conv_x": 7, "conv_h": 4, "conv_m": 3, "conv_o": 1}
    if method in ("predrnn", "predrnnv2") or (method == "mim" and layer == 0):
        return st_lstm
    if method == "mim":
        return {"conv_t_cc": 3, "conv_s_cc": 4, "conv_x_cc": 4}
    if method == "predrnnpp":
        return {"conv_x": 7, "conv_h": 4, "conv_c": 3, "conv_m": 3, "conv_c2m": 4, "conv_om": 1}
    return {"conv_x": 4, "conv_h": 4}


def _unused_keys(method, layers):
    """Tensors OpenSTL stores but its forward never reads (its README, "Math to note")."""
    if method == "mim":  # the MIMNs' conv_last
        return {f"stlstm_layer_diff.{i}.conv_last.weight" for i in range(layers - 1)}
    return {f"cell_list.{i}.{name}" for i in range(layers) for name in UNUSED.get(method, ())}


def _openstl_shapes(method, config):
    """The shape of every tensor OpenSTL's forward reads, from the config."""
    widths = _num_hidden(config)
    _, channels, height, width = (int(v) for v in config["in_shape"])
    patch = int(config.get("patch_size", 1))
    size = int(config.get("filter_size", 3))
    patch_channels = patch * patch * channels
    grid = (height // patch, width // patch)

    def conv(out, inputs, kernel=size):
        return (out, inputs, kernel, kernel)

    first = widths[0]
    shapes = {"conv_last.weight": conv(patch_channels, widths[-1], 1)}
    if method == "predrnnv2":
        shapes["adapter.weight"] = conv(first, first, 1)
    if method == "predrnnpp":
        for name in ("x_concat", "z_concat"):
            shapes[f"gradient_highway.{name}.0.weight"] = conv(2 * first, first)
    layer_norm = int(config.get("layer_norm", 0))
    for index, filters in enumerate(widths):
        prefix = LAYER_PREFIX.get(method, "cell_list.{}.").format(index)
        below = patch_channels if index == 0 else widths[index - 1]
        for name, gates in _gate_convs(method, index).items():
            inputs = {"conv_x": below, "conv_x_cc": below, "conv_o": 2 * filters}.get(name, filters)
            shapes[f"{prefix}{name}.0.weight"] = conv(gates * filters, inputs)
            if layer_norm:
                for kind in ("weight", "bias"):
                    shapes[f"{prefix}{name}.1.{kind}"] = (gates * filters, *grid)
        if method != "convlstm":
            shapes[prefix + "conv_last.weight"] = conv(filters, 2 * filters, 1)
        if method == "mim" and index > 0:
            for source in (prefix, f"stlstm_layer_diff.{index - 1}."):
                shapes[source + "ct_weight"] = (2 * filters, *grid)
                shapes[source + "oc_weight"] = (filters, *grid)
                for name in ("conv_h_concat", "conv_x_concat"):
                    shapes[f"{source}{name}.0.weight"] = conv(4 * filters, filters)
    return shapes


def from_openstl(weights, config):
    """An `MSStack` that forecasts as an OpenSTL checkpoint does.

    `model.predict(context)` with channels-last context frames
    `(batch, pre_seq_length, H, W, C)` in `[0, 1]` returns OpenSTL's
    forecast `(batch, aft_seq_length, H, W, C)`; `model.rollout(frames)`
    returns its `next_frames` over all `T - 1` steps, unpatched.

    Args:
        weights: OpenSTL's state_dict: a mapping of its keys to arrays or
            tensors, or the path of a `.pth` or Lightning `.ckpt` (read with
            `torch.load(weights_only=True)`).
        config: dict of OpenSTL hyperparameters (`method`, `in_shape`,
            `pre_seq_length`, `aft_seq_length`, `num_hidden`, `filter_size`,
            `stride`, `patch_size`, `layer_norm`, `decouple_beta`), or the
            path of an OpenSTL config `.py`, parsed without running it.

    Returns:
        A built `keras_msrnn.MSStack` (plain stack, no biases, no embedding;
        sampling `"free_running"`, as at the end of OpenSTL's schedule).
        After `model.compile()` its training loss is OpenSTL's (mean squared
        error over all `T - 1` predictions, plus `decouple_beta` times the
        decoupling term for PredRNN-V2) times the constant
        `(T - 1) / aft_seq_length`.

    Raises:
        ValueError: one line naming a missing, unexpected or misshapen
            tensor, or a setting that cannot be imported.

    Example:

    ```python
    model = keras_msrnn.convert.from_openstl(
        "work_dirs/mmnist_predrnn/checkpoint.pth", "configs/mmnist/PredRNN.py")
    forecast = model.predict(context)  # (batch, 10, 64, 64, 1)
    ```

    Reference:
     - [Tan et al., OpenSTL, NeurIPS 2023](https://arxiv.org/abs/2306.11249)
    """
    config = read_config(config)
    state = read_weights(weights)
    model = build_model(config)
    method = _method(config)
    shapes = _openstl_shapes(method, config)
    ignored = _unused_keys(method, model.num_layers)
    unexpected = sorted(set(state) - set(shapes) - ignored)
    if unexpected:
        raise ValueError(
            f"The checkpoint holds {unexpected[0]!r}, which a {config['method']} with "
            f"num_hidden={config['num_hidden']!r} has no place for: are method and num_hidden "
            "right?"
        )
    for key, shape in shapes.items():
        if key not in state:
            raise ValueError(f"The {config['method']} checkpoint lacks {key!r} {shape}.")
        if tuple(state[key].shape) != shape:
            raise ValueError(
                f"{key!r} has shape {tuple(state[key].shape)} in the checkpoint; the config "
                f"needs {shape}."
            )
    for slot in _slots(model, method):
        slot.variable.assign(slot.value(state))
    return model


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_to_preset(checkpoint, config, output, **overrides):
    """Imports an OpenSTL checkpoint file and writes it as a preset folder.

    The preset's metadata records where the weights come from: OpenSTL's
    method and config, the checkpoint's file name and sha256, and that
    OpenSTL, not keras-msrnn, trained them.

    Args:
        checkpoint: path of OpenSTL's `.pth` or Lightning `.ckpt`.
        config: OpenSTL config `.py` path or dict (see `from_openstl`).
        output: the preset folder to write.
        **overrides: settings that replace the config's (`dataname`,
            `pre_seq_length`, ...).

    Returns:
        The imported model.
    """
    settings = read_config(config, **overrides)
    model = from_openstl(checkpoint, settings)
    metadata = {
        "description": (
            f"OpenSTL's {settings['method']} ({settings.get('dataname', 'custom data')}), "
            "imported into keras-msrnn"
        ),
        "source": {
            "framework": "OpenSTL",
            "trained_by": "OpenSTL (weights imported, not trained by keras-msrnn)",
            "method": settings["method"],
            "config": {key: settings[key] for key in sorted(settings)},
            "config_file": None if isinstance(config, dict) else os.path.basename(config),
            "checkpoint": os.path.basename(checkpoint),
            "checkpoint_sha256": _sha256(checkpoint),
        },
    }
    model.save_to_preset(output, metadata)
    return model
