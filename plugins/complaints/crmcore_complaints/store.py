"""Complaint storage shared by the service: the guarded load, history writes, reads.

:class:`ComplaintStore` is the base of
:class:`~crmcore_complaints.service.ComplaintService`: every per-complaint
operation loads the complaint through :meth:`ComplaintStore._load`, which
checks READ (or, for a change, WRITE) on the complaint's customer, and every
history entry goes through :meth:`ComplaintStore._write_history`, which
audits it through core.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, select

from crmcore import CRM, Page, UnitOfWork
from crmcore.access import Action
from crmcore.errors import NotFoundError, ValidationError
from crmcore_complaints import sla
from crmcore_complaints.entities import Complaint, HistoryEntry
from crmcore_complaints.settings import Settings, settings_of
from crmcore_complaints.tables import (
    breaches_table,
    cases_table,
    compensations_table,
    history_table,
)
from crmcore_complaints.workflow import (
    ACTIVE,
    State,
    parse_severity,
    parse_state,
)

#: Kinds of compensation (the ``kind`` of ``complaints_compensation_issued``).
COMPENSATION_KINDS = ("points", "refund", "voucher", "gift", "other")
#: The rating scale of the customer's verdict on the handling.
RATING_MIN, RATING_MAX = 1, 5
#: Ids per ``IN (...)`` query.
CHUNK = 400


def bad(name: str, message: str, value: Any = None) -> ValidationError:
    """A ValidationError naming field ``name``."""
    return ValidationError(f"{name}: {message}", field=name, value=value)


def text_field(
    data: Mapping[str, Any], name: str, limit: int, *, required: bool = False
) -> str | None:
    """The stripped text of ``data[name]`` (at most ``limit`` characters), or ``None``."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise bad(name, "required")
        return None
    if not isinstance(value, str):
        raise bad(name, f"expected a string, got {type(value).__name__}", value)
    value = value.strip()
    if len(value) > limit:
        raise bad(name, f"longer than {limit} characters ({len(value)})", value)
    return value


