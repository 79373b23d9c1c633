"""The options of a customers import that matches rows (``update_existing``) or stores external ids.

The ``external_id`` column of a customers file holds the row's id in the
system ``system`` names (``--system``); :func:`with_system` turns it into the
``external_ids`` key that ``crm.customers.create_many`` takes. The rejects
of such an import say why a duplicate was refused and how to update it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from crmcore.errors import (
    ConflictError,
    CRMError,
    RejectHandler,
    ValidationError,
    ValidationErrors,
)
from crmcore.io.imports.columns import (
    CUSTOMER_PLAIN,
    Columns,
    ColumnsFactory,
    Setter,
    build_columns,
    customer_setter,
)
from crmcore.io.imports.feed import Feed
from crmcore.io.imports.reading import Record
from crmcore.services.customers.external_ids import (
    EXTERNAL_IDS_KEY,
    check_external_id,
    check_system,
)

#: The keys ``match`` accepts.
MATCH_KEYS = ("email", "phone", "external_id")
#: The column of a customers file holding the row's id in ``system``.
EXTERNAL_ID_COLUMN = "external_id"
# The start of a duplicate's message -> the match key that would have updated it.
_HINTED = {
    "email": "duplicate customer: email ",
    "phone": "duplicate customer: phone ",
    "external_id": "external_id: ",
}
_ANY_KEY = "email|phone|external_id"


def check_upsert_options(
    update_existing: bool, match: str | None, system: str | None
) -> tuple[str | None, str | None]:
    """Check ``update_existing``, ``match`` and ``system``; return (match, system) cleaned."""
    if match is not None and not update_existing:
        raise ValidationError("match: only with update_existing (--update-existing)", field="match")
    if update_existing and match is None:
        raise ValidationError(
            f"match: give the key that finds existing customers: {', '.join(MATCH_KEYS)}",
            field="match",
        )
    if match is not None and match not in MATCH_KEYS:
        raise ValidationError(
            f"match: {match!r} is not one of: {', '.join(MATCH_KEYS)}", field="match", value=match
        )
    if system is not None:
        system = check_system(system)
    if match == "external_id" and system is None:
        raise ValidationError(
            "system: give the system the external ids belong to (--system NAME)", field="system"
        )
    return match, system


def _set_external_id(data: dict[str, Any], text: str) -> None:
    data[EXTERNAL_ID_COLUMN] = text


def customer_upsert_columns(
    schema: Mapping[str, Any] | None, max_columns: int, match: str | None, system: str | None
) -> ColumnsFactory:
    """The column plan of a customers file with an ``external_id`` column and a match column."""
    known = ", ".join(
        [*CUSTOMER_PLAIN, "tags", "consent.<flag>", "attributes", "attributes.<key>"]
        + ([EXTERNAL_ID_COLUMN] if system is not None else [])
    )

    def setter_for(column: str) -> Setter | None:
        if column == EXTERNAL_ID_COLUMN and system is not None:
            return _set_external_id
        return customer_setter(column, schema)

    def build(header: Sequence[str], where: str) -> Columns:
        names = [cell.strip() for cell in header]
        if EXTERNAL_ID_COLUMN in names and system is None:
            raise ValidationError(
                f"{where}: {EXTERNAL_ID_COLUMN}: give the system these ids belong to (--system)",
                field=EXTERNAL_ID_COLUMN,
            )
        columns = build_columns(header, where, setter_for, known, max_columns)
        if match is not None and match not in columns.header:
            raise ValidationError(
                f"{where}: {match}: the match column is not in the header", field=match
            )
        return columns

    return build


def with_system(records: Iterator[Record], system: str) -> Iterator[Record]:
    """Turn each record's ``external_id`` into ``external_ids={system: id}`` (what create takes)."""
    for record in records:
        data = record.data
        if data is not None and record.error is None and EXTERNAL_ID_COLUMN in data:
            value = data.pop(EXTERNAL_ID_COLUMN)
            if value is not None:
                try:
                    external_id = check_external_id(value)
                except ValidationError as exc:
                    record.error = exc
                else:
                    given = data.get(EXTERNAL_IDS_KEY)
                    merged = dict(given) if isinstance(given, Mapping) else {}
                    merged[system] = external_id
                    data[EXTERNAL_IDS_KEY] = merged
        yield record


