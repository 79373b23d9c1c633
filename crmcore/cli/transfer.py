"""Shared pieces of the ``import`` and ``export`` commands: progress bar and result line."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from crmcore.cli.context import get_console, print_json


@contextmanager
def progress_bar(path: Path, label: str) -> Any:
    """A rich progress bar over the file's bytes; yields the callback imports call per batch."""
    total = path.stat().st_size if path.is_file() else None
    with Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=get_console(),
        transient=True,
        disable=not get_console().is_terminal,
    ) as progress:
        task = progress.add_task(label, total=total, rows=0)

        def update(rows: int, bytes_read: int) -> None:
            progress.update(task, completed=bytes_read, rows=rows)

        callback: Callable[[int, int], None] = update
        yield callback


def report_import(result: Any, what: str, as_json: bool) -> None:
    """Print an ImportResult: counts and where the rejects went."""
    if as_json:
        print_json(
            {
                "imported": result.imported,
                "rejected": result.rejected,
                "rejects_path": str(result.rejects_path) if result.rejects_path else None,
            }
        )
        return
    line = f"Imported {result.imported} {what}."
    if result.rejected:
        line += (
            f" Rejected {result.rejected}; every rejected row and its reason: {result.rejects_path}"
        )
    get_console().print(line)
