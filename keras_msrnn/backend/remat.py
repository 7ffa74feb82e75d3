"""BACKEND-SPECIFIC: rematerialisation that stays cheap to trace on TensorFlow.

`keras.remat` is `tf.recompute_grad` on TensorFlow. Inside a `tf.function`,
its backward pass wraps the recomputation in a second `tf.custom_gradient`,
which walks the graph back from the recomputed gradients to find captured
variables. The walk only stops at the incoming gradients, so it crosses the
whole forward graph: tracing a training step costs time quadratic in the
number of rematerialised calls. PrecipLSTM calls 60 per cell and step, and a
6-layer, 10-frame training step did not finish tracing in over an hour.

`remat` here is `keras.remat` on JAX and PyTorch. On TensorFlow it is one
`tf.custom_gradient` whose gradient recomputes `f` under a tape; it supports
reverse-mode gradients of functions without variables, which is what the
callers need.
"""

import keras


def remat(function):
    """Wraps `function` so that its activations are recomputed for the gradient.

    Args:
        function: a function of tensors, returning a tensor, that creates and
            reads no variables.

    Returns:
        A function with the same results whose backward pass recomputes
        `function` instead of keeping its intermediate tensors.
    """
    if keras.config.backend() != "tensorflow":
        return keras.remat(function)
    return _tensorflow_remat(function)


def _tensorflow_remat(function):
    import tensorflow as tf

    @tf.custom_gradient
    def rematerialised(*args):
        # Cut from the tape, so that eager execution does not record (and
        # keep) the intermediate tensors that rematerialisation drops.
        result = function(*[tf.stop_gradient(arg) for arg in args])

        def gradient(upstream):
            inputs = list(args)
            if not tf.executing_eagerly():
                # A data dependency on the incoming gradient keeps graph
                # optimisers from merging the recomputation with the forward
                # pass (which would keep the activations alive after all); 0,
                # or NaN where the gradient is NaN, as in `tf.recompute_grad`.
                element = tf.reduce_max(tf.reshape(upstream, [-1])[:1])
                after_upstream = tf.where(element == element, 0.0, float("nan"))
                inputs = [arg + tf.cast(after_upstream, arg.dtype) for arg in inputs]
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                recomputed = function(*inputs)
            return tape.gradient(
                recomputed,
                inputs,
                output_gradients=upstream,
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )

        return result, gradient

    return rematerialised
