"""The workbench: what each person must do, and the reminders before it is due.

``today`` and ``week`` are the assignee's local day (midnight to midnight in
their time zone) and the seven local days from today; ``overdue`` is every
planned activity due before now. Each list is ordered by due time, then
priority (1 first), then id, and carries the customer's name, stage and, when
the plugins are installed, the saved segments the customer is in (value tiers
are segments: segmentation) and the number of open complaints (complaints).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select, update

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_activities import store
from crmcore_activities.settings import Settings, settings_of
from crmcore_activities.tables import activities_table
from crmcore_activities.validation import choice, text

#: The views of the workbench.
VIEWS = ("today", "week", "overdue")
#: The fields of a reminder handed to ``activities_reminders_due``.
REMINDER_FIELDS = (
    "customer_id",
    "assignee",
    "kind",
    "subject",
    "due_at",
    "due_local",
    "timezone",
    "priority",
)


def window(
    settings: Settings, view: str, user: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` instants of ``view`` for ``user`` at ``now`` (overdue: up to now)."""
    zone = settings.zone_of(user)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    if view == "overdue":
        return datetime(1970, 1, 1, tzinfo=zone), now
    days = 1 if view == "today" else 7
    return start, datetime.combine(day + timedelta(days=days), time(0), tzinfo=zone)


def _extras(crm: CRM, uow: UnitOfWork, ids: list[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {i: {} for i in ids}
    tables = crm.metadata.tables
    if not ids:
        return found
    if crm.pm.get_plugin("complaints") is not None:
        c = tables["complaints_cases"]
        for cid, n in uow.connection.execute(
            select(c.c.customer_id, func.count())
            .where(c.c.customer_id.in_(ids), c.c.state.not_in(("resolved", "closed")))
            .group_by(c.c.customer_id)
        ):
            found[int(cid)]["open_complaints"] = int(n)
    if crm.pm.get_plugin("segmentation") is not None:
        m, seg = tables["segmentation_members"], tables["segmentation_segments"]
        for cid, key in uow.connection.execute(
            select(m.c.customer_id, seg.c.key)
            .join(seg, seg.c.id == m.c.segment_id)
            .where(m.c.customer_id.in_(ids))
            .order_by(seg.c.key)
        ):
            found[int(cid)].setdefault("segments", []).append(key)
    return found


@requires(Action.READ, scoped=True)
def workbench(
    crm: CRM, view: str = "today", *, user: str | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """The planned activities of ``user`` (default: everyone visible) in ``view``.

    ``view`` is ``today``, ``week`` or ``overdue``. Each item is the activity
    with ``customer_name``, ``stage`` and, when known, ``segments`` and
    ``open_complaints``.
    """
    view = choice("view", view, VIEWS)
    if user is not None:
        user = text("user", user, 200, required=True)
    table = activities_table(crm.metadata)
    customers = crm.metadata.tables["crm_customers"]
    with crm.reading(ctx) as uow:
        start, end = window(settings_of(crm), view, user, uow.now)
        query = (
            select(table, customers.c.name.label("customer_name"), customers.c.stage)
            .join(customers, customers.c.id == table.c.customer_id)
            .where(
                crm.access.where(table.c.customer_id),
                table.c.status == "planned",
                table.c.due_at >= start,
                table.c.due_at < end,
            )
        )
        if user is not None:
            query = query.where(table.c.assignee == user)
        rows = uow.connection.execute(
            query.order_by(table.c.due_at, table.c.priority, table.c.id)
        ).all()
        items = [store.to_dict(r, uow.now) for r in rows]
        extras = _extras(crm, uow, sorted({i["customer_id"] for i in items}))
        for item in items:
            item.update(extras[item["customer_id"]])
        return items


def _due_reminders(crm: CRM, now: datetime, user: str | None) -> Select[Any]:
    table = activities_table(crm.metadata)
    query = select(table).where(
        crm.access.where(table.c.customer_id),
        and_(table.c.status == "planned", table.c.remind_at <= now),
        table.c.reminded_at.is_(None),
    )
    if user is not None:
        query = query.where(table.c.assignee == user)
    return query.order_by(table.c.due_at, table.c.priority, table.c.id)


@requires(Action.READ, scoped=True)
def reminders(
    crm: CRM, *, user: str | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Planned activities whose reminder time has come and that were not handed over yet."""
    if user is not None:
        user = text("user", user, 200, required=True)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(_due_reminders(crm, uow.now, user)).all()
        return [store.to_dict(r, uow.now) for r in rows]


@requires(Action.REPORT)
def send_reminders(
    crm: CRM, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Hand every due reminder to ``activities_reminders_due`` once, and mark them; return them.

    Managers and administrators only (it covers every assignee), for cron.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        rows = uow.connection.execute(_due_reminders(crm, uow.now, None)).all()
        items = [store.to_dict(r, uow.now) for r in rows]
        if not items:
            return []
        payload = [{"activity_id": i["id"], **{k: i[k] for k in REMINDER_FIELDS}} for i in items]
        crm.call_hook("activities_reminders_due", ctx=uow, reminders=payload)
        table = activities_table(crm.metadata)
        ids = [i["id"] for i in items]
        uow.connection.execute(update(table).where(table.c.id.in_(ids)).values(reminded_at=uow.now))
        crm.audit.record_batch(
            uow, "activities.remind", "activity", [(i["id"], i["customer_id"], {}) for i in items]
        )
        return payload


enforce_declared(__name__)
