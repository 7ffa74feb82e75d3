"""MSStack: the multi-scale recurrent stack of MS-RNN."""

import math

import keras
import numpy as np
from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.backend import time_loop
from keras_msrnn.backend.conv import conv2d_same
from keras_msrnn.backend.distribute import uniform_for_global_batch
from keras_msrnn.backend.fusion import store_gradient
from keras_msrnn.backend.tf_data import with_malloc_thresholds_restored
from keras_msrnn.cells.base import get_cell_class
from keras_msrnn.frames import to_unit_frames
from keras_msrnn.models.losses import MSRNNLoss, mean_squared_error, msrnn_loss
from keras_msrnn.models.scheduled_sampling import FreeRunning, get_schedule
from keras_msrnn.ops.patching import patch_frames, unpatch_frames
from keras_msrnn.ops.resampling import rescale
from keras_msrnn.validation import positive_int

MSRNN_SCALES = (1, 2, 4, 4, 2, 1)
DECOUPLING_REDUCTIONS = ("msrnn", "mean")


def skip_sources(scales):
    """For each layer, the earlier layer whose output is added to its input.

    On the way up (a layer finer than the one below it) the input receives the
    output of the most recent earlier layer of the same scale, U-Net style:
    for `(1, 2, 4, 4, 2, 1)` layer 4 gets layer 1 and layer 5 gets layer 0.
    Other layers get None.
    """
    sources = []
    for layer, scale in enumerate(scales):
        source = None
        if layer > 0 and scale < scales[layer - 1]:
            same_scale = [j for j in range(layer - 1) if scales[j] == scale]
            source = same_scale[-1] if same_scale else None
        sources.append(source)
    return tuple(sources)


def _layer_filters(filters, scales, cell_class):
    """One width per layer from `filters` (an int or a list), checked against the wiring."""
    if isinstance(filters, (list, tuple)):
        widths = tuple(positive_int("filters", width) for width in filters)
        if len(widths) != len(scales):
            raise ValueError(
                f"`filters` gives {len(widths)} widths for {len(scales)} layers. "
                f"Received: filters={list(filters)!r}, scales={list(scales)!r}"
            )
    else:
        widths = (positive_int("filters", filters),) * len(scales)
    if len(set(widths)) > 1:
        if cell_class.uses_memory:
            raise ValueError(
                f"The {cell_class.cell_name!r} cell's memory passes through every layer, so all "
                f"layers need one width. Received: filters={list(widths)!r}"
            )
        for layer, source in enumerate(skip_sources(scales)):
            if source is not None and widths[source] != widths[layer - 1]:
                raise ValueError(
                    f"Layer {source}'s output ({widths[source]} channels) is added to layer "
                    f"{layer - 1}'s ({widths[layer - 1]}): they need one width. Received: "
                    f"filters={list(widths)!r}"
                )
    return widths


def _validate_scales(scales):
    scales = tuple(scales)
    if not scales or not all(isinstance(s, int) and s >= 1 for s in scales):
        raise ValueError(
            "`scales` must be a non-empty sequence of positive int down factors. Received: "
            f"scales={scales!r}"
        )
    if scales[0] != 1 or scales[-1] != 1:
        raise ValueError(
            "The first and last layers must work at full resolution (scale 1): the "
            "embedding feeds the first and the read-out reads the last. Received: "
            f"scales={scales!r}"
        )
    for below, above in zip(scales, scales[1:]):
        if max(below, above) % min(below, above):
            raise ValueError(
                "Consecutive `scales` must divide one another so that resampling is "
                f"an integer pooling or upsampling. Received: scales={scales!r}"
            )
    return scales


