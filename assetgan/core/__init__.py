"""The core layer: what every stage shares and no stage owns.

checkpoints (safetensors + JSON, one writer and one reader with a registry of kinds), hashing,
images (contact sheets, atomic PNG), the one progress protocol, metrics (confusion-matrix IoU,
PCK), errors and atomic file writes. Imports nothing from render/, pipeline/, inverse_graphics/
or commands/ (docs/architecture.md; enforced by import-linter).
"""