def id_field(value: Any, name: str) -> int:
    """``value`` as an integer id (digits in a string accepted)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise bad(name, f"expected an integer id, got {value!r}", value)
    return value


def moment(uow: UnitOfWork, at: datetime | str | None, name: str = "at") -> datetime:
    """The time an operation happens: ``at`` when given (backfill), else the clock's ``now``.

    Both are taken in UTC with fractions of a second dropped. Raises
    ValidationError when ``at`` is naive, not a datetime, or after the clock.
    """
    now = uow.now.astimezone(UTC).replace(microsecond=0)
    if at is None:
        return now
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at.strip())
        except ValueError:
            raise bad(name, f"not an ISO 8601 datetime: {at!r}", at) from None
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise bad(name, f"must be a timezone-aware datetime, got {at!r}", at)
    when = at.astimezone(UTC).replace(microsecond=0)
    if when > now:
        raise bad(name, f"{when.isoformat()} is after the clock's time {now.isoformat()}", at)
    return when


class ComplaintStore:
    """The tables, the guarded load, the history and the reads of :class:`ComplaintService`."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self.cases = cases_table(crm.metadata)
        self.history_table = history_table(crm.metadata)
        self.compensations_table = compensations_table(crm.metadata)
        self.breaches_table = breaches_table(crm.metadata)

    @property
    def settings(self) -> Settings:
        """The plugin's settings for this CRM."""
        return settings_of(self._crm)

    # --- reading ---------------------------------------------------------------

    def get(self, complaint_id: int, *, ctx: UnitOfWork | None = None) -> Complaint:
        """Return one complaint; NotFoundError when there is none with this id."""
        if ctx is not None:
            return self._load(ctx, complaint_id)
        with self._crm.reading() as uow:
            return self._load(uow, complaint_id)

    def _load(self, uow: UnitOfWork, complaint_id: int, *, lock: bool = False) -> Complaint:
        query = select(self.cases).where(self.cases.c.id == complaint_id)
        if lock and uow.connection.dialect.name == "postgresql":
            query = query.with_for_update()
        row = uow.connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"complaint_id: complaint {complaint_id} does not exist")
        # Every per-complaint operation loads through here: reads need READ on the
        # complaint's customer, changes (locked loads) WRITE.
        action = Action.WRITE if lock else Action.READ
        uow.crm.access.guard(uow, row.customer_id, action)
        return Complaint.from_row(row._mapping)

    def _write_history(
        self,
        uow: UnitOfWork,
        entries: Sequence[Mapping[str, Any]],
        owners: dict[int, int] | None = None,
    ) -> None:
        """Insert history entries and audit them through core (a batch entry per action).

        ``owners`` maps complaint ids to customer ids when the caller knows them.
        """
        if not entries:
            return
        uow.connection.execute(insert(self.history_table), entries)
        ids = [] if owners is not None else sorted({e["complaint_id"] for e in entries})
        owners = dict(owners or {})
        for start in range(0, len(ids), CHUNK):
            query = select(self.cases.c.id, self.cases.c.customer_id).where(
                self.cases.c.id.in_(ids[start : start + CHUNK])
            )
            owners.update({cid: customer for cid, customer in uow.connection.execute(query)})
        by_action: dict[str, list[tuple[int | None, int | None, Mapping[str, Any]]]] = {}
        for entry in entries:
            cid = entry["complaint_id"]
            details = {"from": entry["from_value"], "to": entry["to_value"]}
            by_action.setdefault(entry["action"], []).append((cid, owners.get(cid), details))
        for action, subjects in by_action.items():
            if len(subjects) > 1:
                subjects = [(i, c, {}) for i, c, _ in subjects]
            uow.crm.audit.record_batch(uow, f"complaints.{action}", "complaint", subjects)

    def list(
        self,
        *,
        state: str | None = None,
        customer_id: int | None = None,
        assignee: str | None = None,
        category: str | None = None,
        severity: str | None = None,
        breached: bool | None = None,
        active: bool | None = None,
        limit: int = 50,
        offset: int = 0,
        ctx: UnitOfWork | None = None,
    ) -> Page[Complaint]:
        """Complaints matching every filter given, newest first.

        ``category`` matches the node and everything under it
        (``delivery`` finds ``delivery/late``); ``breached`` selects
        complaints with a breach marked by the sweep; ``active`` those still
        being handled (neither resolved nor closed).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise bad("limit", f"must be an integer from 1 to 1000, got {limit!r}", limit)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise bad("offset", f"must be a non-negative integer, got {offset!r}", offset)
        c = self.cases.c
        conditions: list[Any] = []
        if state is not None:
            conditions.append(c.state == parse_state(state).value)
        if customer_id is not None:
            conditions.append(c.customer_id == customer_id)
        if assignee is not None:
            conditions.append(c.assignee == assignee)
        if category is not None:
            # autoescape: a %, _ or the escape character in the filter is literal text
            under = c.category.startswith(category + "/", autoescape=True, escape="\\")
            conditions.append((c.category == category) | under)
        if severity is not None:
            conditions.append(c.severity == parse_severity(severity).value)
        if breached is not None:
            either = c.first_response_breached | c.resolution_breached
            conditions.append(either if breached else ~either)
        if active is not None:
            states = [s.value for s in ACTIVE]
            conditions.append(c.state.in_(states) if active else c.state.not_in(states))
        conditions.append(self._crm.access.where(c.customer_id))  # only visible customers
        where = and_(True, *conditions)
        with self._crm.reading(ctx) as uow:
            total = uow.connection.execute(
                select(func.count()).select_from(self.cases).where(where)
            ).scalar_one()
            rows = uow.connection.execute(
                select(self.cases)
                .where(where)
                .order_by(c.opened_at.desc(), c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return Page(
            items=[Complaint.from_row(r._mapping) for r in rows],
            total=total,
            limit=limit,
            offset=offset,
        )

    def history(
        self, complaint_id: int, *, ctx: UnitOfWork | None = None
    ) -> builtins.list[HistoryEntry]:
        """Every change of the complaint, oldest first; NotFoundError for an unknown id."""
        h = self.history_table.c
        with self._crm.reading(ctx) as uow:
            self._load(uow, complaint_id)
            rows = uow.connection.execute(
                select(self.history_table)
                .where(h.complaint_id == complaint_id)
                .order_by(h.at, h.id)
            ).all()
        return [history_entry(r) for r in rows]

    def compensations(
        self, complaint_id: int, *, ctx: UnitOfWork | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Compensation granted for the complaint, oldest first, JSON-safe."""
        t = self.compensations_table
        with self._crm.reading(ctx) as uow:
            self._load(uow, complaint_id)
            rows = uow.connection.execute(
                select(t).where(t.c.complaint_id == complaint_id).order_by(t.c.id)
            ).all()
        return [compensation_json(r) for r in rows]

    def sla_status(self, complaint_id: int) -> dict[str, Any]:
        """The complaint's SLA clocks as of the clock's time: elapsed, target, due, breached.

        ``breached`` is computed from the durations (elapsed above target),
        whether or not a sweep has marked it yet.
        """
        complaint = self.get(complaint_id)
        now = self._crm.clock().astimezone(UTC).replace(microsecond=0)
        schedule = self.settings.schedule
        fr_elapsed = sla.first_response_elapsed(
            schedule, complaint.clocks, complaint.opened_at, now
        )
        res_elapsed = sla.resolution_elapsed(schedule, complaint.clocks, now)
        running = complaint.resolution_running_since is not None
        return {
            "complaint_id": complaint.id,
            "as_of": now.isoformat(),
            "first_response": {
                "elapsed_seconds": fr_elapsed,
                "target_seconds": complaint.first_response_target_seconds,
                "due_at": complaint.first_response_due_at.isoformat(),
                "stopped": complaint.first_response_at is not None,
                "breached": fr_elapsed > complaint.first_response_target_seconds,
            },
            "resolution": {
                "elapsed_seconds": res_elapsed,
                "target_seconds": complaint.resolution_target_seconds,
                "due_at": (
                    complaint.resolution_due_at.isoformat() if complaint.resolution_due_at else None
                ),
                "running": running,
                "paused": complaint.state is State.WAITING_CUSTOMER,
                "breached": res_elapsed > complaint.resolution_target_seconds,
            },
        }

    # --- helpers -----------------------------------------------------------------

    @staticmethod
    def _when(uow: UnitOfWork, complaint: Complaint, at: datetime | None) -> datetime:
        when = moment(uow, at)
        if when < complaint.updated_at:
            raise bad(
                "at",
                f"{when.isoformat()} is before the complaint's last change "
                f"{complaint.updated_at.isoformat()}",
                at,
            )
        return when

    @staticmethod
    def _entry(
        complaint_id: int,
        at: datetime,
        actor: str | None,
        action: str,
        from_value: str | None,
        to_value: str | None,
        *,
        note: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "complaint_id": complaint_id,
            "at": at,
            "actor": actor,
            "action": action,
            "from_value": from_value,
            "to_value": to_value,
            "note": note,
            "details": dict(details or {}),
        }


def history_entry(row: Row[Any]) -> HistoryEntry:
    """Build a :class:`HistoryEntry` from a ``complaints_history`` row."""
    return HistoryEntry(
        id=row.id,
        complaint_id=row.complaint_id,
        at=row.at,
        action=row.action,
        actor=row.actor,
        from_value=row.from_value,
        to_value=row.to_value,
        note=row.note,
        details=dict(row.details or {}),
    )


def compensation_json(row: Row[Any]) -> dict[str, Any]:
    """A ``complaints_compensations`` row as JSON-safe data (amount as a string)."""
    return {
        "id": row.id,
        "complaint_id": row.complaint_id,
        "kind": row.kind,
        "points": row.points,
        "amount": None if row.amount is None else str(row.amount),
        "currency": row.currency,
        "reason": row.reason,
        "idempotency_key": row.idempotency_key,
        "refund_interaction_id": row.refund_interaction_id,
        "issued_at": row.issued_at.isoformat(),
        "actor": row.actor,
    }