@keras_msrnn_export
class MSStack(keras.Model):
    """A recurrent spatiotemporal predictor, plain or multi-scale (MS-RNN).

    The model embeds each frame with a 1x1 convolution, runs a stack of
    recurrent cells once per time step and reads the prediction of the next
    frame out with a 1x1 convolution (no output activation). Layer `l` works
    at `1 / scales[l]` of the frame size: its input is max-pooled (going
    down) or bilinearly upsampled (going up) from the layer below, and on the
    way up the output of the earlier layer of the same scale is added
    (U-Net-style additive skips). Every recurrent state stays at its layer's
    scale. The spatiotemporal memory of the PredRNN family is resampled along
    the same path without skips and carried from the top layer at step `t`
    to the bottom layer at step `t + 1`. `scales=(1,) * L` is the plain
    stack; the default `(1, 2, 4, 4, 2, 1)` is MS-RNN's mirror pyramid, which
    costs about 0.44 of the plain stack's compute and activation memory.

    Inputs are channels-last frames in `[0, 1]`,
    `(batch, time, height, width, channels)`. `model.predict(context)`
    forecasts `output_length` frames from the last `input_length` context
    frames, feeding its own predictions back. For training, pass
    `(context, future)`: with `training=True` the stack feeds true future
    frames with the probabilities of its scheduled-sampling schedule, whose
    step counter (`sampling_step`) lives in the model and advances once per
    training call. Data sets yield `((context, future), future)` batches, so
    `fit`, `evaluate` and `predict` work unchanged on every backend.

    Args:
        cell: str. Recurrent cell of every layer, one of
            `keras_msrnn.cells.available_cells()`.
        filters: int. Channels of every layer's hidden state and memory.
            Defaults to 64. Or a list with one width per layer, for cells
            without the spatiotemporal memory (which passes through every
            layer) and where no skip connection joins layers of different
            widths, e.g. OpenSTL's ConvLSTM with `num_hidden="64,32,64"`.
        scales: sequence of int. Down factor of each layer relative to the
            frame; its length is the number of layers. Defaults to
            `(1, 2, 4, 4, 2, 1)`.
        kernel_size: int. Size of the cells' gate convolutions. Defaults to 3.
        input_length: int. Context frames the model reads. Defaults to 10.
        output_length: int. Frames it forecasts. Defaults to 10.
        patch_size: int. Space-to-depth block size applied to frames before
            the embedding (the OpenSTL / PredRNN protocol). Defaults to 1.
        sampling: `keras_msrnn.models.SamplingSchedule` or one of `"linear"`,
            `"teacher_forcing"`, `"free_running"`. Defaults to
            `LinearSampling(decay_steps=10000)`.
        reconstruction_loss_weight: float. When positive and the model is
            called with `(context, future)`, the stack also adds
            `weight * MSRNNLoss` over its predictions of context frames
            `2 .. input_length` through `add_loss`. MS-RNN trains on all
            `S - 1` predicted frames; with `weight = (input_length - 1) /
            output_length` and `loss=MSRNNLoss()` the objective is that loss
            times the constant `(S - 1) / output_length`. Defaults to 0.
        loss: `"msrnn"` (per-frame pixel sums of squared plus absolute
            errors, the MS-RNN code) or `"mse"` (mean squared error, the
            OpenSTL code): the loss `compile()` picks by default and the one
            the reconstruction term uses. Defaults to `"msrnn"`.
        decoupling_loss_weight: float. Weight of PredRNN-V2's decoupling loss
            (cells that return memory increments only). Defaults to 0.01, the
            MS-RNN setting; the PredRNN-V2 paper uses 0.1.
        decoupling_reduction: `"msrnn"` (mean over steps and samples of the
            sum over layers and channels, the MS-RNN code) or `"mean"` (mean
            over everything, the PredRNN-V2 code).
        use_bias: bool. Whether every convolution (embedding, cells,
            read-out, adapter) has a bias. Defaults to True, as in the MS-RNN
            code; OpenSTL's models have none.
        embed_inputs: bool. Whether a 1x1 convolution embeds each (patched)
            frame into `filters` channels before the first layer. Defaults to
            True, as in the MS-RNN code; OpenSTL feeds the patched frame to
            the first layer directly.
        cell_config: dict. Extra arguments of the cell class.
        seed: int. Seed of the scheduled-sampling masks.
        unroll: bool. Whether the time loop is unrolled in Python (the graph
            holds one copy of the stack per step) or, with `False`, is one
            loop of the graph, traced once at any sequence length. Both
            compute the same forecast. Defaults to True, which trains fastest:
            on a 2-core CPU the loop cut TensorFlow's first (tracing) step of
            the MS stack at 64x64, 10 -> 10 from 33 to 19 s, but slowed the
            plain stack's step by a fifth; XLA on CPU runs convolutions inside
            loops without its fast path (15-20 times slower on JAX); PyTorch
            runs eagerly, where both are the same Python loop.
        **kwargs: arguments of `keras.Model` (`name`, `dtype`, ...).

    Call arguments:
        inputs: the context `(batch, time >= input_length, H, W, C)`, or a
            tuple `(context, future)` with `future` holding at least
            `output_length` true frames (used only when training).
        training: bool. Whether scheduled sampling feeds true frames.

    Returns:
        The forecast `(batch, output_length, H, W, C)`.

    Example:

    ```python
    model = keras_msrnn.MSStack(cell="predrnn", filters=64,
                                input_length=10, output_length=10)
    model.compile()          # Adam(3e-4) and the MS-RNN loss
    model.fit(dataset)       # batches ((context, future), future)
    forecast = model.predict(context)
    plain = keras_msrnn.MSStack(cell="predrnn", scales=(1,) * 6)
    ```

    Reference:
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010)
    """

    def __init__(
        self,
        cell="predrnn",
        filters=64,
        scales=MSRNN_SCALES,
        kernel_size=3,
        input_length=10,
        output_length=10,
        patch_size=1,
        sampling=None,
        reconstruction_loss_weight=0.0,
        loss="msrnn",
        decoupling_loss_weight=0.01,
        decoupling_reduction="msrnn",
        use_bias=True,
        embed_inputs=True,
        cell_config=None,
        seed=None,
        unroll=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        cell_class = get_cell_class(cell)
        # === Config ===
        self.cell = cell_class.cell_name
        self.scales = _validate_scales(scales)
        self.layer_filters = _layer_filters(filters, self.scales, cell_class)
        uniform = len(set(self.layer_filters)) == 1
        self.filters = self.layer_filters[0] if uniform else list(self.layer_filters)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.input_length = positive_int("input_length", input_length)
        self.output_length = positive_int("output_length", output_length)
        self.patch_size = positive_int("patch_size", patch_size)
        self.sampling = get_schedule(sampling if sampling is not None else "linear")
        if reconstruction_loss_weight < 0:
            raise ValueError(
                "`reconstruction_loss_weight` must be >= 0. "
                f"Received: reconstruction_loss_weight={reconstruction_loss_weight!r}"
            )
        self.reconstruction_loss_weight = float(reconstruction_loss_weight)
        if loss not in FRAME_LOSSES:
            raise ValueError(
                f"`loss` must be one of {tuple(FRAME_LOSSES)}. Received: loss={loss!r}"
            )
        self.loss_name = loss
        if decoupling_reduction not in DECOUPLING_REDUCTIONS:
            raise ValueError(
                f"`decoupling_reduction` must be one of {DECOUPLING_REDUCTIONS}. "
                f"Received: decoupling_reduction={decoupling_reduction!r}"
            )
        self.decoupling_loss_weight = float(decoupling_loss_weight)
        self.decoupling_reduction = decoupling_reduction
        self.cell_config = dict(cell_config or {})
        if "use_bias" in self.cell_config:
            raise ValueError(
                "Set `use_bias` on MSStack, which applies it to every convolution, not in "
                f"`cell_config`. Received: cell_config={self.cell_config!r}"
            )
        self.use_bias = bool(use_bias)
        self.embed_inputs = bool(embed_inputs)
        self.seed = seed
        if not isinstance(unroll, bool):
            raise ValueError(f"`unroll` must be True or False. Received: unroll={unroll!r}")
        self.unroll = unroll
        self.skip_sources = skip_sources(self.scales)

        # === Layers ===
        self.embedding = None
        if self.embed_inputs:
            self.embedding = self._pointwise_conv(self.layer_filters[0], "embedding")
        self.cells = [
            cell_class.for_layer(
                layer,
                len(self.scales),
                filters=self.layer_filters[layer],
                kernel_size=kernel_size,
                use_bias=self.use_bias,
                dtype=self.dtype_policy,
                name=f"cell_{layer}",
                **self.cell_config,
            )
            for layer in range(len(self.scales))
        ]
        self.uses_memory = self.cells[0].uses_memory
        # PredRNN-V2: one 1x1 adapter shared by all layers maps the memory
        # increments before their cosine similarity is taken.
        self.adapter = None
        if cell_class.returns_increments:
            self.adapter = self._pointwise_conv(self.layer_filters[0], "adapter")
        self.readout = None  # created in build(), once the frame channels are known
        self.sampling_step = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="sampling_step"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.frame_shape = None

    def _pointwise_conv(self, filters, name):
        return keras.layers.Conv2D(
            filters, 1, use_bias=self.use_bias, dtype=self.dtype_policy, name=name
        )

    # === Shapes and validation ===

    @property
    def num_layers(self):
        return len(self.scales)

    @property
    def sequence_length(self):
        return self.input_length + self.output_length

    def layer_sizes(self, height, width):
        """Spatial size `(h, w)` of every layer for frames of `height x width`."""
        h, w = height // self.patch_size, width // self.patch_size
        return [(h // s, w // s) for s in self.scales]

    def _check_frame_shape(self, shape, what="frames"):
        if len(shape) != 5:
            raise ValueError(
                f"MSStack expects {what} of rank 5 (batch, time, height, width, "
                f"channels). Received {what} of shape {tuple(shape)}."
            )
        height, width, channels = shape[2:]
        if self.frame_shape is not None and (height, width, channels) != self.frame_shape:
            raise ValueError(
                f"This MSStack was built for frames of (height, width, channels) = "
                f"{self.frame_shape}. Received {what} of shape {tuple(shape)}."
            )
        divisor = max(self.scales) * self.patch_size
        if height is None or width is None or height % divisor or width % divisor:
            raise ValueError(
                f"Frame height and width must be divisible by {divisor} (the largest "
                f"down factor {max(self.scales)} times patch_size {self.patch_size}). "
                f"Received {what} of shape {tuple(shape)}."
            )
        return height, width, channels

    def _split_inputs(self, inputs):
        if isinstance(inputs, (tuple, list)):
            if len(inputs) != 2:
                raise ValueError(
                    "MSStack takes a context tensor or a tuple (context, future). "
                    f"Received a sequence of {len(inputs)} items."
                )
            return inputs[0], inputs[1]
        return inputs, None

    def build(self, input_shape):
        if isinstance(input_shape, (tuple, list)) and isinstance(input_shape[0], (tuple, list)):
            input_shape = input_shape[0]
        height, width, channels = self._check_frame_shape(tuple(input_shape), "context")
        self.frame_shape = (height, width, channels)
        depth = channels * self.patch_size**2
        h, w = height // self.patch_size, width // self.patch_size
        if self.embedding is not None:
            self.embedding.build((None, h, w, depth))
        sizes = self.layer_sizes(height, width)
        for layer, (cell, (cell_h, cell_w)) in enumerate(zip(self.cells, sizes)):
            first_unembedded = layer == 0 and self.embedding is None
            below = self.layer_filters[max(layer - 1, 0)]
            cell.build((None, cell_h, cell_w, depth if first_unembedded else below))
        self.readout = self._pointwise_conv(depth, "readout")
        self.readout.build((None, h, w, self.layer_filters[-1]))
        if self.adapter is not None:
            self.adapter.build((None, h, w, self.layer_filters[0]))

    def reference_layer(self, path):
        """The stack-level layer holding the authors' `rnns.<path>` parameter."""
        if path == "adapter" and self.adapter is not None:
            return self.adapter
        raise ValueError(f"MSStack(cell={self.cell!r}) has no parameter 'rnns.{path}'.")

    def count_params(self):
        """Number of model parameters (the sampling step counter is not one)."""
        return sum(math.prod(w.shape) for w in self.weights if w is not self.sampling_step)

    # === Forward pass ===

    def call(self, inputs, training=False):
        context, future = self._split_inputs(inputs)
        self._check_frame_shape(context.shape, "context")
        if context.shape[1] is not None and context.shape[1] < self.input_length:
            raise ValueError(
                f"The context must hold at least input_length={self.input_length} frames. "
                f"Received context of shape {tuple(context.shape)}."
            )
        context = context[:, -self.input_length :]
        frames = context
        schedule = FreeRunning()
        if training and future is not None:
            self._check_frame_shape(future.shape, "future")
            if future.shape[1] is not None and future.shape[1] < self.output_length:
                raise ValueError(
                    f"The future must hold at least output_length={self.output_length} "
                    f"frames. Received future of shape {tuple(future.shape)}."
                )
            frames = ops.concatenate(
                [context, ops.cast(future[:, : self.output_length - 1], context.dtype)], axis=1
            )
            schedule = self.sampling
        probabilities = schedule.feed_probabilities(
            self.sampling_step, self.input_length, self.output_length
        )
        if training and future is not None:
            self.sampling_step.assign(self.sampling_step + 1)
        with_losses = future is not None
        decoupling_wanted = (
            with_losses and self.adapter is not None and self.decoupling_loss_weight > 0
        )
        predictions, decoupling = self._unroll(frames, probabilities, decoupling_wanted)
        if with_losses and self.reconstruction_loss_weight > 0 and self.input_length > 1:
            reconstruction = predictions[:, : self.input_length - 1]
            per_frame = FRAME_LOSSES[self.loss_name]
            self.add_loss(
                self.reconstruction_loss_weight
                * ops.mean(per_frame(context[:, 1:], reconstruction))
            )
        if decoupling_wanted:
            self.add_loss(self.decoupling_loss_weight * self.decoupling_loss(decoupling))
        return predictions[:, self.input_length - 1 :]

    def decoupling_loss(self, decoupling):
        """Reduces `rollout(..., return_decoupling=True)` terms to the unweighted loss."""
        decoupling = ops.cast(decoupling, "float32")
        if self.decoupling_reduction == "msrnn":
            return ops.mean(ops.sum(decoupling, axis=(1, 3)))
        return ops.mean(decoupling)

    def rollout(self, frames, feed_probabilities=None, return_decoupling=False):
        """Unrolls the stack over a sequence and returns every prediction.

        Step `t` reads a frame and predicts frame `t + 1`; this is the
        reference's `Model.forward`, and what the MS-RNN loss and the
        parity tests see.

        Args:
            frames: tensor `(batch, T, H, W, C)` of true frames.
            feed_probabilities: per step `t = 0 .. steps - 1`, the probability
                of feeding the true frame `frames[:, t]` rather than the
                previous prediction; Python 1.0 / 0.0 are static choices,
                anything else draws a Bernoulli mask per sample. Defaults to
                feeding the `input_length` context frames and then running
                free for `output_length - 1` steps. Its length is the number
                of steps.

            return_decoupling: bool. Also return PredRNN-V2's decoupling
                terms, `|cos(adapter(Δc), adapter(Δm))|` per step, layer,
                sample and channel, `(steps, layers, batch, filters)`.

        Returns:
            Tensor `(batch, steps, H, W, C)`; entry `t` predicts frame `t + 1`.
        """
        if return_decoupling and self.adapter is None:
            raise ValueError(
                "Only cells that return memory increments have a decoupling loss, not "
                f"{self.cell!r}."
            )
        predictions, decoupling = self._unroll(frames, feed_probabilities, return_decoupling)
        return (predictions, decoupling) if return_decoupling else predictions

    def _unroll(self, frames, feed_probabilities, with_decoupling):
        if not self.built:
            self.build(tuple(frames.shape))
        if feed_probabilities is None:
            feed_probabilities = FreeRunning().feed_probabilities(
                None, self.input_length, self.output_length
            )
        steps = len(feed_probabilities)
        if _is_static(feed_probabilities[0], 0.0):
            raise ValueError(
                "The first step has no previous prediction: its feed probability must be 1."
            )
        fed_steps = [t for t, p in enumerate(feed_probabilities) if not _is_static(p, 0.0)]
        if frames.shape[1] is not None and fed_steps and frames.shape[1] <= fed_steps[-1]:
            raise ValueError(
                f"Step {fed_steps[-1]} may feed a true frame but only {frames.shape[1]} frames "
                "were given."
            )
        x = patch_frames(ops.cast(frames, self.compute_dtype), self.patch_size)
        uniform = None
        if any(not _is_static(p, 0.0) and not _is_static(p, 1.0) for p in feed_probabilities):
            uniform = uniform_for_global_batch(
                (ops.shape(x)[0], steps, 1, 1, 1), seed=self.seed_generator
            )
        states, memory = self._initial_states(x[:, 0])
        # The first step reads no lateral inputs from a previous step, so it
        # runs before the loop, whichever form the loop takes.
        prediction, states, memory, increments = self._step(
            x[:, 0], states, memory, first_step=True
        )
        first_terms = self._decoupling(increments) if with_decoupling else None
        predictions, decoupling = prediction[None], (first_terms[None] if with_decoupling else None)
        later_steps = feed_probabilities[1:]
        if later_steps:
            run_steps = self._unrolled_steps if self.unroll else self._scanned_steps
            carry = (prediction, states, memory)
            later = run_steps(x, uniform, later_steps, carry, with_decoupling)
            predictions = ops.concatenate([predictions, later[0]])
            if with_decoupling:
                decoupling = ops.concatenate([decoupling, later[1]])
        predictions = unpatch_frames(ops.moveaxis(predictions, 0, 1), self.patch_size)
        return predictions, decoupling

    def _unrolled_steps(self, x, uniform, feed_probabilities, carry, with_decoupling):
        """Steps `1 ..` unrolled in Python: (predictions, decoupling terms), time first."""
        prediction, states, memory = carry
        predictions, terms = [], []
        for t, probability in enumerate(feed_probabilities, start=1):
            if _is_static(probability, 1.0):
                step_input = x[:, t]
            elif _is_static(probability, 0.0):
                step_input = prediction
            else:
                step_input = ops.where(uniform[:, t] < probability, x[:, t], prediction)
            prediction, states, memory, increments = self._step(step_input, states, memory)
            predictions.append(prediction)
            if with_decoupling:
                terms.append(self._decoupling(increments))
        return ops.stack(predictions), (ops.stack(terms) if with_decoupling else None)

    def _scanned_steps(self, x, uniform, feed_probabilities, carry, with_decoupling):
        """Steps `1 ..` as one loop of the graph (`backend.time_loop.scan`)."""
        steps = len(feed_probabilities)
        frames = x[:, 1:]
        if frames.shape[1] is None or frames.shape[1] < steps:
            # Free-running steps read no true frame: zeros stand in for them.
            padding = ops.repeat(ops.zeros_like(x[:, :1]), steps, axis=1)
            frames = ops.concatenate([frames, padding], axis=1)
        feeds = ops.stack(
            [
                self._feed_mask(probability, uniform, t, ops.shape(x)[0])
                for t, probability in enumerate(feed_probabilities, start=1)
            ]
        )

        def step(carry, step_inputs):
            prediction, states, memory = carry
            frame, feed = step_inputs
            prediction, states, memory, increments = self._step(
                ops.where(feed, frame, prediction), states, memory
            )
            terms = self._decoupling(increments) if with_decoupling else None
            return (prediction, states, memory), (prediction, terms)

        _, outputs = time_loop.scan(step, carry, (ops.moveaxis(frames[:, :steps], 1, 0), feeds))
        return outputs

    def _feed_mask(self, probability, uniform, t, batch_size):
        """`(batch, 1, 1, 1)` booleans: the samples that step `t` feeds a true frame."""
        if _is_static(probability, 1.0) or _is_static(probability, 0.0):
            return ops.full((batch_size, 1, 1, 1), float(probability) == 1.0, dtype="bool")
        return uniform[:, t] < probability

    def _decoupling(self, increments):
        """PredRNN-V2's decoupling terms of one step, `(layers, batch, filters)`."""
        return ops.stack([self._abs_cosine(*pair) for pair in increments])

    def _abs_cosine(self, delta_c, delta_m):
        """|cosine| over space between the adapted increments, per channel: (B, C)."""

        def normalized(delta):
            flat = ops.reshape(
                _apply(self.adapter, delta), (ops.shape(delta)[0], -1, self.layer_filters[0])
            )
            norm = ops.sqrt(ops.sum(ops.square(flat), axis=1, keepdims=True))
            return flat / ops.maximum(norm, 1e-12)

        return ops.abs(ops.sum(normalized(delta_c) * normalized(delta_m), axis=1))

    def _initial_states(self, first_frame):
        batch_size = ops.shape(first_frame)[0]
        height, width = first_frame.shape[1:3]
        states = [
            cell.get_initial_state(batch_size, height // scale, width // scale)
            for cell, scale in zip(self.cells, self.scales)
        ]
        memory = None
        if self.uses_memory:
            scale = self.scales[0]
            memory = ops.zeros(
                (batch_size, height // scale, width // scale, self.layer_filters[0]),
                dtype=self.compute_dtype,
            )
        return states, memory

    def _step(self, frame, states, memory, first_step=False):
        """Advances every layer by one step.

        Returns (prediction, states, memory, increments); `increments` lists
        each layer's (Δc, Δm) for cells that return them.
        """
        x = frame if self.embedding is None else _apply(self.embedding, frame)
        outputs, new_states, increments = [], [], []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                x = rescale(outputs[-1], self.scales[layer - 1], self.scales[layer])
                source = self.skip_sources[layer]
                if source is not None:
                    x = x + outputs[source]
                if memory is not None:
                    memory = rescale(memory, self.scales[layer - 1], self.scales[layer])
            step = cell(
                x,
                states[layer],
                memory,
                **self._lateral_inputs(layer, states, new_states, first_step),
            )
            # Gradients of carried states chain through every step (and layer).
            memory = store_gradient(step.memory)
            if step.increments is not None:
                increments.append(step.increments)
            outputs.append(step.output)
            new_states.append(store_gradient(step.states))
        if memory is not None:
            memory = rescale(memory, self.scales[-1], self.scales[0])
        return _apply(self.readout, outputs[-1]), new_states, memory, increments

    def _lateral_inputs(self, layer, states, new_states, first_step):
        """The extra call arguments of `cells[layer]`, from the layer below."""
        cell, extra = self.cells[layer], {}
        if layer == 0:
            return {"previous_input": None} if cell.takes_previous_input else {}

        def from_below(tensor):
            return rescale(tensor, self.scales[layer - 1], self.scales[layer])

        if cell.takes_previous_input:
            extra["previous_input"] = None if first_step else from_below(states[layer - 1][0])
        if cell.takes_difference_below:
            names = self.cells[layer - 1].state_names
            extra["difference_below"] = (
                from_below(new_states[layer - 1][names.index("difference")])
                if "difference" in names
                else None
            )
        return extra

    # === Forecasting ===

    def forecast(self, frames, batch_size=None, verbose=0):
        """Forecasts from user frames, checked and converted first.

        Unlike `predict`, which takes model-ready tensors, `forecast`
        applies `keras_msrnn.frames.to_unit_frames` (uint8 0..255 frames are
        scaled; NaN, infinite and out-of-range values are refused with a
        clear error) and clips the forecast to `[0, 1]`.

        Args:
            frames: `(time, H, W, C)` for one sequence or
                `(batch, time, H, W, C)`; the last `input_length` frames are
                the context.
            batch_size: int. Sequences per `predict` batch.
            verbose: as in `predict`.

        Returns:
            A numpy array `(output_length, H, W, C)` or
            `(batch, output_length, H, W, C)`, like `frames`.

        Example:

        ```python
        model = keras_msrnn.from_preset("ms-predrnn-mnist")
        future = model.forecast(np.load("frames.npy")[..., None])  # uint8 (T, 64, 64, 1)
        ```
        """
        context = to_unit_frames(frames, "frames")
        single = context.ndim == 4
        if single:
            context = context[None]
        self._check_frame_shape(context.shape, "frames")
        if context.shape[1] < self.input_length:
            raise ValueError(
                f"frames hold {context.shape[1]} time steps; this model needs "
                f"input_length={self.input_length}."
            )
        forecast = np.clip(
            np.asarray(self.predict(context, batch_size=batch_size, verbose=verbose)), 0.0, 1.0
        )
        return forecast[0] if single else forecast

    # === Export ===

    def export(
        self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs
    ):
        """Exports the forecaster for inference; see `keras.Model.export`.

        Works straight after `from_preset`: without `input_signature` the
        model's own context shape `(batch, input_length, H, W, C)` is used,
        with a free batch size, except on PyTorch, whose exporter needs it
        fixed (`batch_size=1` unless given in `kwargs`). Formats per backend:
        `"tf_saved_model"` from TensorFlow and JAX; `"onnx"` from TensorFlow
        (needs `tf2onnx`) and PyTorch (needs `onnx` and `onnxscript`). The
        exported graph unrolls the time loop whatever `unroll` says: tf2onnx
        cannot convert TensorFlow's loop over tensor arrays, and inference
        graphs are traced once.

        Example:

        ```python
        model = keras_msrnn.from_preset("ms-predrnn-mnist")
        model.export("forecaster", format="tf_saved_model")
        ```
        """
        batch_size = kwargs.pop("batch_size", 1 if keras.config.backend() == "torch" else None)
        if input_signature is None:
            if self.frame_shape is None:
                raise ValueError(
                    "Build the model (call it once or load a preset) before exporting it."
                )
            shape = (batch_size, self.input_length, *self.frame_shape)
            input_signature = [keras.InputSpec(shape=shape, dtype="float32")]
        unroll, self.unroll = self.unroll, True
        try:
            return super().export(
                filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs
            )
        finally:
            self.unroll = unroll

    # === Keras loops ===
    # On TensorFlow the first generator iterator of a process sets glibc's
    # allocator so that each large tensor is mapped afresh (see
    # `undo_generator_malloc_trim`): a third of a MIM step in the kernel.
    # The loops below undo it after each pass's first batch. They also build
    # the model from the first batch's shape before the loop traces its step:
    # tf.function traces a function again when its first trace made
    # variables, which doubled the first step of an unbuilt model. The
    # arguments are `keras.Model`'s.

    def fit(self, x=None, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`; on TensorFlow, traced once, freed buffers reusable."""
        self._build_from_data(x)
        callbacks = with_malloc_thresholds_restored(callbacks)
        return super().fit(x, *args, callbacks=callbacks, **kwargs)

    def evaluate(self, x=None, *args, callbacks=None, **kwargs):
        """`keras.Model.evaluate`; on TensorFlow, traced once, freed buffers reusable."""
        self._build_from_data(x)
        callbacks = with_malloc_thresholds_restored(callbacks)
        return super().evaluate(x, *args, callbacks=callbacks, **kwargs)

    def predict(self, x, *args, callbacks=None, **kwargs):
        """`keras.Model.predict`; on TensorFlow, traced once, freed buffers reusable."""
        self._build_from_data(x)
        callbacks = with_malloc_thresholds_restored(callbacks)
        return super().predict(x, *args, callbacks=callbacks, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        """`keras.Model.train_on_batch`; on TensorFlow, traced once."""
        self._build_from_data(x)
        return super().train_on_batch(x, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        """`keras.Model.test_on_batch`; on TensorFlow, traced once."""
        self._build_from_data(x)
        return super().test_on_batch(x, *args, **kwargs)

    def predict_on_batch(self, x):
        """`keras.Model.predict_on_batch`; on TensorFlow, traced once."""
        self._build_from_data(x)
        return super().predict_on_batch(x)

    def _build_from_data(self, data):
        if not self.built:
            shape = _context_shape(data)
            if shape is not None:
                self.build(shape)

    def make_train_function(self, force=False):
        # Keras on TensorFlow (without a distribution strategy) builds the
        # optimizer inside the first traced step; creating variables there
        # makes tf.function trace the whole step a second time.
        if self.built and self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)

    # === Training defaults ===

    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """Configures training; `"auto"` picks MS-RNN's Adam(3e-4) and loss.

        Args:
            optimizer: a Keras optimizer or `"auto"` for `Adam(3e-4)`.
            loss: a Keras loss or `"auto"` for the model's `loss`:
                `keras_msrnn.losses.MSRNNLoss()` or mean squared error.
            **kwargs: further arguments of `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(learning_rate=3e-4)
        if loss == "auto":
            loss = MSRNNLoss() if self.loss_name == "msrnn" else keras.losses.MeanSquaredError()
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compile() on load for models that override it; ours
        # only fills in defaults, so the saved arguments apply unchanged.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (tuple, list)) and isinstance(input_shape[0], (tuple, list)):
            input_shape = input_shape[0]
        return (input_shape[0], self.output_length) + tuple(input_shape[2:])

    # === Presets ===

    def save_to_preset(self, preset_dir, metadata=None, weights_dtype=None):
        """Writes this model as a preset folder; see `keras_msrnn.save_to_preset`."""
        from keras_msrnn.presets import save_to_preset

        return save_to_preset(self, preset_dir, metadata, weights_dtype)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Loads a preset holding this class; see `keras_msrnn.from_preset`."""
        from keras_msrnn.presets import from_preset

        return from_preset(preset, load_weights=load_weights, expected_class=cls, **kwargs)

    # === Serialization ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": self.cell,
                "filters": self.filters,
                "scales": list(self.scales),
                "kernel_size": self.kernel_size,
                "input_length": self.input_length,
                "output_length": self.output_length,
                "patch_size": self.patch_size,
                "sampling": keras.saving.serialize_keras_object(self.sampling),
                "reconstruction_loss_weight": self.reconstruction_loss_weight,
                "loss": self.loss_name,
                "decoupling_loss_weight": self.decoupling_loss_weight,
                "decoupling_reduction": self.decoupling_reduction,
                "use_bias": self.use_bias,
                "embed_inputs": self.embed_inputs,
                "cell_config": self.cell_config,
                "seed": self.seed,
                "unroll": self.unroll,
            }
        )
        return config


# Per-frame losses `(B, T)` of the `loss` option.
FRAME_LOSSES = {"msrnn": msrnn_loss, "mse": mean_squared_error}


def _context_shape(data):
    """The context's shape in `data`'s first batch, where known without a generator.

    `data` is what a Keras loop takes as `x`: `context`, `(context, future)`,
    a `tf.data.Dataset` or a `keras.utils.PyDataset` of such `x` (with `y`).
    Returns None where the shape is unknown (generators, unknown frame sizes).
    """
    if hasattr(data, "element_spec"):  # tf.data.Dataset
        spec = data.element_spec
        data = spec[0] if isinstance(spec, tuple) else spec
    elif isinstance(data, keras.utils.PyDataset):
        if not data.num_batches:
            return None
        batch = data[0]
        data = batch[0] if isinstance(batch, tuple) else batch
    if isinstance(data, (tuple, list)) and data:
        data = data[0]
    shape = getattr(data, "shape", None)
    if shape is None or len(shape) != 5 or None in tuple(shape)[2:]:
        return None
    return tuple(shape)


def _apply(conv, inputs):
    """A 1x1 convolution of the stack, on the fast path of the cells' convolutions."""
    return conv2d_same(inputs, conv.kernel, conv.bias)


def _is_static(probability, value):
    return isinstance(probability, (int, float)) and float(probability) == value
