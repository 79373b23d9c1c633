"""Shared pieces of the ``import`` and ``export`` commands: progress bar and result line."""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
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
                "already_stored": result.already_stored,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "rejects_path": str(result.rejects_path) if result.rejects_path else None,
                "dry_run": result.dry_run,
            }
        )
        return
    if result.updated or result.unchanged:
        what += f", {'would update' if result.dry_run else 'updated'} {result.updated}"
        what += f", {result.unchanged} unchanged"
    if result.dry_run:
        line = f"Dry run: would import {result.imported} {what}."
        if result.already_stored:
            line += f" Would skip {result.already_stored} already stored (same external id)."
        if result.rejected:
            line += f" Would reject {result.rejected} (no rejects file written)."
        line += " Nothing was stored."
        get_console().print(escape(line))
        return
    line = f"Imported {result.imported} {what}."
    if result.already_stored:
        line += f" Skipped {result.already_stored} already stored (same external id)."
    if result.rejected:
        line += (
            f" Rejected {result.rejected}; every rejected row and its reason: {result.rejects_path}"
        )
    get_console().print(escape(line))


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def import_command(what: str, default_batch: int) -> click.Command:
    """The ``import`` command of ``crm customers`` or ``crm interactions`` (``what``)."""

    @click.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: from extension."
    )
    @click.option(
        "--encoding",
        help="Text encoding of the file (gbk, gb18030, big5, utf-16 ...). Default: UTF-8; "
        "a byte-order mark is detected.",
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
    @click.option(
        "--commit-every",
        type=click.IntRange(1, None),
        help="Commit every N records instead of once (a killed import keeps what it committed).",
    )
    @click.option(
        "--max-columns",
        type=click.IntRange(1, 100_000),
        help="Most columns a CSV header may have (default 1000).",
    )
    @click.option(
        "--dry-run",
        is_flag=True,
        help="Validate and import in one transaction, then roll it back: report what would "
        "be imported, rejected and skipped; store nothing, write no rejects file.",
    )
    @json_option
    def command(
        path: Path,
        fmt: str | None,
        encoding: str | None,
        skip_invalid: bool,
        rejects: Path | None,
        batch_size: int,
        commit_every: int | None,
        max_columns: int | None,
        dry_run: bool,
        as_json: bool,
        **extra: Any,
    ) -> None:
        from crmcore.io import imports

        if max_columns is not None:
            extra["max_columns"] = max_columns
        importer: Callable[..., Any] = (
            imports.import_customers if what == "customers" else imports.import_interactions
        )
        previous = signal.signal(signal.SIGTERM, _interrupted)
        try:
            with progress_bar(path, what) as progress:
                result = importer(
                    get_crm(),
                    path,
                    format=fmt,
                    encoding=encoding,
                    skip_invalid=skip_invalid,
                    rejects_path=rejects,
                    batch_size=batch_size,
                    commit_every=commit_every,
                    actor=get_actor(),
                    progress=progress,
                    dry_run=dry_run,
                    **extra,
                )
        except KeyboardInterrupt as exc:
            notes = getattr(exc, "__notes__", None) or [
                f"{path}: interrupted; nothing was stored (the import is one transaction). "
                "Run it again"
                + (" (rows already stored are skipped)." if what == "interactions" else ".")
            ]
            click.echo(f"Error: {notes[0]}", err=True)
            raise SystemExit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        report_import(result, what, as_json)

    if what == "interactions":
        command = click.option(
            "--source",
            default="import",
            show_default=True,
            help="The system the rows' external ids belong to.",
        )(command)
        command = click.option(
            "--id-column", help="Column holding each row's external id (an order number ...)."
        )(command)
        command = click.option(
            "--no-dedupe",
            "dedupe",
            is_flag=True,
            default=True,
            flag_value=False,
            help="Store every row, without deriving external ids (re-runs then store twice).",
        )(command)
        command.help = (
            "Import interactions from CSV or JSON Lines (all-or-nothing unless --skip-invalid "
            "or --commit-every). Idempotent: each row's external id (its external_id column, "
            "--id-column, or a hash of its content) is stored once, so a re-run stores nothing "
            "twice."
        )
    else:
        command = click.option(
            "--system", help="The system the external_id column's ids belong to (erp, shop ...)."
        )(command)
        command = click.option(
            "--match",
            type=click.Choice(["email", "phone", "external_id"]),
            help="With --update-existing: the key that finds a row's customer.",
        )(command)
        command = click.option(
            "--update-existing",
            is_flag=True,
            help="Update the customers the rows match (--match) instead of rejecting them; "
            "create the others. Never changes the stage.",
        )(command)
        command.help = (
            "Import customers from CSV or JSON Lines (all-or-nothing unless --skip-invalid). "
            "With --update-existing --match email|phone|external_id, matched customers are "
            "updated (empty cells leave a field as it is) and counted as updated or unchanged."
        )
    return command


@click.command("purge-rejects")
@click.argument(
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
)
@click.option("--dry-run", is_flag=True, help="List the files without deleting them.")
@json_option
def purge_rejects_command(directory: Path, dry_run: bool, as_json: bool) -> None:
    """Delete the rejects files of earlier imports under DIRECTORY (default: here).

    Rejects files keep rejected rows as they came, personal data included;
    erasing a customer does not reach them. Matches *.rejects.csv,
    *.rejects.jsonl and the hidden .partial files a killed import leaves.
    """
    from crmcore.io.imports import purge_rejects

    paths = purge_rejects(directory, dry_run=dry_run)
    if as_json:
        print_json({"deleted": not dry_run, "files": [str(p) for p in paths]})
        return
    verb = "Would delete" if dry_run else "Deleted"
    for path in paths:
        get_console().print(escape(str(path)))
    get_console().print(f"{verb} {len(paths)} rejects file(s).")
