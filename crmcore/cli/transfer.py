"""Shared pieces of the ``import`` and ``export`` commands: progress bar and result line."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from crmcore.cli.context import get_actor, get_console, get_crm, json_option, print_json


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


def import_command(what: str, default_batch: int) -> click.Command:
    """The ``import`` command of ``crm customers`` or ``crm interactions`` (``what``)."""

    @click.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: from extension."
    )
    @click.option(
        "--skip-invalid",
        is_flag=True,
        help="Import the good rows; write the bad ones to a rejects file.",
    )
    @click.option(
        "--rejects", type=click.Path(dir_okay=False, path_type=Path), help="Rejects file path."
    )
    @click.option(
        "--batch-size", type=click.IntRange(1, 100_000), default=default_batch, show_default=True
    )
    @json_option
    def command(
        path: Path,
        fmt: str | None,
        skip_invalid: bool,
        rejects: Path | None,
        batch_size: int,
        as_json: bool,
    ) -> None:
        from crmcore import imports

        importer = imports.import_customers if what == "customers" else imports.import_interactions
        with progress_bar(path, what) as progress:
            result = importer(
                get_crm(),
                path,
                format=fmt,
                skip_invalid=skip_invalid,
                rejects_path=rejects,
                batch_size=batch_size,
                actor=get_actor(),
                progress=progress,
            )
        report_import(result, what, as_json)

    command.help = f"Import {what} from CSV or JSON Lines (all-or-nothing unless --skip-invalid)."
    return command
