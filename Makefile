# The two set-up commands of README.md. Each creates .venv and installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml package.json package-lock.json
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools
	# torch 2.14.1 + torchvision 0.29.1 lie on disk here; pinning them keeps the resolution offline.
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[dev]"
	# npm: the Khronos glTF validator and three.js (bundled into the export viewer).
	npm ci --no-audit --no-fund
	node tools/bundle_viewer.mjs
	# Debian's chromium: the export viewer's headless browser test.
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	touch $(STAMP)

install: $(STAMP)

# The newcomer's first command: the whole chain (2D and 3D) on the shipped weights, from Python
# (docs/demo.md); open runs/demo/index.html. Rerunning skips finished steps.
DEMO := runs/demo
demo: $(STAMP)
	$(BIN)/assetgan demo --out $(DEMO)
	@echo "report: $(DEMO)/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs
