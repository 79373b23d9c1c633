"""Import customers and interactions from CSV or JSON Lines files, streamed in batches.

The file is read record by record and fed to ``crm.customers.create_many`` or
``crm.interactions.record_many`` as a generator, so memory stays flat however
large the file is. Everything is stored in one transaction by default: the
first bad row aborts the import and nothing is stored. With
``skip_invalid=True`` the good rows are stored and every bad row is written,
with its reason, to a rejects file. With ``commit_every=N`` the import
commits every N records instead, so a killed import keeps what it committed
and a re-run resumes (interaction imports skip what is already stored by
its external id; see below).

Errors name the file, the line where the bad record starts and the field::

    customers.csv:7: email: not a valid email address: 'x@'

Encodings: UTF-8 by default; a byte-order mark (UTF-8, UTF-16, UTF-32) is
detected and wins; ``encoding`` names another codec (``gbk``, ``gb18030``,
``big5``, ``utf-16`` ...). Bytes that are not valid in the encoding make the
row invalid; its rejects entry keeps the original bytes, since the rejects
file is written in the input's encoding.

CSV files have a header line of at most :data:`MAX_COLUMNS` columns. Customer
columns are :class:`~crmcore.model.entities.Customer` field names, plus ``tags``
(``;``-separated), ``consent.<flag>`` (booleans), ``attributes.<key>`` (one
custom attribute, coerced to the type the deployment's attributes JSON
Schema declares for it, ASCII digits only) and ``attributes`` (a JSON
object). Interaction columns are :class:`~crmcore.model.entities.Interaction` field
names, with ``payload`` a JSON object and ``items`` a JSON array; a row may
name its customer by ``customer_email`` instead of ``customer_id``. An ``id``
column is accepted (so that an export imports again) and ignored: stored
records get new ids. Empty cells mean "absent". JSON Lines files hold one
object per line with the field names :func:`crmcore.model.serialization.to_dict`
produces.

Idempotent interaction imports: every imported interaction carries an
external id under ``source`` (default ``"import"``), and one that is already
stored is skipped and counted in ``ImportResult.already_stored``: re-running
an import, completed or killed, stores nothing twice and earns nothing twice.
The external id is, in this order: the row's ``external_id`` column; the
column named by ``id_column`` (an order or ticket number); else a content
key (:meth:`crmcore.io.imports.columns.Columns.content_key`; JSON Lines: the
object with sorted keys, hashed), so two identical rows of one file are one
interaction.
``dedupe=False`` stores every row without an external id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import attrs
from sqlalchemy import Connection

from crmcore.access import Action
from crmcore.dry_run import unit_or_dry_run
from crmcore.errors import RejectHandler, ValidationError
from crmcore.io.imports.columns import (
    MAX_COLUMNS,
    ColumnsFactory,
    interaction_columns,
    object_from_json,
)
from crmcore.io.imports.emails import resolve_customer_emails
from crmcore.io.imports.feed import Feed, Progress
from crmcore.io.imports.matching import (
    MATCH_KEYS,
    check_upsert_options,
    customer_upsert_columns,
    hinted_rejects,
    system_resolution,
)
from crmcore.io.imports.reading import CsvSource, Lines, Record, jsonl_records, resolve_encoding
from crmcore.io.imports.rejects import Rejects, find_rejects, purge_rejects
from crmcore.io.imports.upsert import Upsert
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

#: Accepted ``format`` values and what they mean.
FORMATS: Mapping[str, str] = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: The source imported interactions' external ids belong to unless one is given.
IMPORT_SOURCE = "import"


@attrs.frozen
class ImportResult:
    """What an import did.

    ``imported``: rows stored; ``rejected``: rows written to the rejects file;
    ``already_stored``: interaction rows skipped because their external id
    was stored already (by an earlier run, or an earlier row of this file);
    ``rejects_path`` is ``None`` when nothing was rejected (no empty rejects
    file is created) and after a dry run; ``last_line``: the last input line read.
    After a dry run (``dry_run``) the counts are what the import would do.
    A customers import with ``update_existing`` also counts the matched rows:
    ``updated`` (a field or an external id changed) and ``unchanged``
    (nothing to change); ``imported`` (also ``created``) counts the new customers.
    """

    imported: int
    rejected: int
    rejects_path: Path | None
    already_stored: int = 0
    last_line: int = attrs.field(default=0, eq=False)
    #: True when this was a dry run: nothing was stored and no rejects file written.
    dry_run: bool = False
    #: Matched customers changed (``update_existing``).
    updated: int = 0
    #: Matched customers that already held every value of their row (``update_existing``).
    unchanged: int = 0

    @property
    def created(self) -> int:
        """The customers (or interactions) stored anew: ``imported``."""
        return self.imported


@attrs.frozen
class _Entity:
    """What differs between importing customers and importing interactions."""

    resolve: Callable[[CRM, Iterator[Record], Connection, int], Iterator[Record]]
    store: Callable[[CRM, Iterator[dict[str, Any]], UnitOfWork, int, Feed], object]


def _no_resolution(
    crm: CRM, records: Iterator[Record], connection: Connection, size: int
) -> Iterator[Record]:
    return records


def _store_customers(
    crm: CRM, items: Iterator[dict[str, Any]], ctx: UnitOfWork, size: int, feed: Feed
) -> object:
    reject: RejectHandler = hinted_rejects(feed, None)
    return crm.customers.create_many(items, ctx=ctx, batch_size=size, on_reject=reject, keep=False)


def _store_interactions(
    crm: CRM, items: Iterator[dict[str, Any]], ctx: UnitOfWork, size: int, feed: Feed
) -> object:
    return crm.interactions.record_many(
        items,
        ctx=ctx,
        batch_size=size,
        on_reject=feed.on_reject,
        on_existing=feed.on_existing,
        keep=False,
    )


_CUSTOMERS = _Entity(_no_resolution, _store_customers)
_INTERACTIONS = _Entity(resolve_customer_emails, _store_interactions)


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
    source: Path, format: str, given: str | Path | None, header: list[str] | None, encoding: str
) -> Rejects:
    path = Path(given) if given is not None else source.with_name(f"{source.stem}.rejects.{format}")
    if path.resolve() == source.resolve():
        raise ValidationError(
            f"{path}: the rejects file must not be the input file", field="rejects_path"
        )
    return Rejects(path, format, header, encoding)


def _positive(name: str, value: object, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name}: must be at least 1, got {value!r}", field=name)


def _keyed(records: Iterator[Record], source: str) -> Iterator[Record]:
    """Give each good record without an external id its content key, under ``source``."""
    for record in records:
        if record.data is not None and record.error is None:
            if record.data.get("external_id") in (None, "") and record.key is not None:
                record.data["external_id"] = record.key
            if record.data.get("source") in (None, ""):
                record.data["source"] = source
        yield record


@attrs.frozen
class _Options:
    format: str | None
    skip_invalid: bool
    rejects_path: str | Path | None
    batch_size: int
    actor: str | None
    progress: Progress | None
    encoding: str | None
    commit_every: int | None
    max_columns: int
    keys: str | None  # None: no external ids; else the source they belong to
    id_column: str | None = None
    dry_run: bool = False


def _run_import(
    crm: CRM, entity: _Entity, columns: ColumnsFactory, path: str | Path, options: _Options
) -> ImportResult:
    crm.access.check(Action.IMPORT)
    source = Path(path)
    fmt = _resolve_format(source, options.format)
    _positive("batch_size", options.batch_size)
    _positive("commit_every", options.commit_every, optional=True)
    _positive("max_columns", options.max_columns)
    location = str(path)
    with _open_input(source) as handle:
        encoding = resolve_encoding(handle, options.encoding)
        lines = Lines(handle, encoding)
        keyed = options.keys is not None
        if fmt == "csv":
            csv_source = CsvSource(lines, location, columns, keyed=keyed)
            records: Iterator[Record] = iter(csv_source)
            header: list[str] | None = csv_source.columns.header
        else:
            records, header = jsonl_records(lines, object_from_json, keyed=keyed), None
        if options.keys is not None:
            records = _keyed(records, options.keys)
        rejects = (
            _rejects_file(source, fmt, options.rejects_path, header, encoding)
            if options.skip_invalid
            else None
        )
        feed = Feed(location, options.batch_size, rejects, options.progress)
        segment = None if options.dry_run else options.commit_every
        try:
            while True:
                part = records if segment is None else islice(records, segment)
                read_before = feed.rows
                with unit_or_dry_run(crm, options.actor, None, options.dry_run) as uow:
                    resolved = entity.resolve(crm, part, uow.connection, options.batch_size)
                    entity.store(crm, feed.items(resolved), uow, options.batch_size, feed)
                if segment is None or feed.rows == read_before:
                    break
        except BaseException as exc:
            if rejects is not None:
                rejects.close(discard=segment is None)
            if segment is not None and feed.rows and isinstance(exc, Exception | KeyboardInterrupt):
                exc.add_note(_resume_note(location, feed))
            raise
        if rejects is not None:
            rejects.close(discard=options.dry_run)
    if options.progress is not None:
        options.progress(feed.rows, lines.bytes)
    rejected = rejects.count if rejects is not None else 0
    return ImportResult(
        imported=feed.stored,
        rejected=rejected,
        rejects_path=rejects.path
        if rejects is not None and rejected and not options.dry_run
        else None,
        already_stored=feed.already_stored,
        last_line=feed.last_line,
        dry_run=options.dry_run,
    )


def _resume_note(location: str, feed: Feed) -> str:
    return (
        f"{location}: the import stopped; what was read before the last commit is stored "
        f"({feed.rows} records read, up to line {feed.last_line}); run it again to resume"
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
    encoding: str | None = None,
    commit_every: int | None = None,
    max_columns: int = MAX_COLUMNS,
    dry_run: bool = False,
    update_existing: bool = False,
    match: str | None = None,
    system: str | None = None,
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
            (or ``.jsonl``) next to the input. Only created when a row is
            rejected, and only once the import commits.
        batch_size: Rows validated and stored per batch (hooks run once per batch).
        actor: Who is importing (passed to hooks).
        progress: Called after each batch with (rows read, bytes read) so far.
        encoding: The file's text encoding (default UTF-8; a byte-order mark wins).
        commit_every: Commit after every this many records instead of once at
            the end. A re-run of a customers import then refuses the committed
            rows as duplicates (with ``skip_invalid`` they go to the rejects file).
        max_columns: The most columns a CSV header may have.
        dry_run: Read, validate and store everything in one transaction
            (``commit_every`` is ignored), then roll it back: the result
            counts what would be imported, rejected and skipped; nothing is
            stored and no rejects file is written (``rejects_path`` is
            ``None``). Without ``skip_invalid`` the first bad row raises as
            it would in the real import.
        update_existing: Update the customers the rows match (by ``match``)
            and create the others; see :mod:`crmcore.io.imports.upsert` for
            what is updated, what counts as unchanged and what is rejected.
        match: With ``update_existing``: ``"email"``, ``"phone"`` or
            ``"external_id"`` (:data:`MATCH_KEYS`).
        system: The system the ``external_id`` column's ids belong to; each
            created customer gets its id, a matched one gets it added.

    Rejected rows are written in the order the problems are found (a batch's
    duplicates after its malformed rows); each carries its input line. A
    duplicate's reason says how to update it instead (``--update-existing``).

    Returns:
        The counts of imported and rejected rows and the rejects file, if any.

    Raises:
        ValidationError: The file cannot be read, has an unknown column (at
            line 1), or, without ``skip_invalid``, a row is bad; the message
            starts with ``file:line:`` and ``field`` names the bad field.
        ConflictError: Without ``skip_invalid``, a row duplicates a stored
            customer (or an earlier row).
    """
    options = _Options(
        format, skip_invalid, rejects_path, batch_size, actor, progress, encoding,
        commit_every, max_columns, keys=None, dry_run=dry_run,
    )  # fmt: skip
    match, system = check_upsert_options(update_existing, match, system)
    schema = crm.config.attributes_schema
    columns = customer_upsert_columns(schema, max_columns, match, system)
    if match is None and system is None:
        return _run_import(crm, _CUSTOMERS, columns, path, options)
    upsert = Upsert(match, system) if match is not None else None
    entity = _Entity(
        system_resolution(system), _store_customers if upsert is None else upsert.store
    )
    result = _run_import(crm, entity, columns, path, options)
    if upsert is None:
        return result
    matched = upsert.updated + upsert.unchanged
    return attrs.evolve(
        result,
        imported=result.imported - matched,
        updated=upsert.updated,
        unchanged=upsert.unchanged,
    )


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
    encoding: str | None = None,
    commit_every: int | None = None,
    max_columns: int = MAX_COLUMNS,
    source: str = IMPORT_SOURCE,
    id_column: str | None = None,
    dedupe: bool = True,
    dry_run: bool = False,
) -> ImportResult:
    """Import interactions from a CSV or JSON Lines file, idempotently.

    A row names its customer by ``customer_id`` or by ``customer_email``
    (matched after normalisation, one query per batch). Purchases move their
    customer's lifecycle stage as
    :meth:`~crmcore.services.interactions.InteractionService.record_many` does.
    Each row's external id (its ``external_id`` cell, the ``id_column`` cell,
    or its content key; see the module documentation) is stored under
    ``source``; a row whose id is already stored is skipped and counted in
    ``already_stored``, so a re-run creates nothing twice. ``dedupe=False``
    turns this off. Other arguments (``dry_run`` included), result and
    errors are those of :func:`import_customers`; an unknown customer is a row error too, and
    with ``commit_every`` a re-run resumes where a killed import stopped.
    """
    if id_column is not None and not dedupe:
        raise ValidationError("id_column: needs dedupe (the column is the external id)")
    options = _Options(
        format, skip_invalid, rejects_path, batch_size, actor, progress, encoding,
        commit_every, max_columns, keys=source if dedupe else None, id_column=id_column,
        dry_run=dry_run,
    )  # fmt: skip
    columns = interaction_columns(id_column, max_columns)
    return _run_import(crm, _INTERACTIONS, columns, path, options)


__all__ = [
    "FORMATS",
    "IMPORT_SOURCE",
    "MATCH_KEYS",
    "MAX_COLUMNS",
    "ImportResult",
    "Progress",
    "find_rejects",
    "import_customers",
    "import_interactions",
    "purge_rejects",
]
