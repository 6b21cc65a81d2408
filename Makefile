# genlab: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# On the development machine torch and torchvision come from local disk at these versions; elsewhere pip
# resolves them as usual.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Where `make bench` finds MNIST (a folder with MNIST/raw/, see docs/training.md#data)
# and Imagenette (a folder with imagenette2-160/); DEVICE=cuda runs it on a GPU.
DATA_DIR ?= data
IMAGENETTE_DIR ?= $(DATA_DIR)
DEVICE ?= cpu
# The port `make tensorboard` serves on.
TENSORBOARD_PORT ?= 6006

.PHONY: help install test test-slow bench gpu-check lint format tensorboard report results-tables clean

help:  ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

install:  ## create .venv and install genlab (editable) with the dev extras
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[dev]"

test:  ## run the test suite (fast tests; `slow` ones are skipped)
	$(PY) -m pytest -q

test-slow:  ## run every test, the slow ones too
	$(PY) -m pytest -q -m ""

bench:  ## genlab against a hand-written loop, knobs, scaling, data path, evaluation, flow sampling: tables + JSON
	$(PY) -m benchmarks.run --mnist-dir $(DATA_DIR) --imagenette-dir $(IMAGENETTE_DIR) --device $(DEVICE)

gpu-check:  ## on one GPU, <8 min: bench, fp16 + DDP tests, data.device=auto, 2 epochs of best_mnist_vae|gan, 1 of best_mnist_flow: one JSON
	$(PY) -m benchmarks.gpu_check --data-dir $(DATA_DIR) --imagenette-dir $(IMAGENETTE_DIR)

lint:  ## ruff check, then mypy (configured in pyproject.toml)
	$(PY) -m ruff check .
	$(PY) -m mypy

format:  ## ruff format and fix
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

tensorboard:  ## TensorBoard on every run under outputs/, at http://localhost:6006 (TENSORBOARD_PORT=...)
	@echo "TensorBoard at http://localhost:$(TENSORBOARD_PORT) (Ctrl-C stops it)"
	$(VENV)/bin/tensorboard --logdir outputs --port $(TENSORBOARD_PORT)

report:  ## write the VAE-vs-GAN report of a sweep: make report SWEEP=outputs/vae_vs_gan/multiruns/<time>
	@test -n "$(SWEEP)" || { echo "usage: make report SWEEP=<sweep dir>"; exit 2; }
	$(PY) compare.py $(SWEEP)

results-tables:  ## render the results tables of README.md and docs/ from results/**/*.json
	$(PY) -m genlab.report.results_tables

clean:  ## remove caches (keeps outputs/)
	rm -rf .pytest_cache .ruff_cache `find . -name __pycache__ -not -path './.venv/*'`
