"""Data portability and the right to erasure for the complaints plugin's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_complaints.entities import Complaint
from crmcore_complaints.service import compensation_json, history_entry
from crmcore_complaints.tables import (
    breaches_table,
    cases_table,
    compensations_table,
    history_table,
)

_CHUNK = 400


@requires(Action.EXPORT, customer="customer_id")
def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Everything the plugin holds on the customer: complaints with history, compensation, breaches.

    Read through ``ctx.connection`` (the export's snapshot); ``None`` when
    the customer never complained.
    """
    metadata = ctx.crm.metadata
    cases, history = cases_table(metadata), history_table(metadata)
    compensations, breaches = compensations_table(metadata), breaches_table(metadata)
    rows = ctx.connection.execute(
        select(cases).where(cases.c.customer_id == customer_id).order_by(cases.c.id)
    ).all()
    if not rows:
        return None
    ids = [r.id for r in rows]
    entries = ctx.connection.execute(
        select(history).where(history.c.complaint_id.in_(ids)).order_by(history.c.id)
    ).all()
    granted = ctx.connection.execute(
        select(compensations)
        .where(compensations.c.complaint_id.in_(ids))
        .order_by(compensations.c.id)
    ).all()
    marked = ctx.connection.execute(
        select(breaches).where(breaches.c.complaint_id.in_(ids)).order_by(breaches.c.id)
    ).all()
    result = []
    for row in rows:
        data = Complaint.from_row(row._mapping).to_json()
        data["history"] = [history_entry(e).to_json() for e in entries if e.complaint_id == row.id]
        data["compensations"] = [compensation_json(g) for g in granted if g.complaint_id == row.id]
        data["breaches"] = [
            {
                "target": b.target,
                "due_at": b.due_at.isoformat(),
                "detected_at": b.detected_at.isoformat(),
            }
            for b in marked
            if b.complaint_id == row.id
        ]
        result.append(data)
    return {"complaints": result}


@requires(Action.ERASE, customer="customer_id")
def erase(ctx: UnitOfWork, customer_id: int) -> None:
    """Forget the customer: detach their complaints and strip every free-text detail.

    What stays is anonymous: category, severity, channel, states, timings,
    SLA results, root cause, rating and compensation kinds and amounts, with
    ``customer_id`` set to ``NULL``, so that rates and SLA figures keep adding
    up. Descriptions, references, resolution texts, notes, compensation
    reasons, survey references and history details are removed.
    """
    metadata = ctx.crm.metadata
    cases, history = cases_table(metadata), history_table(metadata)
    compensations, breaches = compensations_table(metadata), breaches_table(metadata)
    ids = list(
        ctx.connection.execute(
            select(cases.c.id).where(cases.c.customer_id == customer_id)
        ).scalars()
    )
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        ctx.connection.execute(
            update(history).where(history.c.complaint_id.in_(chunk)).values(note=None, details={})
        )
        ctx.connection.execute(
            update(compensations)
            .where(compensations.c.complaint_id.in_(chunk))
            .values(customer_id=None, reason=None)
        )
        ctx.connection.execute(
            update(breaches).where(breaches.c.complaint_id.in_(chunk)).values(customer_id=None)
        )
        ctx.connection.execute(
            update(cases)
            .where(cases.c.id.in_(chunk))
            .values(
                customer_id=None,
                description=None,
                reference=None,
                resolution=None,
                source_ref=None,
                interaction_id=None,
                recurrence_of=None,
            )
        )


@requires(Action.DELETE, customer="customer_ids")
def forget(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the complaints of customers about to be deleted (their children cascade)."""
    cases = cases_table(ctx.crm.metadata)
    wanted = sorted(set(customer_ids))
    for start in range(0, len(wanted), _CHUNK):
        ctx.connection.execute(
            delete(cases).where(cases.c.customer_id.in_(wanted[start : start + _CHUNK]))
        )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
