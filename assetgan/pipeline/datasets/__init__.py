"""Generated datasets: image / label pairs from a generator and a trained Style Interpreter,
filtered by ensemble uncertainty (docs/formats.md, "Generated dataset")."""
