# The two set-up commands of README.md. Each creates .venv and installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools
	# torch 2.14.1 + torchvision 0.29.1 lie on disk here; pinning them keeps the resolution offline.
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Until `assetgan demo` exists: the most complete job there is (a turntable of a project mesh).
demo: $(STAMP)
	mkdir -p runs/demo
	$(BIN)/python -c "from assetgan.inverse_graphics.mesh import icosphere, save_mesh; save_mesh(icosphere(2), 'runs/demo/sphere.ply')"
	$(BIN)/assetgan render runs/demo/sphere.ply --out runs/demo/turntable.png

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs
