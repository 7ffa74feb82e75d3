"""BACKEND-SPECIFIC: a recurrent stack's time loop as one loop of the graph.

Unrolled in Python, a stack over `T` steps traces `T` copies of every layer,
so the graph that TensorFlow optimises and XLA compiles grows with the
sequence, and so does the first (tracing) step. As a graph loop the step is
traced once (`MSStack(unroll=False)`). What it costs to run depends on the
backend (measured on a 2-core CPU, PredRNN 6 x 32 at 64x64, 10 -> 10):

- TensorFlow: a `tf.while_loop` over tensor arrays. The MS stack's first
  step went from 33.0 to 19.1 s at the same step time; the plain stack's from
  39.0 to 35.5 s, but its step from 15.3 to 18.1 s.
- JAX: `jax.lax.scan`. XLA on CPU runs the convolutions of a loop body
  without its fast convolution path (jax-ml/jax#12868): 175-240 s a step
  against 11.7 s unrolled.
- PyTorch runs eagerly: there is no graph, and both are the same Python loop.
"""

import keras
from keras import tree


def scan(step, carry, inputs):
    """Runs `carry, output = step(carry, inputs[t])` over the leading axis of `inputs`.

    Args:
        step: function `(carry, step_inputs) -> (carry, outputs)`; `carry`
            keeps its structure, shapes and dtypes from step to step.
        carry: nested structure of tensors, the state before the first step.
        inputs: nested structure of tensors `(steps, ...)`, one slice a step.

    Returns:
        `(carry, outputs)`: the carry after the last step and every step's
        outputs stacked on a new leading axis.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_scan(step, carry, inputs)
    if backend == "jax":
        import jax

        return jax.lax.scan(step, carry, inputs)
    return _python_scan(step, carry, inputs)


def _python_scan(step, carry, inputs):
    flat_inputs = tree.flatten(inputs)
    outputs = []
    for t in range(flat_inputs[0].shape[0]):
        carry, output = step(carry, tree.pack_sequence_as(inputs, [x[t] for x in flat_inputs]))
        outputs.append(output)
    return carry, tree.map_structure(
        lambda *steps: None if steps[0] is None else keras.ops.stack(steps), *outputs
    )


def _flatten(structure):
    """The tensors of a nested structure, without its Nones."""
    return [x for x in tree.flatten(structure) if x is not None]


def _pack(structure, tensors):
    """`structure` with its tensors replaced by `tensors`, in order; Nones stay."""
    tensors = iter(tensors)
    return tree.map_structure(lambda x: None if x is None else next(tensors), structure)


def _tensorflow_scan(step, carry, inputs):
    import tensorflow as tf

    flat_inputs = [tf.convert_to_tensor(x) for x in _flatten(inputs)]
    steps = flat_inputs[0].shape[0]
    input_arrays = [
        tf.TensorArray(x.dtype, size=steps, element_shape=x.shape[1:]).unstack(x)
        for x in flat_inputs
    ]

    def step_inputs(t):
        return _pack(inputs, [array.read(t) for array in input_arrays])

    # The first step runs outside the loop: its outputs give the arrays'
    # dtypes and shapes, and the loop then has one step fewer.
    carry, first_output = step(carry, step_inputs(0))
    output_arrays = [
        tf.TensorArray(x.dtype, size=steps, element_shape=x.shape).write(0, x)
        for x in _flatten(first_output)
    ]

    # `tf.while_loop` carries flat lists of tensors: it cannot carry a None
    # (the memory of a stack without one, outputs it does not return).
    def body(t, flat_carry, output_arrays):
        carry, output = step(_pack(carry_structure, flat_carry), step_inputs(t))
        return (
            t + 1,
            _flatten(carry),
            [array.write(t, x) for array, x in zip(output_arrays, _flatten(output))],
        )

    carry_structure = carry
    _, flat_carry, output_arrays = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(1), _flatten(carry), output_arrays),
        maximum_iterations=steps - 1,
    )
    outputs = _pack(first_output, [array.stack() for array in output_arrays])
    return _pack(carry_structure, flat_carry), outputs
