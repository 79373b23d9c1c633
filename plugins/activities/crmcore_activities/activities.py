"""Activities: add, read, list, complete, cancel, reschedule.

Every function takes the CRM first and is declared with ``@requires``: an
agent plans and changes activities on customers they may write (their own,
granted, account team) and reads those on customers they may read. Each
write is one unit of work (``ctx=`` joins an open one): the activity, the
audit entry, the ``activities.*`` event and, on completion, core's
interaction commit together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from crmcore import CRM, CustomerKind, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.unit_of_work import acting_user
from crmcore_activities import resolvers, store
from crmcore_activities.settings import STATUSES, settings_of
from crmcore_activities.tables import activities_table
from crmcore_activities.validation import bad, choice, identifier, integer, local_moment, text

#: Fields ``add_activity`` accepts.
FIELDS = (
    "customer_id",
    "contact_id",
    "kind",
    "subject",
    "notes",
    "assignee",
    "due",
    "duration_minutes",
    "priority",
    "ref_type",
    "ref_id",
    "reminder_minutes",
)
#: Priorities: 1 high, 2 normal, 3 low (the workbench sorts 1 first).
PRIORITIES = (1, 2, 3)
#: ``ref_type`` is ``<plugin>.<record>``: ``sales.deal``, ``complaints.complaint`` ...
REF_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,29}\.[a-z][a-z0-9_]{0,29}$")


def _data_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> list[int]:
    data = arguments.get("data")
    cid = data.get("customer_id") if isinstance(data, Mapping) else None
    return [cid] if isinstance(cid, int) and not isinstance(cid, bool) else []


def reference(ref_type: Any, ref_id: Any) -> tuple[str | None, str | None]:
    """Check a generic reference: both or neither, ``ref_type`` like ``sales.deal``."""
    if ref_type is None and ref_id is None:
        return None, None
    if not isinstance(ref_type, str) or not REF_TYPE.match(ref_type):
        bad("ref_type", f"{ref_type!r} is not <plugin>.<record> (e.g. sales.deal)", ref_type)
    if isinstance(ref_id, int) and not isinstance(ref_id, bool):
        ref_id = str(ref_id)
    return ref_type, text("ref_id", ref_id, 100, required=True)


def _contact(uow: UnitOfWork, customer_id: int, contact_id: Any) -> int | None:
    if contact_id is None:
        return None
    person = identifier("contact_id", contact_id)
    customer = uow.crm.customers.get(customer_id, ctx=uow)
    if customer.kind is not CustomerKind.ORGANIZATION:
        bad("contact_id", f"customer {customer_id} is a person; contacts belong to organisations")
    current = {c.person_id for c in uow.crm.accounts.contacts(customer_id, ctx=uow)}
    if person not in current:
        bad("contact_id", f"{person} is not a current contact of customer {customer_id}", person)
    return person


@requires(Action.WRITE, customer=_data_customer)
def add_activity(
    crm: CRM, data: Mapping[str, Any], *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Plan an activity; return it with its id.

    ``data``: ``customer_id``, ``kind`` (a configured kind), ``subject`` and
    ``due`` (required; an aware datetime, or a naive one / ISO text read in
    the assignee's time zone), ``assignee`` (default the acting user, else
    the customer's owner), ``contact_id`` (a current contact of the
    organisation), ``notes``, ``duration_minutes``, ``priority`` (1 high, 2
    normal, 3 low; default 2), ``ref_type`` + ``ref_id`` (a generic
    reference, e.g. ``sales.deal`` and ``"17"``) and ``reminder_minutes``
    (default the configured lead time; 0 for no reminder).
    """
    if not isinstance(data, Mapping):
        bad("data", f"expected a mapping of fields, got {type(data).__name__}", data)
    for key in data:
        if key not in FIELDS:
            bad(str(key), f"is not a field of an activity (accepts: {', '.join(FIELDS)})")
    settings = settings_of(crm)
    customer_id = identifier("customer_id", data.get("customer_id"))
    kind = choice("kind", data.get("kind"), list(settings.kinds))
    subject = text("subject", data.get("subject"), 200, required=True)
    notes = text("notes", data.get("notes"), 100_000)
    priority = integer("priority", data.get("priority", 2), 1, 3)
    duration = data.get("duration_minutes")
    if duration is not None:
        duration = integer("duration_minutes", duration, 1, 100_000)
    reminder = integer(
        "reminder_minutes", data.get("reminder_minutes", settings.reminder_minutes), 0, 10080
    )
    ref_type, ref_id = reference(data.get("ref_type"), data.get("ref_id"))
    if data.get("due") is None:
        bad("due", "is required")
    with crm.unit_of_work(actor, ctx) as uow:
        customer = crm.customers.get(customer_id, ctx=uow)
        assignee = text("assignee", data.get("assignee", acting_user(uow) or customer.owner), 200)
        due = local_moment("due", data["due"], settings.zone_of(assignee))
        contact = _contact(uow, customer_id, data.get("contact_id"))
        values = {
            "customer_id": customer_id,
            "contact_id": contact,
            "kind": kind,
            "subject": subject,
            "notes": notes,
            "assignee": assignee,
            "due_at": due,
            "timezone": settings.tz_name(assignee),
            "duration_minutes": duration,
            "priority": priority,
            "status": "planned",
            "ref_type": ref_type,
            "ref_id": ref_id,
            "source": "manual",
            "remind_at": due - timedelta(minutes=reminder) if reminder else None,
            "created_at": uow.now,
            "updated_at": uow.now,
        }
        table = activities_table(crm.metadata)
        inserted = uow.connection.execute(insert(table).values(values)).inserted_primary_key
        assert inserted is not None
        activity_id = int(inserted[0])
        store.audit(uow, "add", activity_id, customer_id, kind=kind)
        uow.emit("activities.planned", customer_id, {"activity_id": activity_id, "kind": kind})
        return store.load(uow, activity_id)


