"""Import customers and interactions from CSV or JSON Lines files, streamed in batches.

The file is read record by record and fed to ``crm.customers.create_many`` or
``crm.interactions.record_many`` as a generator, so memory stays flat however
large the file is. Everything is stored in one transaction: by default the
first bad row aborts the import and nothing is stored. With
``skip_invalid=True`` the good rows are stored and every bad row is written,
with its reason, to a rejects file.

Errors name the file, the line where the bad record starts and the field::

    customers.csv:7: email: not a valid email address: 'x@'

CSV files have a header line. Customer columns are :class:`~crmcore.entities.Customer`
field names, plus ``tags`` (``;``-separated), ``consent.<flag>`` (booleans),
``attributes.<key>`` (one custom attribute, coerced to the type the
deployment's attributes JSON Schema declares for it) and ``attributes`` (a JSON
object). Interaction columns are :class:`~crmcore.entities.Interaction` field
names, with ``payload`` a JSON object and ``items`` a JSON array; a row may name
its customer by ``customer_email`` instead of ``customer_id``. An ``id`` column
is accepted (so that an export imports again) and ignored: stored records get
new ids. Empty cells mean "absent". JSON Lines files hold one object per line
with the field names :func:`crmcore.serialization.to_dict` produces.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
from sqlalchemy import Connection, select

from crmcore.access import Action
from crmcore.customers import RejectHandler
from crmcore.entities import Consent, Customer, Interaction
from crmcore.errors import ConflictError, CRMError, ValidationError, ValidationErrors
from crmcore.identity import normalise_email
from crmcore.storable import text_problem
from crmcore.storage.tables import customers as customers_table
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

#: Called after each batch with (rows read so far, bytes read so far).
Progress = Callable[[int, int], None]

#: Accepted ``format`` values and what they mean.
FORMATS: Mapping[str, str] = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_EMAIL_QUERY_CHUNK = 1000
_POSITION = re.compile(r"\b(?:customers|interactions)\[(\d+)\]")


@attrs.frozen
class ImportResult:
    """What an import did: rows stored, rows rejected, and where the rejected rows went.

    ``rejects_path`` is ``None`` when nothing was rejected (no empty rejects
    file is created).
    """

    imported: int
    rejected: int
    rejects_path: Path | None


@attrs.define
class _Record:
    """One record of the input file and what became of it so far."""

    line: int  # physical line where the record starts
    raw: Any  # CSV cells, the parsed JSON value, or the raw text
    rows: int  # records read so far, this one included
    bytes: int  # bytes read so far
    data: dict[str, Any] | None = None
    error: CRMError | None = None


# --- reading the file ----------------------------------------------------------


class _Lines:
    """Decoded lines of a binary file, counting lines and bytes as they are read.

    A line that is not UTF-8 is decoded with replacement characters and the
    problem is kept in :attr:`problem` until the reader takes it.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.number = 0
        self.bytes = 0
        self.problem: str | None = None

    def __iter__(self) -> Iterator[str]:
        for raw in self._handle:
            self.number += 1
            self.bytes += len(raw)
            if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if self.problem is None:
                    self.problem = (
                        f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {self.number}, "
                        f"column {exc.start + 1}"
                    )
                yield raw.decode("utf-8", errors="replace")

    def take_problem(self) -> str | None:
        """Return the decoding problem seen since the last call, if any, and forget it."""
        problem, self.problem = self.problem, None
        return problem


Setter = Callable[[dict[str, Any], str], None]


class _Columns:
    """How each column of one CSV file goes into a row dict."""

    def __init__(self, header: Sequence[str], setters: Sequence[Setter]) -> None:
        self.header = list(header)
        self._setters = list(setters)

    def parse(self, cells: Sequence[str]) -> dict[str, Any]:
        """Return the row dict of one record; raise ValidationError naming a bad cell's column."""
        if len(cells) > len(self.header):
            raise ValidationError(
                f"the row has {len(cells)} cells but the header has {len(self.header)} columns"
            )
        data: dict[str, Any] = {}
        errors: list[ValidationError] = []
        for name, setter, cell in zip(self.header, self._setters, cells, strict=False):
            if not cell.strip():
                continue
            try:
                setter(data, cell)
            except ValueError as exc:
                errors.append(ValidationError(f"{name}: {exc}", field=name, value=cell))
        if errors:
            raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
        return data


