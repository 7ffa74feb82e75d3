"""Import of checkpoints of the authors' PyTorch MS-RNN implementation."""

import re
from collections import Counter

import numpy as np

from keras_msrnn.models.ms_stack import MSRNN_SCALES, MSStack

_LAYER_PARAMETER = re.compile(r"^rnns\.lstm\.(\d+)\.(.+)\.(weight|bias)$")
_MODEL_PARAMETER = {
    "embed.conv_embed": "embedding",
    "fc.conv_fc": "readout",
}


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype="float32")


def _infer(name, given, inferred):
    if given is None:
        return inferred
    if given != inferred:
        raise ValueError(f"The checkpoint has {name}={inferred} but {name}={given} was given.")
    return given


def _reference_layout(state_dict):
    """Reads layers, filters, channels and kernel size off the parameter shapes."""
    if "embed.conv_embed.weight" not in state_dict:
        raise ValueError(
            "Not an MS-RNN checkpoint: 'embed.conv_embed.weight' is missing. "
            f"First parameters: {sorted(state_dict)[:5]}"
        )
    filters, channels = state_dict["embed.conv_embed.weight"].shape[:2]
    layer_indices = {int(m.group(1)) for m in map(_LAYER_PARAMETER.match, state_dict) if m}
    if not layer_indices:
        raise ValueError("Not an MS-RNN checkpoint: no 'rnns.lstm.<layer>.' parameters.")
    # The gate kernel is the most common one; MotionRNN also has 2x2 and 4x4
    # (de)convolutions, and most cells have 1x1 ones.
    kernels = Counter(
        value.shape[-1]
        for name, value in state_dict.items()
        if name.startswith("rnns.lstm.0.") and value.ndim == 4 and value.shape[-1] > 1
    )
    kernel_size = kernels.most_common(1)[0][0] if kernels else 1
    return max(layer_indices) + 1, int(filters), int(channels), int(kernel_size)


def _target_layer(model, name):
    """The Keras layer holding the reference parameter `name`, and its kind."""
    match = _LAYER_PARAMETER.match(name)
    if match:
        layer, path, kind = int(match.group(1)), match.group(2), match.group(3)
        if layer >= len(model.cells):
            raise ValueError(
                f"Parameter {name!r} names layer {layer}, but the model has {len(model.cells)}."
            )
        return model.cells[layer].reference_layer(path), kind
    module, _, kind = name.rpartition(".")
    if module in _MODEL_PARAMETER:
        return getattr(model, _MODEL_PARAMETER[module]), kind
    if module.startswith("rnns.") and hasattr(model, "reference_layer"):
        return model.reference_layer(module[len("rnns.") :]), kind
    raise ValueError(f"Unknown MS-RNN parameter {name!r}.")


def msrnn_variable(model, name):
    """The Keras variable of `model` that holds the reference parameter `name`."""
    layer, kind = _target_layer(model, name)
    return layer.bias if kind == "bias" else layer.kernel


def to_keras_layout(value):
    """Reference layout -> Keras layout of one parameter.

    Conv2d (out, in, kh, kw) and ConvTranspose2d (in, out, kh, kw) both become
    Keras' (kh, kw, in, out) / (kh, kw, out, in) by the same transpose.
    """
    return np.transpose(value, (2, 3, 1, 0)) if value.ndim == 4 else value


def to_msrnn_layout(value):
    """Keras layout -> reference layout of one parameter (inverse of `to_keras_layout`)."""
    return np.transpose(value, (3, 2, 0, 1)) if value.ndim == 4 else value


def from_msrnn(
    state_dict,
    cell,
    multi_scale=True,
    frame_shape=None,
    input_length=10,
    output_length=10,
    layers=None,
    filters=None,
    kernel_size=None,
    scales=None,
    **kwargs,
):
    """Builds an `MSStack` holding the weights of an authors' MS-RNN model.

    `state_dict` is the reference model's `state_dict()` (names as in the
    authors' code: `embed.conv_embed.*`, `rnns.lstm.<l>.<conv>.*`,
    `fc.conv_fc.*`), as numpy arrays or torch tensors. The number of layers,
    the hidden channels, the frame channels and the kernel size are read off
    the shapes; passing them checks them.

    Args:
        state_dict: mapping from parameter name to array.
        cell: str. The cell of the checkpoint, e.g. `"convlstm"`, `"predrnn"`.
        multi_scale: bool. True for an `MS-*` model (scales
            `(1, 2, 4, 4, 2, 1)`), False for the plain stack.
        frame_shape: `(height, width)` or `(height, width, channels)` of the
            frames the model will see.
        input_length: int. Context frames (`in_len`).
        output_length: int. Forecast frames (`out_len`).
        layers, filters, kernel_size: optional checks of the checkpoint.
        scales: the layers' down factors, for multi-scale checkpoints of
            other depths than 6.
        **kwargs: further `MSStack` arguments (sampling, ...).

    Returns:
        A built `MSStack` whose outputs match the reference model's.

    Example:

    ```python
    arrays = np.load("ms_predrnn.npz")
    state = {k[len("param/"):]: arrays[k] for k in arrays if k.startswith("param/")}
    model = keras_msrnn.convert.from_msrnn(
        state, cell="predrnn", frame_shape=(16, 16), input_length=4, output_length=4)
    ```
    """
    state_dict = {name: _to_numpy(value) for name, value in state_dict.items()}
    num_layers, num_filters, channels, kernel = _reference_layout(state_dict)
    num_layers = _infer("layers", layers, num_layers)
    num_filters = _infer("filters", filters, num_filters)
    kernel = _infer("kernel_size", kernel_size, kernel)
    if frame_shape is None or len(frame_shape) not in (2, 3):
        raise ValueError(
            f"`frame_shape` must be (height, width[, channels]). Received: {frame_shape!r}"
        )
    if len(frame_shape) == 3:
        channels = _infer("channels", frame_shape[2], channels)
    if scales is None:
        if multi_scale and num_layers != len(MSRNN_SCALES):
            raise ValueError(
                f"The checkpoint has {num_layers} layers; MS-RNN's scales are defined for "
                f"{len(MSRNN_SCALES)}. Pass `scales` explicitly."
            )
        scales = MSRNN_SCALES if multi_scale else (1,) * num_layers
    model = MSStack(
        cell=cell,
        filters=num_filters,
        scales=scales,
        kernel_size=kernel,
        input_length=input_length,
        output_length=output_length,
        **kwargs,
    )
    model.build((None, input_length, frame_shape[0], frame_shape[1], channels))
    assigned = set()
    for name, value in state_dict.items():
        variable, keras_value = msrnn_variable(model, name), to_keras_layout(value)
        if tuple(variable.shape) != keras_value.shape:
            raise ValueError(
                f"Parameter {name!r} has shape {value.shape}, which does not fit "
                f"{variable.path} of shape {tuple(variable.shape)}."
            )
        variable.assign(keras_value)
        assigned.add(id(variable))
    missing = [
        w.path for w in model.weights if id(w) not in assigned and w is not model.sampling_step
    ]
    if missing:
        raise ValueError(f"The checkpoint has no values for: {', '.join(missing)}.")
    return model
