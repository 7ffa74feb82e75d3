import os
from pathlib import Path

import keras
import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(
    os.environ.get("KERAS_MSRNN_REFERENCE_DIR", REPO.parent / "shared" / "reference" / "msrnn")
)

DATA_DIR = Path(os.environ.get("KERAS_MSRNN_SHARED_DATA", REPO.parent / "shared" / "data"))


def fast_subset(values, fast):
    """Parametrize values: those in `fast` run in the fast tier, the rest are `large`.

    Tuples are several arguments, as in `parametrize("a,b", [(1, 2), ...])`.
    """

    def large(value):
        arguments = value if isinstance(value, tuple) else (value,)
        return pytest.param(*arguments, marks=pytest.mark.large)

    return [value if value in fast else large(value) for value in values]


def pytest_addoption(parser):
    parser.addoption(
        "--run-large", action="store_true", help="run slow checks (training, benchmarks)"
    )


def pytest_configure(config):
    keras.config.disable_traceback_filtering()
    if os.environ.get("PYTEST_XDIST_WORKER") and keras.config.backend() == "torch":
        # One intra-op thread per xdist worker: torch's OpenMP threads
        # oversubscribe the cores otherwise and slow the suite down severalfold.
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large check: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def reference_dir():
    if not REFERENCE_DIR.is_dir():
        pytest.fail(
            f"Reference outputs not found at {REFERENCE_DIR}; set KERAS_MSRNN_REFERENCE_DIR."
        )
    return REFERENCE_DIR


@pytest.fixture
def shared_data():
    """The project's real data folder (MNIST, radar, video); see its README."""
    if not DATA_DIR.is_dir():
        pytest.fail(f"Shared data not found at {DATA_DIR}; set KERAS_MSRNN_SHARED_DATA.")
    return DATA_DIR


def save_tiny_preset(folder, cell="convlstm", input_length=3, output_length=2, size=64, filters=2):
    """A tiny MSStack on `size`x`size` frames, saved as a preset; returns the model."""
    import numpy as np

    import keras_msrnn

    model = keras_msrnn.MSStack(
        cell=cell,
        filters=filters,
        scales=(1, 2, 1),
        input_length=input_length,
        output_length=output_length,
    )
    model(np.zeros((1, input_length, size, size, 1), "float32"))
    model.save_to_preset(str(folder))
    return model


@pytest.fixture
def hub(monkeypatch):
    """A Hub on 127.0.0.1 that the real huggingface_hub client talks to."""
    import huggingface_hub
    import huggingface_hub.constants
    import huggingface_hub.hf_api

    from tests.hub_server import FakeHub

    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
        monkeypatch.setattr(
            huggingface_hub.constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            server.url + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", server.url)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        yield server


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
