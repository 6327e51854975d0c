"""Thin typer commands, one module per stage; each parses, calls one stage function, prints."""
