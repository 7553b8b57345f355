# Two entry points for a fresh machine: `make demo` and `make test`.
# Everything they need is installed here; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test test-fast lint install data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from Debian's `dataset-fashion-mnist` where apt is available (as root);
# elsewhere synthaug downloads it from the official source and verifies checksums.
data:
	@if [ ! -f $(FASHION_MNIST_DIR)/t10k-labels-idx1-ubyte.gz ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi

demo: install data
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
