"""assetgan command line: one sub-app per stage (DESIGN.md). Commands live in assetgan/commands/."""

from __future__ import annotations

from assetgan.commands import annotate as annotate_commands
from assetgan.commands import dataset as dataset_commands
from assetgan.commands import demo as demo_commands
from assetgan.commands import export as export_commands
from assetgan.commands import gan as gan_commands
from assetgan.commands import interpreter as interpreter_commands
from assetgan.commands import multiview as multiview_commands
from assetgan.commands import reconstruct as reconstruct_commands
from assetgan.commands import render as render_commands
from assetgan.commands import report as report_commands
from assetgan.commands import segment as segment_commands
from assetgan.commands import world as world_commands
from assetgan.commands.app import App

app = App(
    help="From a StyleGAN and a handful of annotations to labeled 2D car datasets and rigged 3D car assets."
)


@app.callback()
def main() -> None:
    """assetgan: every stage is a sub-command; `assetgan STAGE --help` shows its commands."""


app.command("render")(render_commands.render)
app.add_typer(world_commands.app, name="world")
app.add_typer(gan_commands.app, name="gan")
app.add_typer(annotate_commands.app, name="annotate")
app.add_typer(interpreter_commands.app, name="interpreter")
app.add_typer(dataset_commands.app, name="dataset")
app.add_typer(segment_commands.app, name="segment")
app.add_typer(multiview_commands.app, name="multiview")
app.add_typer(reconstruct_commands.app, name="reconstruct")
app.add_typer(export_commands.app, name="export")
app.add_typer(report_commands.app, name="report")
app.command("demo")(demo_commands.demo)

if __name__ == "__main__":  # pragma: no cover
    app()
