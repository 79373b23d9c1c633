"""Reading activity rows: row mapping, loading, audit.

An activity is handed out as a plain mapping (JSON-safe apart from
datetimes): every column, plus ``due_local`` (the due time in the activity's
time zone, ISO) and ``overdue`` (planned and due before the unit of work's
time; computed, never stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.errors import NotFoundError
from crmcore.scoping import enforce_declared, requires
from crmcore_activities.resolvers import activity_customer
from crmcore_activities.tables import activities_table


def to_dict(row: Row[Any] | Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The mapping of one ``activities_activities`` row, with ``due_local`` and ``overdue``."""
    data = dict(row._mapping) if isinstance(row, Row) else dict(row)
    due: datetime = data["due_at"]
    data["due_local"] = due.astimezone(ZoneInfo(data["timezone"])).isoformat()
    data["overdue"] = data["status"] == "planned" and due < now
    return data


@requires(Action.READ, customer=activity_customer)
def load(uow: UnitOfWork, activity_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The activity ``activity_id`` read inside ``uow`` (NotFoundError when there is none)."""
    table = activities_table(uow.crm.metadata)
    query = select(table).where(table.c.id == activity_id)
    if lock:
        query = query.with_for_update()
    row = uow.connection.execute(query).first()
    if row is None:
        raise NotFoundError(f"activity {activity_id} does not exist")
    return to_dict(row, uow.now)


@requires(Action.WRITE, customer="customer_id")
def audit(
    uow: UnitOfWork,
    action: str,
    activity_id: int | None,
    customer_id: int | None,
    **details: Any,
) -> None:
    """Record one audit entry ``activities.<action>`` (ids and codes only)."""
    uow.crm.audit.record(
        uow, [AuditEntry(f"activities.{action}", "activity", activity_id, customer_id, details)]
    )


enforce_declared(__name__)

__all__ = ["audit", "load", "to_dict"]
