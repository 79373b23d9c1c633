"""Opening complaints: validation, recurrence, the core interaction recorded at intake.

Each batch needs WRITE on all its customers (one query) and its history is
audited through core (:class:`~crmcore_complaints.store.ComplaintStore`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from crmcore import Channel, UnitOfWork
from crmcore.access import Action
from crmcore.audit import acting_user
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.storage.ids import allocate_ids
from crmcore_complaints import sla
from crmcore_complaints.entities import Complaint
from crmcore_complaints.store import (
    CHUNK,
    ComplaintStore,
    bad,
    id_field,
    moment,
    text_field,
)
from crmcore_complaints.workflow import (
    State,
    parse_severity,
)

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


__all__ = ["ComplaintIntake"]


class ComplaintIntake(ComplaintStore):
    """Intake methods of :class:`~crmcore_complaints.service.ComplaintService`."""

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
            raise bad(unknown[0], "unknown field")
        settings = self.settings
        if data.get("customer_id") is None:
            raise bad("customer_id", "required")
        customer_id = id_field(data["customer_id"], "customer_id")
        category = text_field(data, "category", 200, required=True)
        assert category is not None
        if category not in settings.categories:
            known = ", ".join(sorted(settings.categories))
            raise bad("category", f"{category!r} is not in the category tree ({known})", category)
        severity = parse_severity(data.get("severity") or settings.default_severity)
        channel_value = data.get("channel") or Channel.OTHER.value
        try:
            channel = Channel(channel_value).value
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            raise bad("channel", f"{channel_value!r} is not one of: {allowed}") from None
        source_ref = data.get("source_ref")
        return {
            "customer_id": customer_id,
            "category": category,
            "severity": severity,
            "channel": channel,
            "reference": text_field(data, "reference", 200),
            "description": text_field(data, "description", 100_000),
            "assignee": text_field(data, "assignee", 200),
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
                    acting_user(uow),
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
                        new_id, row["opened_at"], acting_user(uow), "assign", None, row["assignee"]
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
        for begin in range(0, len(customers), CHUNK):
            rows = uow.connection.execute(
                select(c.id, c.customer_id, c.category, c.opened_at).where(
                    c.customer_id.in_(customers[begin : begin + CHUNK]),
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
