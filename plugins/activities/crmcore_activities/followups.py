"""Automatic follow-ups from other plugins' events (each optional and configurable).

Each hook implementation in :mod:`crmcore_activities.plugin` forwards its
batch here. A follow-up is an activity with a ``followup_key`` (unique), so a
repeated event never creates a second task:

* a segmentation churn alert: a retention call for the owner, key
  ``churn_alert:<customer>:<day>``;
* ``complaints_sla_breached``: an escalation to-do for the owner's manager
  (``users.<owner>.manager``, else the owner), key
  ``sla_breach:<complaint>:<target>``, reference ``complaints.complaint``;
* ``surveys_low_score``: a call-back for the owner, key
  ``detractor:<response>``, reference ``surveys.response``;
* ``sales_contracts_due_for_renewal``: a renewal call for the contract's
  owner, key ``renewal:<contract>``, reference ``sales.contract``;
* ``sales_instalments_overdue``: a collection call for the contract's owner,
  key ``overdue_payment:<instalment>``, reference ``sales.contract``.

The task is due ``followups.due_days`` days after the event (default 1) at
``due_time`` in the assignee's time zone, with priority 1 (high). It is
written in the unit of work of the event, so it commits or rolls back with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_activities.settings import settings_of
from crmcore_activities.tables import activities_table
from crmcore_activities.validation import wall


def _payload_customers(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> list[int]:
    found: set[int] = set()
    for value in arguments.values():
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, Mapping) and isinstance(item.get("customer_id"), int):
                    found.add(int(item["customer_id"]))
    return sorted(found)


@requires(Action.WRITE, customer=_payload_customers)
def create_followups(uow: UnitOfWork, source: str, items: Sequence[Mapping[str, Any]]) -> list[int]:
    """Create the follow-ups of ``items`` once each; return the new activity ids.

    Each item holds ``key``, ``customer_id``, ``kind``, ``subject`` and
    optionally ``assignee``, ``manager`` (escalate to the manager),
    ``ref_type`` and ``ref_id``.

    ``source`` is one of :data:`crmcore_activities.settings.FOLLOWUPS`; a
    source switched off in the configuration creates nothing.
    """
    settings = settings_of(uow.crm)
    if source not in settings.followups or not items:
        return []
    table = activities_table(uow.crm.metadata)
    customers = uow.crm.metadata.tables["crm_customers"]
    keys = [f"{source}:{i['key']}" for i in items]
    existing = {
        k
        for (k,) in uow.connection.execute(
            select(table.c.followup_key).where(table.c.followup_key.in_(keys))
        )
    }
    ids = sorted({int(i["customer_id"]) for i in items})
    owners = dict(
        uow.connection.execute(
            select(customers.c.id, customers.c.owner).where(customers.c.id.in_(ids))
        ).all()
    )
    rows, seen = [], set(existing)
    for key, item in zip(keys, items, strict=True):
        cid = int(item["customer_id"])
        if key in seen or cid not in owners:
            continue
        seen.add(key)
        owner = item.get("assignee") or owners[cid]
        if item.get("manager") and owner in settings.users and settings.users[owner].manager:
            owner = settings.users[owner].manager
        zone = settings.zone_of(owner)
        local_day = uow.now.astimezone(zone).date() + timedelta(days=settings.followup_due_days)
        due = wall(local_day, settings.due_time, zone)
        rows.append(
            {
                "customer_id": cid,
                "kind": item["kind"],
                "subject": item["subject"],
                "assignee": owner,
                "due_at": due,
                "timezone": settings.tz_name(owner),
                "priority": 1,
                "status": "planned",
                "ref_type": item.get("ref_type"),
                "ref_id": None if item.get("ref_id") is None else str(item["ref_id"]),
                "source": "followup",
                "followup_key": key,
                "remind_at": due - timedelta(minutes=settings.reminder_minutes)
                if settings.reminder_minutes
                else None,
                "created_at": uow.now,
                "updated_at": uow.now,
            }
        )
    if not rows:
        return []
    uow.connection.execute(insert(table), rows)
    found = uow.connection.execute(
        select(table.c.id, table.c.customer_id).where(
            table.c.followup_key.in_([r["followup_key"] for r in rows])
        )
    ).all()
    uow.crm.audit.record_batch(
        uow,
        "activities.followup",
        "activity",
        [(int(i), int(c), {"source": source}) for i, c in found],
    )
    uow.emit_many(
        "activities.planned", [{"customer_id": int(c), "activity_id": int(i)} for i, c in found]
    )
    return sorted(int(i) for i, _ in found)


@requires(Action.WRITE, customer=_payload_customers)
def churn_alerts(ctx: UnitOfWork, alerts: Sequence[Mapping[str, Any]]) -> list[int]:
    """Segmentation churn alerts become retention calls for the owner (one per customer and day)."""
    return create_followups(
        ctx,
        "churn_alert",
        [
            {
                "key": f"{a['customer_id']}:{ctx.now.date().isoformat()}",
                "customer_id": a["customer_id"],
                "kind": "call",
                "subject": "Retention call (churn alert)",
            }
            for a in alerts
        ],
    )


@requires(Action.WRITE, customer=_payload_customers)
def sla_breaches(ctx: UnitOfWork, breaches: Sequence[Mapping[str, Any]]) -> list[int]:
    """Complaints SLA breaches become escalation tasks for the owner's manager."""
    return create_followups(
        ctx,
        "sla_breach",
        [
            {
                "key": f"{b['complaint_id']}:{b['target']}",
                "customer_id": b["customer_id"],
                "kind": "todo",
                "subject": f"Escalation: complaint {b['complaint_id']} breached {b['target']}",
                "manager": True,
                "ref_type": "complaints.complaint",
                "ref_id": b["complaint_id"],
            }
            for b in breaches
        ],
    )


