"""Shared machinery of the recurrent cells that `MSStack` stacks."""

from typing import Any, NamedTuple

import keras
from keras import ops

from keras_msrnn.backend.conv import conv2d_same
from keras_msrnn.validation import positive_int

# PyTorch's Conv2d default, kaiming_uniform(a=sqrt(5)), is U(-1/sqrt(fan_in),
# 1/sqrt(fan_in)); matching it keeps training dynamics close to the reference.
TORCH_DEFAULT_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"},
}

_CELLS = {}


def register_cell(name):
    """Makes a cell class selectable by name in `MSStack(cell=name)`."""

    def decorator(cls):
        _CELLS[name] = cls
        cls.cell_name = name
        return cls

    return decorator


def available_cells():
    """Returns the names accepted by `MSStack(cell=...)`, sorted."""
    return sorted(_CELLS)


def get_cell_class(name):
    """Returns the cell class registered under `name`."""
    if not isinstance(name, str) or name.lower() not in _CELLS:
        raise ValueError(f"Unknown cell {name!r}. Available cells: {', '.join(available_cells())}.")
    return _CELLS[name.lower()]


class CellOutput(NamedTuple):
    """What a cell returns for one time step.

    Attributes:
        output: `h'`, the layer's output, `(batch, height, width, filters)`;
            always also `states[0]`.
        states: the new recurrent states, in the order of `state_names`.
        memory: the new spatiotemporal memory `m'` for cells with
            `uses_memory`, else the `memory` argument unchanged (None).
        increments: `(Δc, Δm)` for cells with `returns_increments`
            (PredRNN-V2's decoupling loss compares them), else None.
    """

    output: Any
    states: tuple
    memory: Any = None
    increments: tuple | None = None


class RecurrentCell(keras.layers.Layer):
    """Base class of one recurrent layer of a spatiotemporal stack.

    A cell advances one layer by one time step. The contract between a cell
    and `MSStack`, in full:

    - `call(inputs, states, memory=None)` returns a `CellOutput`. `inputs` is
      `(batch, height, width, channels)`; every state and the memory keep
      that height and width over time.
    - `state_names` names the states in order. The first is always `"h"`,
      the output of the previous step, which `MSStack` (and MIM's difference
      input) read as `states[0]`.
    - `get_initial_state(batch, height, width)` gives the zero states.
    - `uses_memory`: the cell reads and writes the spatiotemporal memory `m`
      that zigzags through the stack (the PredRNN family).
    - `takes_previous_input`: `call` also takes `previous_input`, the
      previous step's output of the layer below at this layer's scale
      (None in the first layer and at the first step), MIM's difference
      input.
    - `takes_difference_below`: `call` also takes `difference_below`, the
      new state named `"difference"` of the layer below at this layer's
      scale (None where that cell has none): OpenSTL's MIMN chain.
    - `returns_increments`: `CellOutput.increments` holds `(Δc, Δm)`.
    - `for_layer(index, count, **config)` builds the cell of one position of
      a stack (MIM's first layer and PredRNN++'s highway layer differ).

    Subclasses create their convolutions in `__init__` with
    `self.make_conv` and build them in `build`.

    Args:
        filters: int. Channels of the hidden state, the output and every
            memory of the cell.
        kernel_size: int. Size of the square gate convolutions.
        kernel_initializer: initializer of every convolution kernel. Defaults
            to PyTorch's default Conv2d initialisation.
        bias_initializer: initializer of every convolution bias.
        use_bias: bool. Whether the gate convolutions have biases. Defaults to
            True, as in the MS-RNN code; OpenSTL's convolutions have none.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).
    """

    uses_memory = False
    takes_previous_input = False
    takes_difference_below = False
    returns_increments = False
    cell_name = None

    @property
    def state_names(self):
        """Names of the recurrent states, in order; the first is `"h"`."""
        raise NotImplementedError

    def __init__(
        self,
        filters,
        kernel_size=3,
        kernel_initializer=TORCH_DEFAULT_KERNEL_INITIALIZER,
        bias_initializer="zeros",
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = positive_int("filters", filters)
        if positive_int("kernel_size", kernel_size) % 2 == 0:
            raise ValueError(
                "`kernel_size` must be a positive odd int (even kernels pad "
                f"asymmetrically). Received: kernel_size={kernel_size!r}"
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.use_bias = bool(use_bias)
        self.norm_weights = {}

    @classmethod
    def for_layer(cls, layer_index, num_layers, **config):
        """Creates the cell for position `layer_index` of a stack.

        Cells whose equations depend on their depth (MIM's first layer,
        PredRNN++'s gradient highway) override this.
        """
        return cls(**config)

    def make_conv(
        self,
        filters,
        kernel_size=None,
        use_bias=None,
        name=None,
        strides=1,
        padding="same",
        layer=keras.layers.Conv2D,
    ):
        """Creates a convolution owned by this cell, with the cell's initializers.

        Stride-1 'same' by default; `layer` may be `keras.layers.Conv2DTranspose`.
        `use_bias` defaults to the cell's.
        """
        return layer(
            filters,
            kernel_size or self.kernel_size,
            strides=strides,
            padding=padding,
            use_bias=self.use_bias if use_bias is None else use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def apply_conv(self, layer, inputs):
        """Applies one of this cell's stride-1 "same" convolutions to `inputs`.

        The `Conv2D` layer holds the weights; calling through here skips its
        call machinery, once per layer and step, and on PyTorch the layout
        copies (`keras_msrnn.backend.conv`).
        """
        return conv2d_same(inputs, layer.kernel, layer.bias if layer.use_bias else None)

    def apply_conv_sum(self, *pairs):
        """`sum(conv(x) for conv, x in pairs)` as one convolution.

        A sum of convolutions of different inputs is one convolution of the
        inputs concatenated along channels (`apply_stacked_conv`): one larger
        operation instead of several small ones and their sum, with the
        weights still stored per source, as the reference's modules, so
        checkpoints convert by name.
        """
        layers, inputs = zip(*pairs)
        if len(layers) == 1:
            return self.apply_conv(layers[0], inputs[0])
        return self.apply_stacked_conv(layers, ops.concatenate(inputs, axis=-1))

    def apply_stacked_conv(self, layers, inputs):
        """The sum of `layers`' convolutions of consecutive channel blocks of `inputs`.

        Layer `j` reads the `j`-th block of `inputs`' channels (its kernel's
        input size); the kernels are concatenated along their input axis and
        the biases added. All layers share a kernel size.
        """
        biases = [layer.bias for layer in layers if layer.use_bias]
        kernel = ops.concatenate([layer.kernel for layer in layers], axis=2)
        return conv2d_same(inputs, kernel, sum(biases[1:], biases[0]) if biases else None)

    # Reference module paths whose Keras attribute path differs beyond the
    # leading underscore, e.g. {"LA.conv1": "local_attention.query"}.
    reference_aliases = {}

    def reference_layer(self, path):
        """The sublayer holding the authors' parameter `path` (e.g. `_conv_x2h`).

        Sublayers are named after the reference's modules without the leading
        underscore, which keeps checkpoint conversion a name lookup.
        """
        layer = self
        for part in self.reference_aliases.get(path, path.lstrip("_")).split("."):
            layer = getattr(layer, part, None)
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"{type(self).__name__} has no parameter {path!r}; is the checkpoint's "
                f"cell {self.cell_name!r}?"
            )
        return layer

    def build_layer_norm(self, channels_by_block, height, width):
        """Creates OpenSTL's LayerNorm affine (ones, zeros) after each named convolution.

        Args:
            channels_by_block: `{convolution name: its output channels}`.
            height, width: the states' spatial size (the affine is elementwise).
        """
        for block, channels in channels_by_block.items():
            shape = (height, width, channels)
            self.norm_weights[block] = (
                self.add_weight(shape=shape, initializer="ones", name=f"{block}_norm_scale"),
                self.add_weight(shape=shape, initializer="zeros", name=f"{block}_norm_offset"),
            )

    def normalize(self, blocks, *tensors):
        """OpenSTL's layer norm of `tensors`, the outputs of `blocks`, normalised together.

        The identity for a cell built without layer norm.
        """
        if not self.norm_weights:
            return tensors
        weights = [self.norm_weights[block] for block in blocks]
        return layer_norm_jointly(tensors, [w[0] for w in weights], [w[1] for w in weights])

    def state_shape(self, input_shape):
        """Shape of a `filters`-channel tensor at the input's spatial size."""
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_initial_state(self, batch_size, height, width):
        """Returns the zero states of a batch at spatial size `height x width`."""
        zeros = ops.zeros((batch_size, height, width, self.filters), dtype=self.compute_dtype)
        return tuple(zeros for _ in self.state_names)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "use_bias": self.use_bias,
            }
        )
        return config


