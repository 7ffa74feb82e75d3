"""Backend-specific code. The only package of keras_msrnn that imports a
backend framework (TensorFlow, PyTorch or JAX) directly, lazily, inside
functions; everything else uses `keras.ops`."""