@requires(Action.READ, customer=resolvers.activity_customer)
def get_activity(crm: CRM, activity_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """The activity ``activity_id`` (NotFoundError when there is none)."""
    with crm.reading(ctx) as uow:
        return store.load(uow, identifier("activity_id", activity_id))


@requires(Action.READ, scoped=True)
def list_activities(
    crm: CRM,
    *,
    customer_id: int | None = None,
    assignee: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    ref_type: str | None = None,
    ref_id: str | int | None = None,
    limit: int = 100,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Activities on customers the acting user may read, by due time, filtered as given."""
    table = activities_table(crm.metadata)
    query = select(table).where(crm.access.where(table.c.customer_id))
    if customer_id is not None:
        query = query.where(table.c.customer_id == identifier("customer_id", customer_id))
    if assignee is not None:
        query = query.where(table.c.assignee == text("assignee", assignee, 200, required=True))
    if status is not None:
        query = query.where(table.c.status == choice("status", status, STATUSES))
    if ref_type is not None or ref_id is not None:
        kind, ident = reference(ref_type, ref_id)
        query = query.where(table.c.ref_type == kind, table.c.ref_id == ident)
    limit = integer("limit", limit, 1, 10_000)
    with crm.reading(ctx) as uow:
        if overdue is not None:
            late = (table.c.status == "planned") & (table.c.due_at < uow.now)
            query = query.where(late if overdue else ~late)
        rows = uow.connection.execute(
            query.order_by(table.c.due_at, table.c.priority, table.c.id).limit(limit)
        ).all()
        return [store.to_dict(r, uow.now) for r in rows]


def _planned(uow: UnitOfWork, activity_id: int) -> dict[str, Any]:
    found = store.load(uow, identifier("activity_id", activity_id), lock=True)
    if found["status"] != "planned":
        bad("activity_id", f"activity {activity_id} is {found['status']}, not planned", activity_id)
    return found


def _set(uow: UnitOfWork, activity_id: int, **values: Any) -> None:
    table = activities_table(uow.crm.metadata)
    uow.connection.execute(
        update(table).where(table.c.id == activity_id).values(updated_at=uow.now, **values)
    )


@requires(Action.WRITE, customer=resolvers.activity_customer)
def complete_activity(
    crm: CRM,
    activity_id: int,
    *,
    outcome: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Mark a planned activity done and record its Interaction through core, in one transaction.

    The interaction's kind and channel are the activity kind's; it is
    outbound, ``handled_by`` the assignee, at ``at`` (default now; not in the
    future), with ``source="activities"`` and ``external_id="activity:<id>"``.
    """
    outcome = text("outcome", outcome, 2000)
    if at is not None and (not isinstance(at, datetime) or at.tzinfo is None):
        bad("at", f"expected a timezone-aware timestamp, got {at!r}", at)
    with crm.unit_of_work(actor, ctx) as uow:
        found = _planned(uow, activity_id)
        when = at or uow.now
        if when > uow.now:
            bad("at", f"{when.isoformat()} is in the future", at)
        kind = settings_of(crm).kinds.get(found["kind"])
        if kind is None:
            bad("kind", f"{found['kind']!r} is no longer a configured kind")
        interaction = crm.interactions.record(
            {
                "customer_id": found["customer_id"],
                "kind": kind.interaction,
                "channel": kind.channel,
                "direction": "outbound",
                "occurred_at": when,
                "text": outcome,
                "handled_by": found["assignee"],
                "contact_id": found["contact_id"],
                "source": "activities",
                "external_id": f"activity:{activity_id}",
                "payload": {"activity_id": activity_id, "activity_kind": found["kind"]},
            },
            ctx=uow,
        )
        _set(
            uow,
            activity_id,
            status="done",
            outcome=outcome,
            completed_at=when,
            interaction_id=interaction.id,
        )
        store.audit(uow, "done", activity_id, found["customer_id"], interaction=interaction.id)
        uow.emit("activities.done", found["customer_id"], {"activity_id": activity_id})
        return store.load(uow, activity_id)


@requires(Action.WRITE, customer=resolvers.activity_customer)
def cancel_activity(
    crm: CRM,
    activity_id: int,
    *,
    reason: str | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Cancel a planned activity (``reason`` becomes its outcome)."""
    reason = text("reason", reason, 2000)
    with crm.unit_of_work(actor, ctx) as uow:
        found = _planned(uow, activity_id)
        _set(uow, activity_id, status="cancelled", outcome=reason, completed_at=uow.now)
        store.audit(uow, "cancel", activity_id, found["customer_id"])
        uow.emit("activities.cancelled", found["customer_id"], {"activity_id": activity_id})
        return store.load(uow, activity_id)


@requires(Action.WRITE, customer=resolvers.activity_customer)
def reschedule_activity(
    crm: CRM,
    activity_id: int,
    due: datetime | str,
    *,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Move a planned activity's due time (read in its time zone); the reminder moves with it."""
    with crm.unit_of_work(actor, ctx) as uow:
        found = _planned(uow, activity_id)
        zone = settings_of(crm).zone_of(found["assignee"])
        new_due = local_moment("due", due, zone)
        lead = found["due_at"] - found["remind_at"] if found["remind_at"] else None
        _set(
            uow,
            activity_id,
            due_at=new_due,
            remind_at=new_due - lead if lead is not None else None,
            reminded_at=None,
        )
        store.audit(uow, "reschedule", activity_id, found["customer_id"])
        uow.emit("activities.rescheduled", found["customer_id"], {"activity_id": activity_id})
        return store.load(uow, activity_id)


enforce_declared(__name__)
