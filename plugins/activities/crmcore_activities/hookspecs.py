"""Hooks the activities plugin publishes (added through ``crm_add_hookspecs``).

A messaging plugin implements ``activities_reminders_due`` (with
``@hookimpl(optionalhook=True)``) to deliver reminders, and
``activities_care_messages`` to send care greetings as messages; without one,
reminders stay visible in the workbench and in ``crm activities reminders``,
and care actions stay tasks.
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


@hookspec
def activities_care_messages(ctx: UnitOfWork, tasks: Sequence[Mapping[str, Any]]) -> Sequence[int]:
    """Take over care tasks as messages (a messaging plugin); return the activity ids taken.

    Called by ``plan`` (not in a dry run), inside its unit of work, once per
    batch of at most 500 tasks a care rule (birthday, anniversary, holiday,
    repurchase, winback) has just created for a day. Each mapping holds
    ``activity_id``, ``customer_id``, ``assignee``, ``kind``, ``channel`` (the
    kind's), ``subject`` and ``due_at``. The tasks whose ids are returned are
    marked done ("sent as message") in the same unit of work; the others
    stay tasks. Queue the messages in your own tables through
    ``ctx.connection`` and send them after commit: nothing may leave the
    system before it. Record each message's outbound interaction through core
    when it goes out (activities records none for the tasks it hands over).
    Raising rolls the whole plan back.
    """
    return ()


__all__ = ["activities_care_messages", "activities_reminders_due"]
