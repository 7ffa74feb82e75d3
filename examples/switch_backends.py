"""The same preset gives the same forecast on TensorFlow, PyTorch and JAX.

    python examples/switch_backends.py [--preset ms-predrnn-mnist]

Keras picks its backend once per process, so each backend runs in a child
process (`KERAS_BACKEND=...`); the forecasts are then compared.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BACKENDS = ("tensorflow", "torch", "jax")
CHILD = """
import sys, numpy as np, keras_msrnn
from keras_msrnn import visualize
model = keras_msrnn.from_preset(sys.argv[1])
context = visualize.load_frames(sys.argv[2])[: model.input_length]
np.save(sys.argv[3], np.asarray(model.predict(context[None], verbose=0)))
"""

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
parser.add_argument("--preset", default="ms-predrnn-mnist")
parser.add_argument("--sample", default=os.path.join(HERE, "data", "moving_mnist_test_1.npy"))
args = parser.parse_args()

forecasts = {}
with tempfile.TemporaryDirectory() as folder:
    for backend in BACKENDS:
        path = os.path.join(folder, f"{backend}.npy")
        environment = dict(os.environ, KERAS_BACKEND=backend)
        subprocess.run(
            [sys.executable, "-c", CHILD, args.preset, args.sample, path],
            env=environment,
            check=True,
        )
        forecasts[backend] = np.load(path)

reference = forecasts[BACKENDS[0]]
for backend, forecast in forecasts.items():
    print(
        f"{backend:<11} max |difference| to {BACKENDS[0]}: {np.abs(forecast - reference).max():.2e}"
    )
assert all(np.allclose(f, reference, atol=1e-4) for f in forecasts.values()), "backends disagree"
print("all backends agree within 1e-4")
