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

# Until `assetgan demo` exists: the most complete job there is on the embedded default: a small
# labeled CarWorld split (with meshes), its contact sheet and a turntable of one ground-truth car.
demo: $(STAMP)
	$(BIN)/assetgan world render --split demo --n 32 --size 128 --seed 0 --meshes --out runs/demo/world
	$(BIN)/assetgan world sheet --out runs/demo/carworld_sheet.png
	$(BIN)/assetgan render runs/demo/world/meshes/000000.glb --out runs/demo/turntable.png
	@echo "demo outputs in runs/demo/ (world/, carworld_sheet.png, turntable.png)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs
