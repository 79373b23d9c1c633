"""The complaint service: intake, workflow moves, assignment, resolution, rating, SLA sweep.

Get it as ``ComplaintService(crm)``. Every write runs in one unit of work
(``crm.unit_of_work(actor, ctx)``; pass ``ctx=`` to join an open one): the
complaint rows, their history, the core interaction recorded at intake, a
refund recorded for a compensation and every plugin's reaction to the hooks
fired commit together or not at all.

Times: every operation happens at the clock's time (``ctx.now``), to the
second (fractions are dropped so that every duration is a whole number of
seconds). Imports of historical complaints, and the demo, may pass ``at=`` (or
``opened_at`` per item): an aware time not after the clock and not before the
complaint's last change.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, insert, select, update

from crmcore import CRM, Channel, Page, UnitOfWork
from crmcore.access import Action
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.storage.ids import allocate_ids
from crmcore.storage.types import money_problem
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
    SETTLED,
    State,
    check_transition,
    parse_severity,
    parse_state,
)

#: Kinds of compensation (the ``kind`` of ``complaints_compensation_issued``).
COMPENSATION_KINDS = ("points", "refund", "voucher", "gift", "other")
#: The rating scale of the customer's verdict on the handling.
RATING_MIN, RATING_MAX = 1, 5

_OPEN_FIELDS = frozenset(
    {
        "customer_id",
        "category",
        "severity",
        "channel",
        "reference",
        "description",
        "assignee",
        "source_ref",
        "opened_at",
    }
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CHUNK = 400


def _bad(name: str, message: str, value: Any = None) -> ValidationError:
    return ValidationError(f"{name}: {message}", field=name, value=value)


def _text(data: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _bad(name, "required")
        return None
    if not isinstance(value, str):
        raise _bad(name, f"expected a string, got {type(value).__name__}", value)
    value = value.strip()
    if len(value) > limit:
        raise _bad(name, f"longer than {limit} characters ({len(value)})", value)
    return value


def _id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise _bad(name, f"expected an integer id, got {value!r}", value)
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
            raise _bad(name, f"not an ISO 8601 datetime: {at!r}", at) from None
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise _bad(name, f"must be a timezone-aware datetime, got {at!r}", at)
    when = at.astimezone(UTC).replace(microsecond=0)
    if when > now:
        raise _bad(name, f"{when.isoformat()} is after the clock's time {now.isoformat()}", at)
    return when


class ComplaintService:
    """Complaints: the Python API behind ``crm complaints``."""

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

    # --- intake ----------------------------------------------------------------

    def open(
        self,
        data: Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        source: str = "api",
    ) -> Complaint:
        """Open one complaint; return it with its id.

        ``data``: ``customer_id`` and ``category`` (a node of the category
        tree) are required; ``severity`` (default from config), ``channel``
        (a core channel, default ``other``), ``reference`` (product or order),
        ``description``, ``assignee``, ``source_ref`` and ``opened_at``
        (backfill) are optional. Records an Interaction of kind ``complaint``
        through core in the same transaction. Raises ValidationError for bad
        input, NotFoundError for an unknown customer, ConflictError when
        ``source_ref`` was already used for this source.
        """
        return self.open_many([data], actor=actor, ctx=ctx, source=source)[0]

    def open_many(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        source: str = "import",
        batch_size: int = 500,
    ) -> list[Complaint]:
        """Open many complaints in one transaction, in batches (the bulk import path).

        A constant number of statements per batch: one customer check, one
        recurrence read, one interaction batch through core, one executemany
        each for the complaints and their history. All or nothing: the first
        bad item raises, prefixed with its position (``complaints[3]: ...``).
        """
        opened: list[Complaint] = []
        with self._crm.unit_of_work(actor, ctx) as uow:
            batch: list[Mapping[str, Any]] = []
            start = 0
            for item in items:
                batch.append(item)
                if len(batch) >= batch_size:
                    opened.extend(self._open_batch(uow, batch, source, start))
                    start += len(batch)
                    batch = []
            if batch:
                opened.extend(self._open_batch(uow, batch, source, start))
        return opened

    def _parse_new(self, uow: UnitOfWork, data: Mapping[str, Any], source: str) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise ValidationError(f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - _OPEN_FIELDS)
        if unknown:
            raise _bad(unknown[0], "unknown field")
        settings = self.settings
        if data.get("customer_id") is None:
            raise _bad("customer_id", "required")
        customer_id = _id(data["customer_id"], "customer_id")
        category = _text(data, "category", 200, required=True)
        assert category is not None
        if category not in settings.categories:
            known = ", ".join(sorted(settings.categories))
            raise _bad("category", f"{category!r} is not in the category tree ({known})", category)
        severity = parse_severity(data.get("severity") or settings.default_severity)
        channel_value = data.get("channel") or Channel.OTHER.value
        try:
            channel = Channel(channel_value).value
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            raise _bad("channel", f"{channel_value!r} is not one of: {allowed}") from None
        source_ref = data.get("source_ref")
        return {
            "customer_id": customer_id,
            "category": category,
            "severity": severity,
            "channel": channel,
            "reference": _text(data, "reference", 200),
            "description": _text(data, "description", 100_000),
            "assignee": _text(data, "assignee", 200),
            "source": source,
            "source_ref": None if source_ref is None else str(source_ref)[:200],
            "opened_at": moment(uow, data.get("opened_at"), "opened_at"),
        }

    def _open_batch(
        self, uow: UnitOfWork, batch: Sequence[Mapping[str, Any]], source: str, start: int
    ) -> list[Complaint]:
        parsed: list[dict[str, Any]] = []
        for offset, data in enumerate(batch):
            try:
                parsed.append(self._parse_new(uow, data, source))
            except ValidationError as exc:
                if len(batch) == 1 and start == 0:
                    raise
                raise ValidationError(
                    f"complaints[{start + offset}]: {exc}", field=exc.field, value=exc.value
                ) from None
        customer_ids = {p["customer_id"] for p in parsed}
        self._crm.access.guard(uow, customer_ids, Action.WRITE)  # one query per batch
        existing = self._crm.customers.exists(customer_ids, ctx=uow)
        for offset, row in enumerate(parsed):
            if row["customer_id"] not in existing:
                where = "" if len(batch) == 1 and start == 0 else f"complaints[{start + offset}]: "
                raise NotFoundError(
                    f"{where}customer_id: customer {row['customer_id']} does not exist"
                )
        self._check_source_refs(uow, parsed)
        ids = allocate_ids(uow.connection, self.cases, len(parsed))
        for new_id, row in zip(ids, parsed, strict=True):
            row["id"] = new_id
        self._mark_recurrences(uow, parsed)
        settings = self.settings
        interactions = self._crm.interactions.record_many(
            (
                {
                    "customer_id": row["customer_id"],
                    "kind": "complaint",
                    "channel": row["channel"],
                    "direction": "inbound",
                    "occurred_at": row["opened_at"],
                    "text": row["description"],
                    "handled_by": row["assignee"],
                    "payload": {
                        "complaint_id": new_id,
                        "category": row["category"],
                        "severity": row["severity"].value,
                        "reference": row["reference"],
                    },
                }
                for new_id, row in zip(ids, parsed, strict=True)
            ),
            ctx=uow,
        )
        rows: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for new_id, row, interaction in zip(ids, parsed, interactions, strict=True):
            targets = settings.targets[row["severity"]]
            clocks = sla.start(
                settings.schedule, row["opened_at"], targets.first_response, targets.resolution
            )
            rows.append(
                {
                    **row,
                    "id": new_id,
                    "severity": row["severity"].value,
                    "interaction_id": interaction.id,
                    "state": State.OPEN.value,
                    "updated_at": row["opened_at"],
                    "first_response_target_seconds": targets.first_response,
                    "resolution_target_seconds": targets.resolution,
                    "first_response_due_at": clocks.first_response_due_at,
                    "resolution_accrued_seconds": 0,
                    "resolution_running_since": clocks.resolution_running_since,
                    "resolution_due_at": clocks.resolution_due_at,
                    "reopen_count": 0,
                    "first_response_breached": False,
                    "resolution_breached": False,
                }
            )
            history.append(
                self._entry(
                    new_id,
                    row["opened_at"],
                    uow.actor,
                    "open",
                    None,
                    State.OPEN.value,
                    details={
                        "category": row["category"],
                        "severity": row["severity"].value,
                        "source": source,
                        "recurrence_of": row["recurrence_of"],
                    },
                )
            )
            if row["assignee"]:
                history.append(
                    self._entry(
                        new_id, row["opened_at"], uow.actor, "assign", None, row["assignee"]
                    )
                )
        uow.connection.execute(insert(self.cases), rows)
        self._write_history(uow, history, {r["id"]: r["customer_id"] for r in rows})
        return [Complaint.from_row(r) for r in rows]

    def _check_source_refs(self, uow: UnitOfWork, parsed: Sequence[dict[str, Any]]) -> None:
        refs = [p["source_ref"] for p in parsed if p["source_ref"] is not None]
        if not refs:
            return
        if len(set(refs)) != len(refs):
            raise ConflictError("source_ref: the batch repeats a source_ref")
        source = parsed[0]["source"]
        taken = uow.connection.execute(
            select(self.cases.c.source_ref, self.cases.c.id).where(
                self.cases.c.source == source, self.cases.c.source_ref.in_(refs)
            )
        ).first()
        if taken is not None:
            raise ConflictError(
                f"source_ref: {source} {taken.source_ref!r} already opened complaint {taken.id}",
                existing_id=taken.id,
            )

    def _mark_recurrences(self, uow: UnitOfWork, parsed: Sequence[dict[str, Any]]) -> None:
        """Set ``recurrence_of``: the latest earlier complaint, same customer and category.

        One read for the batch; complaints earlier in the batch count too.
        """
        window = timedelta(days=self.settings.recurrence_days)
        earliest = min(p["opened_at"] for p in parsed) - window
        latest = max(p["opened_at"] for p in parsed)
        c = self.cases.c
        pool: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
        customers = sorted({p["customer_id"] for p in parsed})
        for begin in range(0, len(customers), _CHUNK):
            rows = uow.connection.execute(
                select(c.id, c.customer_id, c.category, c.opened_at).where(
                    c.customer_id.in_(customers[begin : begin + _CHUNK]),
                    c.opened_at >= earliest,
                    c.opened_at <= latest,
                )
            )
            for found in rows:
                pool.setdefault((found.customer_id, found.category), []).append(
                    (found.opened_at, found.id)
                )
        for item in sorted(parsed, key=lambda p: (p["opened_at"], p["id"])):
            key = (item["customer_id"], item["category"])
            candidates = [
                (at, cid)
                for at, cid in pool.get(key, [])
                if item["opened_at"] - window <= at <= item["opened_at"]
            ]
            item["recurrence_of"] = max(candidates)[1] if candidates else None
            pool.setdefault(key, []).append((item["opened_at"], item["id"]))

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
        for start in range(0, len(ids), _CHUNK):
            query = select(self.cases.c.id, self.cases.c.customer_id).where(
                self.cases.c.id.in_(ids[start : start + _CHUNK])
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
            raise _bad("limit", f"must be an integer from 1 to 1000, got {limit!r}", limit)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise _bad("offset", f"must be a non-negative integer, got {offset!r}", offset)
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

    # --- workflow --------------------------------------------------------------

    def move(
        self,
        complaint_id: int,
        state: State | str,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Move the complaint to ``state`` along the workflow graph; return it updated.

        Updates the SLA clocks (first response, pause, stop, resume) and
        records the move in the history with the actor and time. Raises
        TransitionError for a move the graph does not allow (nothing
        changes), NotFoundError for an unknown complaint.
        """
        target = parse_state(state)
        with self._crm.unit_of_work(actor, ctx) as uow:
            return self._move(uow, complaint_id, target, note=note, at=at)

    def _move(
        self,
        uow: UnitOfWork,
        complaint_id: int,
        target: State,
        *,
        note: str | None,
        at: datetime | None,
        extra: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Complaint:
        complaint = self._load(uow, complaint_id, lock=True)
        check_transition(complaint.id, complaint.state, target)
        when = self._when(uow, complaint, at)
        clocks = sla.apply_move(
            self.settings.schedule,
            complaint.clocks,
            opened_at=complaint.opened_at,
            from_state=complaint.state,
            to_state=target,
            at=when,
            resolution_target=complaint.resolution_target_seconds,
        )
        values: dict[str, Any] = {
            "state": target.value,
            "updated_at": when,
            "first_response_at": clocks.first_response_at,
            "first_response_seconds": clocks.first_response_seconds,
            "resolution_accrued_seconds": clocks.resolution_accrued_seconds,
            "resolution_running_since": clocks.resolution_running_since,
            "resolution_due_at": clocks.resolution_due_at,
            "resolution_seconds": clocks.resolution_seconds,
        }
        if target is State.RESOLVED:
            values.update(resolved_at=when, resolved_by=uow.actor or complaint.assignee)
        elif target is State.CLOSED:
            values["closed_at"] = when
        elif target is State.REOPENED:
            values.update(reopen_count=complaint.reopen_count + 1, closed_at=None)
        values.update(extra or {})
        uow.connection.execute(
            update(self.cases).where(self.cases.c.id == complaint.id).values(values)
        )
        self._write_history(
            uow,
            [
                self._entry(
                    complaint.id,
                    when,
                    uow.actor,
                    "move",
                    complaint.state.value,
                    target.value,
                    note=note,
                    details=details,
                )
            ],
        )
        return self._load(uow, complaint.id)

    def resolve(
        self,
        complaint_id: int,
        *,
        resolution: str,
        root_cause: str | None = None,
        compensations: Sequence[Mapping[str, Any]] = (),
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Resolve the complaint: resolution text, root cause, compensation; stop its clock.

        ``root_cause`` must be one of the configured root causes. Each
        compensation is a mapping with ``kind`` (``points``, ``refund``,
        ``voucher``, ``gift``, ``other``), ``points`` (a positive integer,
        required for ``points``), ``amount`` and ``currency`` (required for
        ``refund`` and ``voucher``), ``reason``, and for a refund optionally
        ``refund_of`` (a purchase interaction of the customer: a core refund
        interaction is then recorded). Fires ``complaints_compensation_issued``
        in the same transaction. Raises ValidationError / TransitionError;
        nothing is stored then.
        """
        text = _text({"resolution": resolution}, "resolution", 100_000, required=True)
        if root_cause is not None and root_cause not in self.settings.root_causes:
            known = ", ".join(self.settings.root_causes)
            raise _bad("root_cause", f"{root_cause!r} is not one of: {known}", root_cause)
        with self._crm.unit_of_work(actor, ctx) as uow:
            before = self._load(uow, complaint_id, lock=True)
            check_transition(before.id, before.state, State.RESOLVED)
            grants = [
                self._parse_compensation(uow, before, item, index)
                for index, item in enumerate(compensations)
            ]
            complaint = self._move(
                uow,
                complaint_id,
                State.RESOLVED,
                note=note,
                at=at,
                extra={"resolution": text, "root_cause": root_cause},
                details={"root_cause": root_cause, "compensations": len(grants)},
            )
            if grants:
                self._issue(uow, complaint, grants)
            return complaint

    def close(
        self,
        complaint_id: int,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Close a resolved complaint (``move(id, "closed")``)."""
        return self.move(complaint_id, State.CLOSED, note=note, actor=actor, ctx=ctx, at=at)

    def reopen(
        self,
        complaint_id: int,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Reopen a resolved or closed complaint: its resolution clock resumes."""
        return self.move(complaint_id, State.REOPENED, note=note, actor=actor, ctx=ctx, at=at)

    def assign(
        self,
        complaint_id: int,
        assignee: str | None,
        *,
        note: str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Assign (or reassign; ``None`` unassigns) the complaint; recorded in the history.

        Assigning the current assignee changes nothing. Raises
        ValidationError for a closed complaint or an over-long name.
        """
        name = _text({"assignee": assignee}, "assignee", 200)
        with self._crm.unit_of_work(actor, ctx) as uow:
            complaint = self._load(uow, complaint_id, lock=True)
            if complaint.assignee == name:
                return complaint
            if complaint.state is State.CLOSED:
                raise _bad("assignee", f"complaint {complaint.id} is closed", name)
            when = self._when(uow, complaint, at)
            uow.connection.execute(
                update(self.cases)
                .where(self.cases.c.id == complaint.id)
                .values(assignee=name, updated_at=when)
            )
            self._write_history(
                uow,
                [
                    self._entry(
                        complaint.id, when, uow.actor, "assign", complaint.assignee, name, note=note
                    )
                ],
            )
            return self._load(uow, complaint.id)

    def rate(
        self,
        complaint_id: int,
        rating: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        at: datetime | None = None,
    ) -> Complaint:
        """Record the customer's rating of the handling (1-5) of a resolved or closed complaint.

        A later rating replaces the earlier one; both are in the history.
        """
        if isinstance(rating, bool) or not isinstance(rating, int):
            raise _bad("rating", f"expected an integer, got {rating!r}", rating)
        if not RATING_MIN <= rating <= RATING_MAX:
            raise _bad("rating", f"{rating} is outside the scale {RATING_MIN}-{RATING_MAX}", rating)
        with self._crm.unit_of_work(actor, ctx) as uow:
            complaint = self._load(uow, complaint_id, lock=True)
            if complaint.state not in SETTLED:
                raise _bad(
                    "rating",
                    f"complaint {complaint.id} is {complaint.state.value}; only resolved or "
                    "closed complaints are rated",
                    rating,
                )
            when = self._when(uow, complaint, at)
            uow.connection.execute(
                update(self.cases)
                .where(self.cases.c.id == complaint.id)
                .values(rating=rating, rated_at=when)
            )
            self._write_history(
                uow,
                [
                    self._entry(
                        complaint.id,
                        when,
                        uow.actor,
                        "rate",
                        None if complaint.rating is None else str(complaint.rating),
                        str(rating),
                    )
                ],
            )
            return self._load(uow, complaint.id)

    # --- SLA sweep ---------------------------------------------------------------

    def sweep(
        self, *, actor: str | None = None, ctx: UnitOfWork | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Mark every SLA breach not marked yet and fire ``complaints_sla_breached`` once.

        A first-response target is breached when the first response came after
        ``first_response_due_at`` (or has not come and the clock is past it); a
        resolution target when the running clock is past ``resolution_due_at``
        or stopped after it. Each breach is marked once per complaint and
        target (idempotent: a second sweep finds nothing new), recorded in the
        history and in ``complaints_breaches``. Returns the breaches fired,
        ordered by complaint id then target. A programme-wide run: refused
        unless the acting user may write every customer (admins, managers).
        """
        self._crm.access.require(Action.WRITE)
        with self._crm.unit_of_work(actor, ctx) as uow:
            now = moment(uow, None)
            c = self.cases.c
            fr_query = select(
                c.id, c.customer_id, c.severity, c.first_response_due_at.label("due_at")
            ).where(
                ~c.first_response_breached,
                c.first_response_due_at < func.coalesce(c.first_response_at, now),
            )
            res_query = select(
                c.id, c.customer_id, c.severity, c.resolution_due_at.label("due_at")
            ).where(
                ~c.resolution_breached,
                c.resolution_due_at.is_not(None),
                c.resolution_due_at < now,
            )
            if uow.connection.dialect.name == "postgresql":
                fr_query = fr_query.with_for_update()
                res_query = res_query.with_for_update()
            breaches: list[dict[str, Any]] = []
            for target, query in (("first_response", fr_query), ("resolution", res_query)):
                for row in uow.connection.execute(query):
                    breaches.append(
                        {
                            "complaint_id": row.id,
                            "customer_id": row.customer_id,
                            "severity": row.severity,
                            "target": target,
                            "due_at": row.due_at,
                            "detected_at": now,
                        }
                    )
            if not breaches:
                return []
            breaches.sort(key=lambda b: (b["complaint_id"], b["target"]))
            for target in ("first_response", "resolution"):
                ids = [b["complaint_id"] for b in breaches if b["target"] == target]
                if ids:
                    uow.connection.execute(
                        update(self.cases)
                        .where(self.cases.c.id == bindparam("cid"))
                        .values({f"{target}_breached": True}),
                        [{"cid": cid} for cid in ids],
                    )
            uow.connection.execute(insert(self.breaches_table), breaches)
            self._write_history(
                uow,
                [
                    self._entry(
                        b["complaint_id"],
                        now,
                        uow.actor,
                        "breach",
                        None,
                        b["target"],
                        details={"due_at": b["due_at"].isoformat(), "severity": b["severity"]},
                    )
                    for b in breaches
                ],
            )
            self._crm.call_hook("complaints_sla_breached", ctx=uow, breaches=breaches)
            return breaches

    # --- compensation ------------------------------------------------------------

    def _parse_compensation(
        self, uow: UnitOfWork, complaint: Complaint, item: Mapping[str, Any], index: int
    ) -> dict[str, Any]:
        where = f"compensations.{index}"
        if not isinstance(item, Mapping):
            raise _bad(where, f"expected a mapping, got {type(item).__name__}")
        kind = item.get("kind")
        if kind not in COMPENSATION_KINDS:
            raise _bad(
                f"{where}.kind", f"{kind!r} is not one of: {', '.join(COMPENSATION_KINDS)}", kind
            )
        points = item.get("points")
        if points is not None and (
            isinstance(points, bool) or not isinstance(points, int) or points <= 0
        ):
            raise _bad(f"{where}.points", f"must be a positive integer, got {points!r}", points)
        if kind == "points" and points is None:
            raise _bad(f"{where}.points", "required for a points compensation")
        amount = item.get("amount")
        if amount is not None:
            if isinstance(amount, float | bool):
                raise _bad(f"{where}.amount", f"expected a Decimal or string, got {amount!r}")
            try:
                amount = Decimal(str(amount))
            except InvalidOperation:
                raise _bad(f"{where}.amount", f"not a decimal number: {amount!r}") from None
            problem = money_problem(amount)
            if problem is None and amount <= 0:
                problem = f"must be positive, got {amount}"
            if problem:
                raise _bad(f"{where}.amount", problem, amount)
        currency = item.get("currency")
        if amount is not None and currency is None:
            raise _bad(f"{where}.currency", "required when an amount is given")
        if currency is not None and (
            not isinstance(currency, str) or not _CURRENCY.match(currency)
        ):
            raise _bad(f"{where}.currency", f"must be a 3-letter ISO 4217 code, got {currency!r}")
        if kind in {"refund", "voucher"} and amount is None:
            raise _bad(f"{where}.amount", f"required for a {kind} compensation")
        reason = _text(item, "reason", 2000) or f"complaint {complaint.id}"
        refund_of = item.get("refund_of")
        if refund_of is not None:
            if kind != "refund":
                raise _bad(f"{where}.refund_of", "only a refund refers to a purchase")
            refund_of = _id(refund_of, f"{where}.refund_of")
            interactions = self._crm.metadata.tables["crm_interactions"]
            purchase = uow.connection.execute(
                select(interactions.c.customer_id, interactions.c.kind).where(
                    interactions.c.id == refund_of
                )
            ).first()
            if (
                purchase is None
                or purchase.customer_id != complaint.customer_id
                or purchase.kind != "purchase"
            ):
                raise _bad(
                    f"{where}.refund_of",
                    f"interaction {refund_of} is not a purchase of customer "
                    f"{complaint.customer_id}",
                    refund_of,
                )
        unknown = sorted(
            set(item) - {"kind", "points", "amount", "currency", "reason", "refund_of"}
        )
        if unknown:
            raise _bad(f"{where}.{unknown[0]}", "unknown field")
        return {
            "kind": kind,
            "points": points,
            "amount": amount,
            "currency": currency,
            "reason": reason,
            "refund_of": refund_of,
        }

    def _issue(
        self, uow: UnitOfWork, complaint: Complaint, grants: Sequence[dict[str, Any]]
    ) -> None:
        assert complaint.customer_id is not None and complaint.resolved_at is not None
        ids = allocate_ids(uow.connection, self.compensations_table, len(grants))
        refunds = [g for g in grants if g["refund_of"] is not None]
        recorded = self._crm.interactions.record_many(
            (
                {
                    "customer_id": complaint.customer_id,
                    "kind": "refund",
                    "channel": complaint.channel,
                    "direction": "outbound",
                    "occurred_at": complaint.resolved_at,
                    "amount": g["amount"],
                    "currency": g["currency"],
                    "payload": {"refund_of": g["refund_of"], "complaint_id": complaint.id},
                }
                for g in refunds
            ),
            ctx=uow,
        )
        refund_ids = iter(i.id for i in recorded)
        rows = []
        for new_id, grant in zip(ids, grants, strict=True):
            rows.append(
                {
                    "id": new_id,
                    "complaint_id": complaint.id,
                    "customer_id": complaint.customer_id,
                    "kind": grant["kind"],
                    "points": grant["points"],
                    "amount": grant["amount"],
                    "currency": grant["currency"],
                    "reason": grant["reason"],
                    "idempotency_key": f"complaints:compensation:{new_id}",
                    "refund_interaction_id": (
                        next(refund_ids) if grant["refund_of"] is not None else None
                    ),
                    "issued_at": complaint.resolved_at,
                    "actor": uow.actor,
                }
            )
        uow.connection.execute(insert(self.compensations_table), rows)
        payload = [
            {
                key: row[key]
                for key in (
                    "complaint_id",
                    "customer_id",
                    "kind",
                    "points",
                    "amount",
                    "currency",
                    "reason",
                    "idempotency_key",
                )
            }
            for row in rows
        ]
        self._crm.call_hook("complaints_compensation_issued", ctx=uow, compensations=payload)

    # --- helpers -----------------------------------------------------------------

    @staticmethod
    def _when(uow: UnitOfWork, complaint: Complaint, at: datetime | None) -> datetime:
        when = moment(uow, at)
        if when < complaint.updated_at:
            raise _bad(
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
