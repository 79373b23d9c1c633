"""Feeding import records to a service, mapping its positions back to file lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from crmcore.errors import ConflictError, CRMError, ValidationError, ValidationErrors
from crmcore.io.imports.reading import Record
from crmcore.io.imports.rejects import Rejects

#: Called after each batch with (rows read so far, bytes read so far).
Progress = Callable[[int, int], None]

_POSITION = re.compile(r"\b(?:customers|interactions)\[(\d+)\]")


def relabel(message: str, pending: Mapping[int, Record]) -> str:
    """Replace service positions (``customers[3]``) by the file line they came from."""

    def line_of(match: re.Match[str]) -> str:
        record = pending.get(int(match.group(1)))
        return f"the row at line {record.line}" if record else match.group(0)

    return _POSITION.sub(line_of, message)


def locate(exc: CRMError, where: str, relabel: Callable[[str], str]) -> CRMError:
    """Return the same error with ``where`` (``file:line``) in front of its message."""
    if isinstance(exc, ValidationErrors):
        located = [locate(e, where, relabel) for e in exc.errors]
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


def reason_of(exc: CRMError, relabel: Callable[[str], str]) -> str:
    """The reason a rejects file gives for an error (every message of a group)."""
    if isinstance(exc, ValidationErrors):
        return "; ".join(relabel(str(e)) for e in exc.errors)
    return relabel(str(exc))


class Feed:
    """Feeds records to a service and maps the service's positions back to file lines.

    Only the records of the batch the service is working on are kept, so
    memory stays flat. ``progress`` is called when the service asks for the
    first row of a new batch, i.e. once the previous batch is stored. An
    import committed in segments calls :meth:`items` once per segment: the
    service's positions restart at 0 each time, the counts add up.
    """

    def __init__(
        self,
        location: str,
        batch_size: int,
        rejects: Rejects | None,
        progress: Progress | None,
    ) -> None:
        self._location = location
        self._batch_size = batch_size
        self._rejects = rejects
        self._progress = progress
        self._pending: dict[int, Record] = {}
        self._fed = 0
        self.stored = 0
        self.refused_by_service = 0
        self.already_stored = 0
        self.rows = 0
        self.last_line = 0

    def items(self, records: Iterable[Record]) -> Iterator[dict[str, Any]]:
        """Yield the row dicts of the good records, rejecting bad ones on the way."""
        self._pending.clear()
        self._fed = 0
        for record in records:
            self.rows = record.rows
            self.last_line = record.line
            if record.error is not None or record.data is None:
                self._refuse(record, record.error or ValidationError("empty record"))
                continue
            if self._fed and self._fed % self._batch_size == 0:
                self._batch_stored()
            self._pending[self._fed] = record
            self._fed += 1
            self.stored += 1
            yield record.data

    def _batch_stored(self) -> None:
        last = self._pending[self._fed - 1]
        self._pending.clear()
        if self._progress is not None:
            self._progress(last.rows, last.bytes)

    def on_reject(self, position: int, item: Any, exc: CRMError) -> None:
        """Handle a row the service refused: raise the located error, or write it to rejects."""
        self.refused_by_service += 1
        self.stored -= 1
        self._refuse(self._pending[position], exc)

    def on_existing(self, position: int, item: Any, stored_id: int | None) -> None:
        """Count a row the service left out because its external id is already stored."""
        self.already_stored += 1
        self.stored -= 1

    def _refuse(self, record: Record, exc: CRMError) -> None:
        def relabelled(message: str) -> str:
            return relabel(message, self._pending)

        if self._rejects is None:
            raise locate(exc, f"{self._location}:{record.line}", relabelled) from None
        self._rejects.write(record.line, record.raw, reason_of(exc, relabelled))