#: Checks a CSV header (given with its ``file:line``) and plans its columns.
_ColumnsFactory = Callable[[Sequence[str], str], _Columns]


class _CsvSource:
    """The records of a CSV file; reads and checks the header on construction."""

    def __init__(self, lines: _Lines, location: str, columns: _ColumnsFactory) -> None:
        self._lines = lines
        self._location = location
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

    def __iter__(self) -> Iterator[_Record]:
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
            record = _Record(line=start, raw=cells, rows=rows, bytes=self._lines.bytes)
            try:
                if problem is not None:
                    raise ValidationError(problem)
                record.data = self.columns.parse(cells)
            except CRMError as exc:
                record.error = exc
            yield record


def _jsonl_records(lines: _Lines, convert: Callable[[Any], dict[str, Any]]) -> Iterator[_Record]:
    """Yield the records of a JSON Lines file, skipping blank lines."""
    rows = 0
    for text in lines:
        problem = lines.take_problem()
        if problem is None and not text.strip():
            continue
        rows += 1
        record = _Record(line=lines.number, raw=text.rstrip("\r\n"), rows=rows, bytes=lines.bytes)
        try:
            if problem is not None:
                raise ValidationError(problem)
            record.raw = json.loads(text)
            record.data = convert(record.raw)
        except json.JSONDecodeError as exc:
            record.error = ValidationError(f"invalid JSON: {exc.msg} (column {exc.colno})")
        except CRMError as exc:
            record.error = exc
        yield record


# --- cells and JSON values -------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def _json_cell(text: str, expected: type[dict[str, Any]] | type[list[Any]]) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, expected):
        wanted = "object" if expected is dict else "array"
        raise ValueError(f"expected a JSON {wanted}, got {_json_type(value)}")
    return value


def _object_from_json(value: Any) -> dict[str, Any]:
    """Turn a JSON Lines value into a row dict (without ``id``, which imports ignore)."""
    if not isinstance(value, dict):
        raise ValidationError(f"expected a JSON object, got {_json_type(value)}")
    return {k: v for k, v in value.items() if k != "id"}


def _set_plain(name: str) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data[name] = text

    return setter


def _set_ignored(data: dict[str, Any], text: str) -> None:
    """Columns such as ``id`` that an import accepts and ignores."""


def _set_json(name: str, expected: type[dict[str, Any]] | type[list[Any]]) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data[name] = _json_cell(text, expected)

    return setter


_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLEANS = {"true": True, "yes": True, "y": True, "1": True}
_BOOLEANS |= {"false": False, "no": False, "n": False, "0": False}


def _to_integer(text: str) -> int:
    if not _INTEGER.match(text.strip()):
        raise ValueError(f"expected an integer, got {text!r}")
    return int(text)


def _to_number(text: str) -> int | float:
    value = text.strip()
    if _INTEGER.match(value):
        return int(value)
    if not _NUMBER.match(value) or not math.isfinite(float(value)):
        raise ValueError(f"expected a number, got {text!r}")
    return float(value)


def _to_boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {text!r}") from None


