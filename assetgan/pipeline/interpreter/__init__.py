"""The Style Interpreter (DatasetGAN): per-pixel MLP ensembles over generator features, trained
on sampled pixels and applied by a factorised forward that never materialises up-sampled
features (docs/interpreter.md)."""
