# Two commands do everything on a fresh machine:
#   make run    the operator on your cluster (or on the local control plane), with examples
#   make test   every test: unit, then integration and end-to-end on the local control plane
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit lint crds docs cluster-up cluster-down bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	hack/run.sh

test: $(STAMP)
	hack/cluster.sh up
	KUBECONFIG=$$(hack/cluster.sh kubeconfig) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

crds: $(STAMP)
	$(BIN)/workunits crds --output-dir crds
	cp crds/*.yaml manifests/crds/
	cp crds/*.yaml charts/workunits/crds/

docs: $(STAMP)
	$(BIN)/python -m workunits.api.reference > docs/reference.md

cluster-up:
	hack/cluster.sh up

cluster-down:
	hack/cluster.sh down

# The benchmarks, on a cluster of their own (named bench) so that their load does not
# disturb tests on the default one. BENCH_ARGS: e.g. --repeat 1 --only overhead.
bench: $(STAMP)
	WORKUNITS_CLUSTER=bench WORKUNITS_NODES=12 hack/cluster.sh up >/dev/null
	KUBECONFIG=$$(WORKUNITS_CLUSTER=bench hack/cluster.sh kubeconfig) $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .run
