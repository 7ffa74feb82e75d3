# Every target sets up its own virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS := tensorflow torch jax
PYTEST_ARGS ?=

.PHONY: forecast test bench clean

PRESET ?= ms-predrnn-mnist-cpu
SAMPLE ?= examples/data/moving_mnist_test_0.npy
FORECAST_BACKEND ?= torch

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,test]"
	touch $@

# The main job: a forecast from the bundled pretrained preset on a bundled
# Moving MNIST sequence, offline. Writes forecast/forecast.{gif,png,npy}.
forecast: $(BIN)/.installed
	KERAS_BACKEND=$(FORECAST_BACKEND) $(BIN)/keras-msrnn predict $(PRESET) $(SAMPLE) --output forecast

# The fast suite once per backend, spread over the machine's cores (most
# tests are bound by single-threaded op dispatch); fails if any backend fails.
test: $(BIN)/.installed
	@failed=""; \
	for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q -p no:cacheprovider -n auto $(PYTEST_ARGS) tests || failed="$$failed $$backend"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "all backends passed"

# Plain vs multi-scale training step time and peak memory on every backend.
bench: $(BIN)/.installed
	@for backend in $(BACKENDS); do for cell in convlstm predrnn; do \
		KERAS_BACKEND=$$backend $(BIN)/keras-msrnn bench --cell $$cell --frame 64 --json; \
	done; done

clean:
	rm -rf $(VENV)
