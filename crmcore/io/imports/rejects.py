"""The rejects file of an import: bad rows with their line and reason, kept byte for byte.

Rows are written to a hidden ``.<name>.partial`` file next to the final path
and renamed into place only when the import's transaction commits, so a
killed or rolled-back import never leaves a rejects file behind (a
``.partial`` file left by a killed process is overwritten by the next run
and removed by :func:`purge_rejects`). Rejects files hold the rejected rows
as they came, personal data included: treat them like the input file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from crmcore.errors import ValidationError
from crmcore.model.storable import text_problem

#: File name patterns of rejects files (and of the partial files of a killed import).
REJECTS_PATTERNS = ("*.rejects.csv", "*.rejects.jsonl", ".*.rejects.csv.partial",
                    ".*.rejects.jsonl.partial")  # fmt: skip


class Rejects:
    """The rejects file, created on the first rejected row, in the input file's encoding."""

    def __init__(
        self, path: Path, format: str, header: Sequence[str] | None, encoding: str = "utf-8"
    ) -> None:
        self.path = path
        self.count = 0
        self._partial = path.with_name(f".{path.name}.partial")
        self._format = format
        self._header = list(header or ())
        self._encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self._handle: IO[str] | None = None
        self._csv: Any = None

    def write(self, line: int, raw: Any, reason: str) -> None:
        """Append one rejected record with the line it started on and why it was rejected."""
        if self._handle is None:
            self._open()
        assert self._handle is not None
        reason = self._encodable(reason)
        if self._format == "csv":
            cells = list(raw)
            width = len(self._header)
            padded = cells[:width] + [""] * (width - len(cells))
            self._csv.writerow([*padded, line, reason, *cells[width:]])
        else:
            entry = {"line": line, "error": reason, "row": raw}
            text = json.dumps(entry, ensure_ascii=False)
            if text_problem(text, "row") is not None:
                text = json.dumps(entry)  # \u escapes keep lone surrogates and NULs readable
            self._handle.write(self._encodable(text) + "\n")
        self.count += 1

    def _encodable(self, text: str) -> str:
        """``text`` with what the file's encoding cannot hold as ``\\x..`` escapes."""
        try:
            text.encode(self._encoding, errors="surrogateescape")
            return text
        except UnicodeEncodeError:
            return text.encode(self._encoding, errors="backslashreplace").decode(self._encoding)

    def _open(self) -> None:
        try:
            # surrogateescape writes undecodable input bytes back exactly as they came.
            self._handle = self._partial.open(
                "w", encoding=self._encoding, errors="surrogateescape", newline=""
            )
        except OSError as exc:
            raise ValidationError(
                f"{self.path}: cannot write the rejects file: {exc.strerror or exc}",
                field="rejects_path",
            ) from None
        if self._format == "csv":
            self._csv = csv.writer(self._handle, lineterminator="\n")
            self._csv.writerow([*self._header, "_line", "_error"])

    def close(self, *, discard: bool = False) -> None:
        """Close the file and move it into place; with ``discard`` remove it (rolled back)."""
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        if discard:
            self._partial.unlink(missing_ok=True)
        else:
            self._partial.replace(self.path)


def find_rejects(directory: str | Path) -> Iterator[Path]:
    """Every rejects file (and partial one) under ``directory``, recursively, sorted."""
    root = Path(directory)
    if not root.is_dir():
        raise ValidationError(f"{root}: not a directory", field="directory", value=str(root))
    found: set[Path] = set()
    for pattern in REJECTS_PATTERNS:
        found.update(p for p in root.rglob(pattern) if p.is_file())
    yield from sorted(found)


def purge_rejects(directory: str | Path, *, dry_run: bool = False) -> list[Path]:
    """Delete every rejects file under ``directory``; return them (only list with ``dry_run``)."""
    paths = list(find_rejects(directory))
    if not dry_run:
        for path in paths:
            path.unlink(missing_ok=True)
    return paths
