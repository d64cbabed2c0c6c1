# Everything runs in .venv, created on first use and reused after.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the releases this project is measured with (pip takes them from local disk here).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo lint format test test-all slurm slurm-stop slurm-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e '.[dev,optuna,slurm,onnx,detect,serve]'
	touch $@

install: $(VENV)/.installed

demo: install  ## train the scratch CNN on the built-in synthetic faces, then: tensorboard --logdir outputs
	$(BIN)/python -m fer_lightning.train experiment=demo

lint: install  ## ruff: the lint rules and the formatting (pyproject.toml), changing nothing
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install  ## ruff: format, then fix what the lint rules can fix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

test: lint  ## lint, then the fast tests (the default run; CI runs it)
	$(BIN)/python -m pytest

test-all: lint  ## lint, the fast tests and the ones marked slow
	$(BIN)/python -m pytest -m ""

slurm:  ## a one-node SLURM on this machine (as root; installs slurm-wlm and munge when missing): .ci/slurm.sh
	.ci/slurm.sh start

slurm-stop:  ## stop it: no SLURM or munge daemon left that make slurm started
	.ci/slurm.sh stop

slurm-test: install  ## sweeps, preemption and a failing job as SLURM jobs, through a running cluster (make slurm)
	$(BIN)/python -m pytest -m slurm

clean:
	rm -rf $(VENV) outputs/train outputs/*/multiruns
