"""Output files of the ``export`` and ``report`` commands: written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, cast

import click

from crmcore.cli.text import strip_control


@contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text file (UTF-8) that becomes ``path`` only when the block succeeds.

    The data goes to a temporary file in the same directory, renamed over
    ``path`` at the end; if the block raises (export denied, disk full,
    interrupted) the temporary file is removed and an existing ``path`` is left
    exactly as it was. A replaced file keeps its permission bits; a new one is
    created readable and writable by its owner only (exports hold personal data).
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def terminal_safe(stream: TextIO) -> TextIO:
    """``stream`` with control characters and escape sequences stripped from what is written.

    For exports printed on stdout: a file written with ``-o`` keeps every
    character; what reaches the terminal cannot drive it (tab and newline kept).
    """
    return cast(TextIO, _TerminalSafe(stream))


class _TerminalSafe:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(strip_control(text))

    def flush(self) -> None:
        self._stream.flush()


def raw_cells_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--raw-cells`` (CSV cells verbatim, no formula neutralisation) to an export command."""
    return click.option(
        "--raw-cells",
        is_flag=True,
        help="CSV: write every cell verbatim (no ' before cells that start with = + - @ tab CR).",
    )(func)


__all__ = ["atomic_output", "raw_cells_option", "terminal_safe"]
