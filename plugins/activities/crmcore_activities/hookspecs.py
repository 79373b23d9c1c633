"""Hooks the activities plugin publishes (added through ``crm_add_hookspecs``).

A messaging plugin implements ``activities_reminders_due`` (with
``@hookimpl(optionalhook=True)``) to deliver reminders; without one they stay
visible in the workbench and in ``crm activities reminders``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def activities_reminders_due(ctx: UnitOfWork, reminders: Sequence[Mapping[str, Any]]) -> None:
    """Deliver reminders of planned activities whose reminder time has come.

    Called by :func:`crmcore_activities.workbench.send_reminders` (``crm
    activities reminders --send``), once per call that finds any, inside its
    unit of work, with each reminder exactly once: the call marks them
    (``reminded_at``). Each mapping holds ``activity_id``, ``customer_id``,
    ``assignee``, ``kind``, ``subject``, ``due_at`` (aware UTC datetime),
    ``due_local`` (ISO text in the assignee's time zone), ``timezone`` and
    ``priority``. Raising rolls the call back: nothing is marked, the next
    call hands them over again. Return nothing.
    """


__all__ = ["activities_reminders_due"]
