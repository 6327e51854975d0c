"""The Typer subclass every command group uses (user errors become one line and exit code 1) and
the progress bar commands hand to library code as a callback."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, ProgressEvent

err_console = Console(stderr=True, soft_wrap=True, highlight=False)


class App(typer.Typer):
    """typer.Typer whose commands render AssetganError as `error: ...` and exit 1."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
        register = super().command(*args, **kwargs)

        def wrap(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def run(*call_args: Any, **call_kwargs: Any) -> Any:
                try:
                    return fn(*call_args, **call_kwargs)
                except AssetganError as error:
                    err_console.print(f"error: {error}", markup=False)
                    raise typer.Exit(1) from None

            register(run)
            return fn

        return wrap


@contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator[Progress]:
    """A transient rich progress bar; yields a core.progress `Progress` callback. Each event sets
    the count and total, `task` (when given) replaces the description, `metrics` show beside the
    bar and `message` lines are printed above it (they stay after the bar is gone)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    columns = (
        *RichProgress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metrics]}"),
    )
    with RichProgress(*columns, transient=True, console=err_console) as bar:
        task = bar.add_task(description, total=total, metrics="")

        def update(event: ProgressEvent) -> None:
            if event.message:
                bar.console.print(event.message, markup=False, highlight=False)
            bar.update(
                task,
                completed=event.done,
                total=event.total,
                description=event.task or description,
                metrics="  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items()),
            )

        yield update