_COERCIONS: dict[str, Callable[[str], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
}


def _attribute_coercion(schema: Mapping[str, Any] | None, key: str) -> Callable[[str], Any]:
    """How to read an ``attributes.<key>`` cell: by the type the schema declares, else as text."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    declared = properties.get(key) if isinstance(properties, Mapping) else None
    kind = declared.get("type") if isinstance(declared, Mapping) else None
    types = {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()
    if "string" not in types:
        for name in ("integer", "number", "boolean"):
            if name in types:
                return _COERCIONS[name]
    return str


# --- customer and interaction columns ------------------------------------------------

_CONSENT_FLAGS = tuple(f.name for f in attrs.fields(Consent))
_CUSTOMER_PLAIN = tuple(
    f.name for f in attrs.fields(Customer) if f.name not in {"id", "tags", "attributes", "consent"}
)
_INTERACTION_PLAIN = (
    *(f.name for f in attrs.fields(Interaction) if f.name not in {"id", "payload", "items"}),
    "customer_email",
)


def _set_tags(data: dict[str, Any], text: str) -> None:
    data["tags"] = [tag for tag in text.split(";") if tag.strip()]


def _set_consent(flag: str) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data.setdefault("consent", {})[flag] = text

    return setter


def _set_attributes(data: dict[str, Any], text: str) -> None:
    # attributes.<key> columns win over the same key in the JSON column, whatever the order.
    data["attributes"] = {**_json_cell(text, dict), **data.get("attributes", {})}


def _set_attribute(key: str, coerce: Callable[[str], Any]) -> Setter:
    def setter(data: dict[str, Any], text: str) -> None:
        data.setdefault("attributes", {})[key] = coerce(text)

    return setter


def _customer_setter(column: str, schema: Mapping[str, Any] | None) -> Setter | None:
    if column in _CUSTOMER_PLAIN:
        return _set_plain(column)
    fixed: dict[str, Setter] = {
        "id": _set_ignored,
        "tags": _set_tags,
        "attributes": _set_attributes,
    }
    if column in fixed:
        return fixed[column]
    prefix, _, rest = column.partition(".")
    if prefix == "consent" and rest in _CONSENT_FLAGS:
        return _set_consent(rest)
    if prefix == "attributes" and rest:
        return _set_attribute(rest, _attribute_coercion(schema, rest))
    return None


def _interaction_setter(column: str) -> Setter | None:
    if column in _INTERACTION_PLAIN:
        return _set_plain(column)
    fixed: dict[str, Setter] = {
        "id": _set_ignored,
        "payload": _set_json("payload", dict),
        "items": _set_json("items", list),
    }
    return fixed.get(column)


def _build_columns(
    header: Sequence[str], where: str, setter_for: Callable[[str], Setter | None], known: str
) -> _Columns:
    """Check a CSV header (ValidationError at line 1 naming the column) and plan its columns."""
    names = [cell.strip() for cell in header]
    setters: list[Setter] = []
    seen: set[str] = set()
    for index, name in enumerate(names, start=1):
        if not name:
            raise ValidationError(f"{where}: column {index} has no name", field=f"column {index}")
        if name in seen:
            raise ValidationError(f"{where}: {name}: duplicate column", field=name)
        seen.add(name)
        setter = setter_for(name)
        if setter is None:
            raise ValidationError(f"{where}: {name}: unknown column; known: {known}", field=name)
        setters.append(setter)
    return _Columns(names, setters)


# --- importing --------------------------------------------------------------------


class _Rejects:
    """The rejects file, created on the first rejected row."""

    def __init__(self, path: Path, format: str, header: Sequence[str] | None) -> None:
        self.path = path
        self.count = 0
        self._format = format
        self._header = list(header or ())
        self._handle: IO[str] | None = None
        self._csv: Any = None

    def write(self, record: _Record, reason: str) -> None:
        """Append one rejected record with the line it started on and why it was rejected."""
        if self._handle is None:
            self._open()
        assert self._handle is not None
        if self._format == "csv":
            cells = list(record.raw)
            width = len(self._header)
            padded = cells[:width] + [""] * (width - len(cells))
            self._csv.writerow([*padded, record.line, reason, *cells[width:]])
        else:
            entry = {"line": record.line, "error": reason, "row": record.raw}
            text = json.dumps(entry, ensure_ascii=False)
            if text_problem(text, "row") is not None:
                text = json.dumps(entry)  # \u escapes keep lone surrogates and NULs readable
            self._handle.write(text + "\n")
        self.count += 1

    def _open(self) -> None:
        try:
            # surrogateescape writes undecodable input bytes back exactly as they came.
            self._handle = self.path.open(
                "w", encoding="utf-8", errors="surrogateescape", newline=""
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
        """Close the file; with ``discard`` remove it (the import was rolled back)."""
        if self._handle is None:
            return
        self._handle.close()
        if discard:
            self.path.unlink(missing_ok=True)


def _relabel(message: str, pending: Mapping[int, _Record]) -> str:
    """Replace service positions (``customers[3]``) by the file line they came from."""

    def line_of(match: re.Match[str]) -> str:
        record = pending.get(int(match.group(1)))
        return f"the row at line {record.line}" if record else match.group(0)

    return _POSITION.sub(line_of, message)


def _locate(exc: CRMError, where: str, relabel: Callable[[str], str]) -> CRMError:
    """Return the same error with ``where`` (``file:line``) in front of its message."""
    if isinstance(exc, ValidationErrors):
        located = [_locate(e, where, relabel) for e in exc.errors]
        return ValidationErrors([e for e in located if isinstance(e, ValidationError)])
    message = f"{where}: {relabel(str(exc))}"
    if isinstance(exc, ValidationError):
        return type(exc)(message, field=exc.field, value=exc.value)
    if isinstance(exc, ConflictError):
        return ConflictError(message, existing_id=exc.existing_id)
    try:
        return type(exc)(message)
    except TypeError:
        return CRMError(message)


def _reason(exc: CRMError, relabel: Callable[[str], str]) -> str:
    if isinstance(exc, ValidationErrors):
        return "; ".join(relabel(str(e)) for e in exc.errors)
    return relabel(str(exc))


class _Feed:
    """Feeds records to a service and maps the service's positions back to file lines.

    Only the records of the batch the service is working on are kept, so
    memory stays flat. ``progress`` is called when the service asks for the
    first row of a new batch, i.e. once the previous batch is stored.
    """

    def __init__(
        self,
        location: str,
        batch_size: int,
        rejects: _Rejects | None,
        progress: Progress | None,
    ) -> None:
        self._location = location
        self._batch_size = batch_size
        self._rejects = rejects
        self._progress = progress
        self._pending: dict[int, _Record] = {}
        self.fed = 0
        self.refused_by_service = 0
        self.rows = 0

    def items(self, records: Iterable[_Record]) -> Iterator[dict[str, Any]]:
        """Yield the row dicts of the good records, rejecting bad ones on the way."""
        for record in records:
            self.rows = record.rows
            if record.error is not None or record.data is None:
                self._refuse(record, record.error or ValidationError("empty record"))
                continue
            if self.fed and self.fed % self._batch_size == 0:
                self._batch_stored()
            self._pending[self.fed] = record
            self.fed += 1
            yield record.data

    def _batch_stored(self) -> None:
        last = self._pending[self.fed - 1]
        self._pending.clear()
        if self._progress is not None:
            self._progress(last.rows, last.bytes)

    def on_reject(self, position: int, item: Any, exc: CRMError) -> None:
        """Handle a row the service refused: raise the located error, or write it to rejects."""
        self.refused_by_service += 1
        self._refuse(self._pending[position], exc)

    def _refuse(self, record: _Record, exc: CRMError) -> None:
        def relabel(message: str) -> str:
            return _relabel(message, self._pending)

        if self._rejects is None:
            raise _locate(exc, f"{self._location}:{record.line}", relabel) from None
        self._rejects.write(record, _reason(exc, relabel))


@attrs.frozen
class _Entity:
    """What differs between importing customers and importing interactions."""

    columns: Callable[[CRM], _ColumnsFactory]
    resolve: Callable[[Iterator[_Record], Connection, int], Iterator[_Record]]
    store: Callable[[CRM, Iterator[dict[str, Any]], UnitOfWork, int, RejectHandler], object]


def _customer_columns(crm: CRM) -> _ColumnsFactory:
    schema = crm.config.attributes_schema
    known = ", ".join(
        [*_CUSTOMER_PLAIN, "tags", "consent.<flag>", "attributes", "attributes.<key>"]
    )

    def build(header: Sequence[str], where: str) -> _Columns:
        return _build_columns(header, where, lambda c: _customer_setter(c, schema), known)

    return build


def _interaction_columns(crm: CRM) -> _ColumnsFactory:
    known = ", ".join([*_INTERACTION_PLAIN, "payload", "items"])

    def build(header: Sequence[str], where: str) -> _Columns:
        return _build_columns(header, where, _interaction_setter, known)

    return build


def _no_resolution(
    records: Iterator[_Record], connection: Connection, size: int
) -> Iterator[_Record]:
    return records


def _resolve_customer_emails(
    records: Iterator[_Record], connection: Connection, size: int
) -> Iterator[_Record]:
    """Replace ``customer_email`` by ``customer_id``, with one query per batch of records."""
    while chunk := list(islice(records, size)):
        wanted: dict[str, list[_Record]] = {}
        for record in chunk:
            email = _customer_email(record)
            if email is not None:
                wanted.setdefault(email, []).append(record)
        found = _customer_ids_by_email(connection, sorted(wanted))
        for email, waiting in wanted.items():
            for record in waiting:
                assert record.data is not None
                del record.data["customer_email"]
                if email in found:
                    record.data["customer_id"] = found[email]
                else:
                    record.error = ValidationError(
                        f"customer_email: no customer has the email address {email!r}",
                        field="customer_email",
                        value=email,
                    )
        yield from chunk


def _customer_email(record: _Record) -> str | None:
    """Return the normalised ``customer_email`` of a record; set ``record.error`` if bad."""
    if record.data is None or "customer_email" not in record.data:
        return None
    value = record.data["customer_email"]
    try:
        if "customer_id" in record.data:
            raise ValueError("give customer_id or customer_email, not both")
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_json_type(value)}")
        return normalise_email(value)
    except ValueError as exc:
        record.error = ValidationError(
            f"customer_email: {exc}", field="customer_email", value=value
        )
        return None


def _customer_ids_by_email(connection: Connection, emails: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(emails), _EMAIL_QUERY_CHUNK):
        chunk = emails[start : start + _EMAIL_QUERY_CHUNK]
        query = select(customers_table.c.email_norm, customers_table.c.id).where(
            customers_table.c.email_norm.in_(chunk)
        )
        found.update((email, cid) for email, cid in connection.execute(query))
    return found


def _store_customers(
    crm: CRM, items: Iterator[dict[str, Any]], ctx: UnitOfWork, size: int, on_reject: RejectHandler
) -> object:
    return crm.customers.create_many(
        items, ctx=ctx, batch_size=size, on_reject=on_reject, keep=False
    )


def _store_interactions(
    crm: CRM, items: Iterator[dict[str, Any]], ctx: UnitOfWork, size: int, on_reject: RejectHandler
) -> object:
    return crm.interactions.record_many(
        items, ctx=ctx, batch_size=size, on_reject=on_reject, keep=False
    )


_CUSTOMERS = _Entity(_customer_columns, _no_resolution, _store_customers)
_INTERACTIONS = _Entity(_interaction_columns, _resolve_customer_emails, _store_interactions)


def _resolve_format(path: Path, format: str | None) -> str:
    if format is None:
        found = _EXTENSIONS.get(path.suffix.lower())
        if found is None:
            raise ValidationError(
                f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
                "use .csv, .jsonl or .ndjson, or give the format",
                field="format",
            )
        return found
    if format.lower() not in FORMATS:
        raise ValidationError(
            f"format: {format!r} is not one of: {', '.join(FORMATS)}", field="format", value=format
        )
    return FORMATS[format.lower()]


def _open_input(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ValidationError(
            f"{path}: cannot read the file: {exc.strerror or exc}", field="path", value=str(path)
        ) from None


def _rejects_file(
    source: Path, format: str, given: str | Path | None, header: Sequence[str] | None
) -> _Rejects:
    path = Path(given) if given is not None else source.with_name(f"{source.stem}.rejects.{format}")
    if path.resolve() == source.resolve():
        raise ValidationError(
            f"{path}: the rejects file must not be the input file", field="rejects_path"
        )
    return _Rejects(path, format, header)


def _read_records(
    lines: _Lines, format: str, location: str, columns: _ColumnsFactory
) -> tuple[Iterator[_Record], list[str] | None]:
    """Return the records of the file and, for CSV, its (already checked) header."""
    if format == "csv":
        source = _CsvSource(lines, location, columns)
        return iter(source), source.columns.header
    return _jsonl_records(lines, _object_from_json), None


def _run_import(
    crm: CRM,
    entity: _Entity,
    path: str | Path,
    *,
    format: str | None,
    skip_invalid: bool,
    rejects_path: str | Path | None,
    batch_size: int,
    actor: str | None,
    progress: Progress | None,
) -> ImportResult:
    crm.access.check(Action.IMPORT)
    source = Path(path)
    fmt = _resolve_format(source, format)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            f"batch_size: must be at least 1, got {batch_size!r}", field="batch_size"
        )
    location = str(path)
    with _open_input(source) as handle:
        lines = _Lines(handle)
        records, header = _read_records(lines, fmt, location, entity.columns(crm))
        rejects = _rejects_file(source, fmt, rejects_path, header) if skip_invalid else None
        feed = _Feed(location, batch_size, rejects, progress)
        try:
            with crm.unit_of_work(actor) as uow:
                resolved = entity.resolve(records, uow.connection, batch_size)
                entity.store(crm, feed.items(resolved), uow, batch_size, feed.on_reject)
        except BaseException:
            if rejects is not None:
                rejects.close(discard=True)
            raise
        if rejects is not None:
            rejects.close()
    if progress is not None:
        progress(feed.rows, lines.bytes)
    rejected = rejects.count if rejects is not None else 0
    return ImportResult(
        imported=feed.fed - feed.refused_by_service,
        rejected=rejected,
        rejects_path=rejects.path if rejects is not None and rejected else None,
    )


def import_customers(
    crm: CRM,
    path: str | Path,
    *,
    format: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    batch_size: int = 500,
    actor: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import customers from a CSV or JSON Lines file in one transaction.

    Args:
        crm: The open CRM to import into.
        path: The input file.
        format: ``"csv"`` or ``"jsonl"``; ``None`` picks it from the extension
            (``.csv``, ``.jsonl``, ``.ndjson``).
        skip_invalid: Store the good rows and write every bad one, with its
            reason, to the rejects file. Without it the first bad row raises
            and nothing is stored.
        rejects_path: Where rejected rows go; default ``<stem>.rejects.csv``
            (or ``.jsonl``) next to the input. Only created when a row is rejected.
        batch_size: Rows validated and stored per batch (hooks run once per batch).
        actor: Who is importing (passed to hooks).
        progress: Called after each batch with (rows read, bytes read) so far.

    Rejected rows are written in the order the problems are found (a batch's
    duplicates after its malformed rows); each carries its input line.

    Returns:
        The counts of imported and rejected rows and the rejects file, if any.

    Raises:
        ValidationError: The file cannot be read, has an unknown column (at
            line 1), or, without ``skip_invalid``, a row is bad; the message
            starts with ``file:line:`` and ``field`` names the bad field.
        ConflictError: Without ``skip_invalid``, a row duplicates a stored
            customer (or an earlier row).
    """
    return _run_import(
        crm, _CUSTOMERS, path, format=format, skip_invalid=skip_invalid,
        rejects_path=rejects_path, batch_size=batch_size, actor=actor, progress=progress,
    )  # fmt: skip


def import_interactions(
    crm: CRM,
    path: str | Path,
    *,
    format: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    batch_size: int = 500,
    actor: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import interactions from a CSV or JSON Lines file in one transaction.

    A row names its customer by ``customer_id`` or by ``customer_email``
    (matched after normalisation, one query per batch). Purchases move their
    customer's lifecycle stage as :meth:`~crmcore.interactions.InteractionService.record_many`
    does. Arguments, result and errors are those of :func:`import_customers`;
    an unknown customer is a row error too.
    """
    return _run_import(
        crm, _INTERACTIONS, path, format=format, skip_invalid=skip_invalid,
        rejects_path=rejects_path, batch_size=batch_size, actor=actor, progress=progress,
    )  # fmt: skip


__all__ = ["FORMATS", "ImportResult", "Progress", "import_customers", "import_interactions"]
