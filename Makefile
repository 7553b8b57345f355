# Two entry points for a fresh machine: `make demo` and `make test`.
# Everything they need is installed here; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.installed-core
STAMP := $(VENV)/.installed
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
# --no-compile: Python compiles each module when it is first imported, so byte-compiling every
# file of torch and its CUDA libraries at install time (a third of the install) is skipped.
PIP_INSTALL := $(BIN)/pip install --quiet --no-compile

.PHONY: demo test test-fast lint install install-core data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# synthaug and its core dependencies: what the demo needs (offline, no optional extra).
$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $(CORE_STAMP)

# Every extra (OpenAI, diffusers, Ray, MLflow, timm, Hugging Face datasets, ...) and the test tools.
$(STAMP): pyproject.toml $(CORE_STAMP)
	$(PIP_INSTALL) -e '.[all,dev]'
	touch $(STAMP)

install-core: $(CORE_STAMP)

install: $(STAMP)

# Fashion-MNIST from Debian's `dataset-fashion-mnist` where apt is available (as root);
# elsewhere synthaug downloads it from the official source and verifies checksums.
data:
	@if [ ! -f $(FASHION_MNIST_DIR)/t10k-labels-idx1-ubyte.gz ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi

demo: install-core data
	$(BIN)/synthaug demo

# Every test (CI). `make test-fast` leaves out the tests marked slow (end-to-end studies, Ray
# clusters, worker processes, training runs): under a minute on 2 cores, for the edit-test loop.
test: install data lint
	$(BIN)/python -m pytest -n 2 -q

# The linter runs before the tests; its configuration is [tool.ruff] in pyproject.toml.
lint: install
	$(BIN)/ruff check src tests benchmarks

test-fast: install data
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
