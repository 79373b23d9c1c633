"""The ``@requires`` resolver of the plugin: which customer an activity id concerns.

It takes ``(crm, ctx, arguments)`` (:data:`crmcore.scoping.CustomerResolver`)
and returns the customer id, or ``None`` when the activity does not exist
(refused for a restricted principal, as core refuses a missing customer). It
is what core's check calls, not a service function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crmcore import CRM, UnitOfWork
from crmcore_activities.tables import activities_table


def activity_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> int | None:
    """The customer of the activity named by ``activity_id`` (a ``@requires`` resolver)."""
    activity_id = arguments.get("activity_id")
    if isinstance(activity_id, bool) or not isinstance(activity_id, int):
        return None
    table = activities_table(crm.metadata)
    with crm.reading(ctx) as uow:
        found = uow.connection.execute(
            select(table.c.customer_id).where(table.c.id == activity_id)
        ).scalar()
    return None if found is None else int(found)


__all__ = ["activity_customer"]
