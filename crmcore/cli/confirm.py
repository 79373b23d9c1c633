"""Asking before a command does something that cannot be undone, and ``--yes`` to skip it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click


def yes_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--yes`` (do not ask for confirmation) to a command."""
    return click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(func)


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` on the terminal; stop the command unless the answer is yes.

    With ``yes`` (the command's ``--yes``) nothing is asked. Without a
    terminal (stdin is not a tty: a script, a pipe, CI) nothing can be
    asked, so the command is refused with one line saying to pass ``--yes``.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(f"{question} No terminal to confirm on: pass --yes.")
    click.confirm(question, abort=True)


__all__ = ["confirm", "yes_option"]
