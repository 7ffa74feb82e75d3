"""BACKEND-SPECIFIC: recurrent states whose gradients XLA stores at every step.

PredRNN's spatiotemporal memory (`m' = f' * m + i' * g'`, and MIM's, and
PredRNN-V2's) flows through every layer and every step of a stack, so its
gradient is one long chain of elementwise multiplies and adds, from the last
layer of the last step back to the first. XLA on CPU fuses elementwise
producers into each of their consumers as long as every consumer can fuse
them; every link of this chain can, so XLA stores none of it and every fusion
that reads the gradient at some link recomputes the chain up to it: work
quadratic in `layers x steps`. In a plain 6-layer PredRNN over 9 steps these
fusions took two thirds of the training step. The multi-scale stack escaped
it only because its max-pooling and upsampling end the chain at every change
of scale. Each layer's own states (an LSTM's `c' = f * c + i * g`) make
shorter chains of the same kind, through the steps.

`jax.lax.optimization_barrier` does not help: XLA's CPU pipeline expands it
before fusion. A matrix product is never fused on CPU, so the gradient goes
through one with the identity, which forces XLA to store it once per layer
and step. The product is exact (`g * 1 + 0 * ...`) and costs `C` multiply-adds
a value, a fraction of the cell's own `3 x 3` convolutions. TensorFlow (without
XLA) and PyTorch do not fuse across operations; there the function is the
identity. On JAX it applies on every device; it was measured on CPU only.
"""

import functools

import keras


@functools.cache
def _jax_identity_storing_gradient():
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def identity(x):
        return x

    def forward(x):
        return x, None

    def backward(_, gradient):
        eye = jnp.eye(gradient.shape[-1], dtype=gradient.dtype)
        return (jnp.einsum("...c,cd->...d", gradient, eye),)

    identity.defvjp(forward, backward)
    return identity


def store_gradient(tensors):
    """`tensors` unchanged; on JAX, their gradients are buffers XLA cannot fuse away.

    Args:
        tensors: a channels-last tensor, a nested structure of them, or
            `None` (returned as it is).

    Returns:
        `tensors`. On JAX each one's gradient passes through a product with
        the identity over the channels, which XLA does not fuse into the
        gradient's consumers, so a chain of elementwise updates through
        them is computed once instead of once per consumer.
    """
    if tensors is None or keras.config.backend() != "jax":
        return tensors
    return keras.tree.map_structure(_jax_identity_storing_gradient(), tensors)
