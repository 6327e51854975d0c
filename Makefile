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

# Until `assetgan demo` exists: the most complete chain there is on the embedded default.
# CarWorld: a small labeled split with meshes, its contact sheet, a turntable of one GT car.
# Factory: samples of the shipped CarWorld StyleGAN, 16 annotations from the simulated annotator
# (the shipped CarWorld segmenter drawing LabelMe polygons), the Style Interpreter trained on
# them, 64 generated labeled pairs (10 % most uncertain dropped) and their HTML gallery.
DEMO := runs/demo
GEN := assetgan/assets/carworld64/G.safetensors
SEG := assetgan/assets/segmenter64/segmenter.safetensors
demo: $(STAMP)
	$(BIN)/assetgan world render --split demo --n 32 --size 128 --seed 0 --meshes --out $(DEMO)/world
	$(BIN)/assetgan world sheet --out $(DEMO)/carworld_sheet.png
	$(BIN)/assetgan render $(DEMO)/world/meshes/000000.glb --out $(DEMO)/turntable.png
	$(BIN)/assetgan gan sample --ckpt $(GEN) --seeds 0-31 --columns 8 --out $(DEMO)/gan_samples.png
	rm -rf $(DEMO)/annotations
	$(BIN)/assetgan annotate simulate -g $(GEN) --segmenter $(SEG) --n 16 --seed 0 --out $(DEMO)/annotations
	$(BIN)/assetgan interpreter train -g $(GEN) --annotations $(DEMO)/annotations --out $(DEMO)/interpreter.safetensors
	$(BIN)/assetgan dataset generate -g $(GEN) --interpreter $(DEMO)/interpreter.safetensors --n 64 --out $(DEMO)/dataset
	$(BIN)/assetgan dataset view $(DEMO)/dataset --out $(DEMO)/dataset/gallery.html
	@echo "demo outputs in $(DEMO)/: world/, carworld_sheet.png, turntable.png, gan_samples.png, annotations/, interpreter.safetensors, dataset/ (gallery.html)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) runs
