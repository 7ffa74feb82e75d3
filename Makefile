# Every target sets up its own virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS := tensorflow torch jax
PYTEST_ARGS ?=

.PHONY: forecast test test-fast lint run-tests bench zoo-train clean

PRESET ?= ms-predrnn-mnist
SAMPLE ?= examples/data/moving_mnist_test_0.npy
FORECAST_BACKEND ?= torch

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[cpu,plot,video,export,test]"
	touch $@

# The main job: a forecast from the bundled pretrained preset on a bundled
# Moving MNIST sequence, offline. Writes forecast/forecast.{gif,png,npy}.
forecast: $(BIN)/.installed
	KERAS_BACKEND=$(FORECAST_BACKEND) $(BIN)/keras-msrnn predict $(PRESET) $(SAMPLE) --output forecast --overwrite

# The whole suite, fast and large tiers, once per backend, spread over the
# machine's cores (most tests are bound by single-threaded op dispatch), after
# the linter; fails if any backend fails. `make test-fast` is the edit-test loop.
test: $(BIN)/.installed lint
	@$(MAKE) --no-print-directory run-tests TIER=--run-large

test-fast: $(BIN)/.installed
	@$(MAKE) --no-print-directory run-tests TIER=

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

run-tests:
	@failed=""; \
	for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q -p no:cacheprovider -n auto $(TIER) $(PYTEST_ARGS) tests \
			|| failed="$$failed $$backend"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "all backends passed"

# Plain vs multi-scale training step time and peak memory, all eight cells on
# every backend, appended to $(BENCH_OUT) (a rerun resumes) and tabulated.
# The defaults are the README's CPU table; BENCH_ARGS="--frame 64 --filters 64
# --batch 4 --input-length 10 --output-length 10" is MS-RNN's Moving MNIST size.
BENCH_ARGS ?= --frame 32 --filters 16 --batch 2 --input-length 5 --output-length 5 --steps 2
BENCH_OUT ?= bench.jsonl
bench: $(BIN)/.installed
	@for backend in $(BACKENDS); do \
		KERAS_BACKEND=$$backend $(BIN)/keras-msrnn bench --cell all $(BENCH_ARGS) --output $(BENCH_OUT) || exit 1; \
	done
	$(BIN)/keras-msrnn bench --table $(BENCH_OUT)

# The zoo's Moving MNIST presets at the CPU budget, one after another, each
# evaluated on the fixed test split and written as a preset folder. Every
# run checkpoints in runs/zoo/<name>: rerunning `make zoo-train` after a stop
# continues where it stopped and skips what is finished.
ZOO_BACKEND ?= tensorflow
# TrajGRU's warp is one grid-sample kernel on PyTorch, a gather elsewhere;
# MotionRNN's first step compiles for 15 minutes on TensorFlow (21 s on PyTorch).
ZOO_TORCH_NAMES ?= ms-trajgru-mnist trajgru-mnist ms-motionrnn-mnist motionrnn-mnist
ZOO_DATA ?= ../shared/data/mnist
# The main job's preset ships inside the package; the others live in zoo/presets.
ZOO_BUNDLED := ms-predrnn-mnist
ZOO_NAMES ?= ms-predrnn-mnist predrnn-mnist ms-convlstm-mnist convlstm-mnist \
	ms-predrnn-v2-mnist predrnn-v2-mnist ms-predrnn-pp-mnist predrnn-pp-mnist ms-mim-mnist mim-mnist \
	ms-motionrnn-mnist motionrnn-mnist ms-trajgru-mnist trajgru-mnist ms-preciplstm-mnist preciplstm-mnist
zoo-train: $(BIN)/.installed
	@for name in $(ZOO_NAMES); do \
		out=zoo/presets/$$name; [ $$name = $(ZOO_BUNDLED) ] && out=keras_msrnn/presets/builtin/$$name; \
		backend=$(ZOO_BACKEND); case " $(ZOO_TORCH_NAMES) " in *" $$name "*) backend=torch;; esac; \
		KERAS_BACKEND=$$backend $(BIN)/keras-msrnn train $$name --variant cpu --workdir runs/zoo/$$name \
			--data-dir $(ZOO_DATA) --verbose 2 --preset-out $$out || exit $$?; \
	done

clean:
	rm -rf $(VENV)
