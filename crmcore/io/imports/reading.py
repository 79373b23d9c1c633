"""Reading import files: decoding (encodings, byte-order marks), CSV and JSON Lines records."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

import attrs

from crmcore.errors import CRMError, ValidationError
from crmcore.io.imports.columns import ColumnsFactory, content_key

#: Encodings an import reads, by the names ``--encoding`` accepts (any Python codec name works).
COMMON_ENCODINGS = ("utf-8", "gbk", "gb18030", "big5", "utf-16", "utf-16-le", "utf-16-be")

# Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ESCAPED = re.compile("[\udc80-\udcff]")


def resolve_encoding(handle: IO[bytes], given: str | None) -> str:
    """The codec to read ``handle`` with: its byte-order mark's, else ``given``, else UTF-8.

    Raises ValidationError for an unknown codec name, or a mark that contradicts ``given``.
    """
    if given is not None:
        try:
            given = codecs.lookup(given).name
        except (LookupError, TypeError, ValueError):
            raise ValidationError(
                f"encoding: unknown encoding {given!r} "
                f"(for example: {', '.join(COMMON_ENCODINGS)})",
                field="encoding",
                value=given,
            ) from None
    start = handle.read(4)
    handle.seek(0)
    for mark, codec in _BOMS:
        if start.startswith(mark):
            family = codecs.lookup(codec).name.replace("-sig", "").split("-")[:2]
            if given is not None and given.replace("_", "-").split("-")[:2] != family:
                raise ValidationError(
                    f"encoding: the file starts with a {codec.replace('-sig', '').upper()} "
                    f"byte-order mark but {given!r} was given",
                    field="encoding",
                    value=given,
                )
            return codec
    return given or "utf-8"


def _ascii_compatible(codec: str) -> bool:
    """Whether byte 0x0A is always a line break (never inside a multi-byte character)."""
    return codecs.lookup(codec).name not in {
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "utf-32",
        "utf-32-le",
        "utf-32-be",
    }


class Lines:
    """Decoded lines of a binary file, counting lines and bytes as they are read.

    Bytes that are not valid in the file's encoding are kept as lone
    surrogates (``surrogateescape``), so a rejects file written back in the
    same encoding holds them exactly as they came; the problem is kept in
    :attr:`problem` until the reader takes it.
    """

    def __init__(self, handle: IO[bytes], encoding: str = "utf-8") -> None:
        self._handle = handle
        self.encoding = encoding
        self.number = 0
        self.bytes = 0
        self.problem: str | None = None
        self._label = "UTF-8" if encoding in {"utf-8", "utf-8-sig"} else encoding.upper()

    def __iter__(self) -> Iterator[str]:
        if not _ascii_compatible(self.encoding):
            yield from self._wide()
            return
        codec = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        for raw in self._handle:
            self.number += 1
            self.bytes += len(raw)
            if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                if self.problem is None:
                    self.problem = (
                        f"not valid {self._label}: byte 0x{raw[exc.start]:02x} at line "
                        f"{self.number}, column {exc.start + 1}"
                    )
                yield raw.decode(codec, errors="surrogateescape")

    def _wide(self) -> Iterator[str]:
        """UTF-16/32: decode incrementally; byte counts advance by the decoder's reads."""
        text = io.TextIOWrapper(
            self._handle,
            encoding=self.encoding,
            errors="surrogateescape",
            newline="",
        )
        for line in text:
            self.number += 1
            self.bytes = self._handle.tell()
            found = _ESCAPED.search(line)
            if found is not None and self.problem is None:
                self.problem = (
                    f"not valid {self._label} at line {self.number}, column {found.start() + 1}"
                )
            yield line
        text.detach()

    def take_problem(self) -> str | None:
        """Return the decoding problem seen since the last call, if any, and forget it."""
        problem, self.problem = self.problem, None
        return problem


@attrs.define
class Record:
    """One record of the input file and what became of it so far."""

    line: int  # physical line where the record starts
    raw: Any  # CSV cells, the parsed JSON value, or the raw text
    rows: int  # records read so far, this one included
    bytes: int  # bytes read so far
    data: dict[str, Any] | None = None
    error: CRMError | None = None
    key: str | None = None  # the content key, when the import derives external ids


class CsvSource:
    """The records of a CSV file; reads and checks the header on construction."""

    def __init__(
        self, lines: Lines, location: str, columns: ColumnsFactory, *, keyed: bool = False
    ) -> None:
        self._lines = lines
        self._location = location
        self._keyed = keyed
        self._reader = csv.reader(lines)
        header = self._next_cells()
        if header is None:
            raise ValidationError(f"{location}: the file is empty; expected a header line")
        problem = lines.take_problem()
        if problem is not None:
            raise ValidationError(f"{location}:{lines.number}: {problem}")
        self.columns = columns(header, f"{location}:{lines.number}")

    def _next_cells(self) -> list[str] | None:
        start = self._lines.number + 1
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise ValidationError(f"{self._location}:{start}: malformed CSV: {exc}") from None

    def __iter__(self) -> Iterator[Record]:
        rows = 0
        while True:
            start = self._lines.number + 1
            cells = self._next_cells()
            if cells is None:
                return
            problem = self._lines.take_problem()
            if problem is None and not any(cell.strip() for cell in cells):
                continue
            rows += 1
            record = Record(line=start, raw=cells, rows=rows, bytes=self._lines.bytes)
            try:
                if problem is not None:
                    raise ValidationError(problem)
                record.data = self.columns.parse(cells)
                if self._keyed:
                    record.key = self.columns.content_key(cells)
            except CRMError as exc:
                record.error = exc
            yield record


def jsonl_records(
    lines: Lines, convert: Callable[[Any], dict[str, Any]], *, keyed: bool = False
) -> Iterator[Record]:
    """Yield the records of a JSON Lines file, skipping blank lines.

    With ``keyed`` each record gets a content key: its object without ``id``,
    with sorted keys, hashed.
    """
    rows = 0
    for text in lines:
        problem = lines.take_problem()
        if problem is None and not text.strip():
            continue
        rows += 1
        record = Record(line=lines.number, raw=text.rstrip("\r\n"), rows=rows, bytes=lines.bytes)
        try:
            if problem is not None:
                raise ValidationError(problem)
            record.raw = json.loads(text)
            record.data = convert(record.raw)
            if keyed:
                canonical = json.dumps(record.data, sort_keys=True, ensure_ascii=False)
                record.key = content_key(canonical)
        except json.JSONDecodeError as exc:
            record.error = ValidationError(f"invalid JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            record.error = ValidationError("invalid JSON: nested too deeply")
        except CRMError as exc:
            record.error = exc
        yield record