def system_resolution(
    system: str | None,
) -> Callable[[Any, Iterator[Record], Any, int], Iterator[Record]]:
    """The import pipeline's resolve step: :func:`with_system` when a system is given."""

    def resolve(crm: Any, records: Iterator[Record], connection: Any, size: int) -> Any:
        return records if system is None else with_system(records, system)

    return resolve


def duplicate_hint(match: str | None) -> Callable[[CRMError], CRMError]:
    """How an import explains a duplicate: with or without ``update_existing``."""

    def hinted(exc: CRMError) -> CRMError:
        message = str(exc)
        if not isinstance(exc, ConflictError) or "already belongs to" not in message:
            return exc
        if match is not None:
            why = f"the row's {match} matches no customer, so nothing was updated"
        else:
            key = next((k for k in _HINTED if message.startswith(_HINTED[k])), None)
            why = f"to update it instead, import with --update-existing --match {key or _ANY_KEY}"
        return ConflictError(f"{message} ({why})", existing_id=exc.existing_id)

    return hinted


def hinted_rejects(feed: Feed, match: str | None) -> RejectHandler:
    """``feed.on_reject`` with the duplicate hint of :func:`duplicate_hint`."""
    hint = duplicate_hint(match)

    def on_reject(position: int, item: Any, exc: CRMError) -> None:
        feed.on_reject(position, item, hint(exc))

    return on_reject


_POSITION = re.compile(r"\b(?:customers|updates)\[(\d+)\]")


def renumbered(exc: CRMError, positions: Sequence[int]) -> CRMError:
    """``exc`` with the positions it names mapped through ``positions``.

    ``customers[1]`` and ``updates[1]`` become ``customers[positions[1]]``,
    which the feed turns into file lines.

    The import gives ``create_many`` only a batch's new rows (``update_many``
    its changed ones): their positions are indices into those, the feed's
    into the whole batch.
    """
    message = str(exc)
    if not _POSITION.search(message) or isinstance(exc, ValidationErrors):
        return exc

    def mapped(found: re.Match[str]) -> str:
        index = int(found.group(1))
        return f"customers[{positions[index]}]" if index < len(positions) else found.group(0)

    text = _POSITION.sub(mapped, message)
    if isinstance(exc, ConflictError):
        return ConflictError(text, existing_id=exc.existing_id)
    if isinstance(exc, ValidationError):
        return ValidationError(text, field=exc.field, value=exc.value)
    return CRMError(text)


class IdSet:
    """A compact set of positive customer ids (a sparse bitmap): what the import has touched."""

    _SPAN = 1 << 16

    def __init__(self) -> None:
        self._chunks: dict[int, bytearray] = {}

    def add(self, value: int) -> None:
        """Remember ``value``."""
        chunk = self._chunks.get(value // self._SPAN)
        if chunk is None:
            chunk = self._chunks[value // self._SPAN] = bytearray(self._SPAN // 8)
        offset = value % self._SPAN
        chunk[offset >> 3] |= 1 << (offset & 7)

    def __contains__(self, value: object) -> bool:
        """Whether ``value`` was added."""
        if not isinstance(value, int):
            return False
        chunk = self._chunks.get(value // self._SPAN)
        offset = value % self._SPAN
        return chunk is not None and bool(chunk[offset >> 3] & (1 << (offset & 7)))


__all__ = [
    "EXTERNAL_ID_COLUMN",
    "MATCH_KEYS",
    "IdSet",
    "check_upsert_options",
    "customer_upsert_columns",
    "duplicate_hint",
    "hinted_rejects",
    "renumbered",
    "system_resolution",
    "with_system",
]