@requires(Action.WRITE, customer=_payload_customers)
def detractors(ctx: UnitOfWork, responses: Sequence[Mapping[str, Any]]) -> list[int]:
    """Detractor (low-score) survey responses become call-backs."""
    return create_followups(
        ctx,
        "detractor",
        [
            {
                "key": r["response_id"],
                "customer_id": r["customer_id"],
                "kind": "call",
                "subject": f"Call back: {r['metric']} score {r['score']:g}",
                "ref_type": "surveys.response",
                "ref_id": r["response_id"],
            }
            for r in responses
            if r.get("customer_id") is not None
        ],
    )


@requires(Action.WRITE, customer=_payload_customers)
def renewals(ctx: UnitOfWork, contracts: Sequence[Mapping[str, Any]]) -> list[int]:
    """Contracts due for renewal become renewal calls for the contract's owner."""
    return create_followups(
        ctx,
        "renewal",
        [
            {
                "key": c["contract_id"],
                "customer_id": c["customer_id"],
                "kind": "call",
                "subject": f"Renewal of contract {c['contract_id']} ({c['renewal_date']})",
                "assignee": c.get("owner"),
                "ref_type": "sales.contract",
                "ref_id": c["contract_id"],
            }
            for c in contracts
            if c.get("customer_id") is not None
        ],
    )


@requires(Action.WRITE, customer=_payload_customers)
def overdue_payments(ctx: UnitOfWork, instalments: Sequence[Mapping[str, Any]]) -> list[int]:
    """Overdue instalments become collection calls for the contract's owner."""
    return create_followups(
        ctx,
        "overdue_payment",
        [
            {
                "key": i["instalment_id"],
                "customer_id": i["customer_id"],
                "kind": "call",
                "subject": f"Overdue payment: {i['outstanding']} {i['currency']} "
                f"({i['days_overdue']} days)",
                "assignee": i.get("owner"),
                "ref_type": "sales.contract",
                "ref_id": i["contract_id"],
            }
            for i in instalments
            if i.get("customer_id") is not None
        ],
    )


enforce_declared(__name__)
