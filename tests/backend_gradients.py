"""Backend-specific test helper: gradients of a scalar function of a model.

Keras 3 has no backend-agnostic `grad`; this is the one place in the tests
that imports a backend directly.
"""

import keras
import numpy as np


def gradients(loss_fn, variables):
    """Returns d loss_fn() / d variable, as numpy arrays, on the current backend."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, [v.value for v in variables])
    elif backend == "torch":
        for v in variables:
            v.value.grad = None
        loss_fn().backward()
        grads = [v.value.grad for v in variables]
    elif backend == "jax":
        import jax

        def stateless_loss(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss_fn()

        grads = jax.grad(stateless_loss)([v.value for v in variables])
    else:
        raise NotImplementedError(backend)
    return [
        np.zeros(v.shape, "float32") if g is None else keras.ops.convert_to_numpy(g)
        for g, v in zip(grads, variables)
    ]