def gates(tensor, count):
    """Splits a fused gate convolution's output into `count` channel blocks."""
    return ops.split(tensor, count, axis=-1)


def layer_norm_jointly(tensors, scales, offsets, epsilon=1e-5):
    """Layer norm of several gate blocks together, with a full elementwise affine.

    Statistics run over every channel and position of all `tensors` at once,
    per sample, as OpenSTL's `nn.LayerNorm([channels, H, W])` after a fused
    gate convolution that this library splits into several convolutions.
    They are taken in float32 under mixed precision, as Keras' own
    `LayerNormalization` does.
    """
    dtype = tensors[0].dtype
    tensors = [ops.cast(t, "float32") for t in tensors]
    axes = (1, 2, 3)
    size = sum(t.shape[-1] for t in tensors) * tensors[0].shape[1] * tensors[0].shape[2]
    mean = sum(ops.sum(t, axis=axes, keepdims=True) for t in tensors) / size
    variance = sum(ops.sum(ops.square(t - mean), axis=axes, keepdims=True) for t in tensors) / size
    inverse = ops.rsqrt(variance + epsilon)
    return [
        ops.cast(
            (t - mean) * inverse * ops.cast(scale, "float32") + ops.cast(offset, "float32"), dtype
        )
        for t, scale, offset in zip(tensors, scales, offsets)
    ]


def shift(tensor, constant):
    """`tensor + constant`, without an op when the constant is 0 (a forget bias)."""
    return tensor if constant == 0 else tensor + constant


def lstm_update(cell_state, input_gate, forget_gate, candidate, forget_bias=0.0):
    """c' = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(g), the LSTM memory update."""
    return ops.sigmoid(shift(forget_gate, forget_bias)) * cell_state + ops.sigmoid(
        input_gate
    ) * ops.tanh(candidate)
