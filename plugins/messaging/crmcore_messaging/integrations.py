"""Messages the other plugins ask for: survey invitations, complaint progress, reminders, care.

Each function implements one hook of another plugin (surveys, complaints,
activities) and runs inside that plugin's unit of work, so a message is queued
exactly when what caused it commits, and sent after, by ``crm messages send``.
Every message obeys the rules of :mod:`crmcore_messaging.rules` (consent, caps,
quiet hours, suppression): a refused one is stored with its reason and the
cause (the invitation, the complaint's move) still commits. A message that
cannot even be queued (a template that does not render for this customer, say)
is logged and skipped for the same reason. ``[plugins.messaging] notify``
turns each integration off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crmcore import CRMError, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging import queue
from crmcore_messaging.builtin_templates import ensure_builtin
from crmcore_messaging.settings import settings_of

_log = logging.getLogger("crmcore.messaging")

#: States of a message that will (or may still) go out.
_TAKEN = frozenset({"queued", "deferred", "duplicate"})


def _guarded(
    ctx: UnitOfWork, what: str, make: Callable[..., queue.Queued], **arguments: Any
) -> queue.Queued | None:
    """Call ``make(ctx, **arguments)`` in a savepoint: a failed message must not undo its cause."""
    savepoint = ctx.connection.begin_nested()
    try:
        queued = make(ctx, **arguments)
    except CRMError as exc:
        savepoint.rollback()
        _log.warning("messaging: %s not queued: %s", what, exc)
        return None
    savepoint.commit()
    return queued


def _channel_for(ctx: UnitOfWork, wanted: str | None, purpose: str) -> str:
    """``wanted`` when it names a configured channel, else the purpose's default channel."""
    settings = settings_of(ctx.crm)
    if wanted is not None and wanted in settings.channels:
        return wanted
    return settings.default_channel(purpose)


def survey_url(base_url: str, token: str) -> str:
    """The personal survey link of an invitation: ``{base_url}/s/{token}``."""
    return f"{base_url.rstrip('/')}/s/{token}"


def _builtin(ctx: UnitOfWork, name: str) -> None:
    ensure_builtin(ctx.connection, ctx.crm.metadata, name, ctx.now)


@requires(Action.WRITE, customer=lambda crm, ctx, args: [i["customer_id"] for i in args["items"]])
def survey_invitations(ctx: UnitOfWork, items: Sequence[Mapping[str, Any]]) -> int:
    """Queue each new survey invitation with its personal link; return how many were queued.

    Template ``surveys.invitation`` (purpose ``survey``: consent ``surveys``
    and the channel's), on the invitation's channel when a messaging channel
    has that name, else the ``survey`` default channel. Variables:
    ``ref.survey_key``, ``ref.survey_title``, ``ref.survey_url``,
    ``ref.invitation_id``. ``dedupe_key = surveys:invitation:<id>``.
    """
    if not settings_of(ctx.crm).notify.get("surveys", True) or not items:
        return 0
    _builtin(ctx, "surveys.invitation")
    queued = 0
    for item in items:
        variables = {
            "survey_key": item["survey_key"],
            "survey_title": item.get("survey_title") or item["survey_key"],
            "survey_url": survey_url(settings_of(ctx.crm).base_url, str(item["token"])),
            "invitation_id": int(item["invitation_id"]),
        }
        result = _guarded(
            ctx,
            f"invitation {item['invitation_id']}",
            queue.enqueue,
            customer_id=int(item["customer_id"]),
            template="surveys.invitation",
            channel=_channel_for(ctx, item.get("channel"), "survey"),
            purpose="survey",
            variables=variables,
            ref_type="surveys.invitation",
            ref_id=str(item["invitation_id"]),
            dedupe_key=f"surveys:invitation:{item['invitation_id']}",
        )
        queued += result is not None and result.state in _TAKEN
    return queued


@requires(Action.WRITE, customer=lambda crm, ctx, args: [u["customer_id"] for u in args["updates"]])
def complaint_progress(ctx: UnitOfWork, updates: Sequence[Mapping[str, Any]]) -> int:
    """Tell each customer their complaint was acknowledged or resolved; return how many queued.

    Template ``complaints.<state>`` (purpose ``service``), the ``service``
    default channel. Variables ``ref.complaint_id``, ``ref.state``,
    ``ref.reference``, ``ref.category``, ``ref.severity``. ``dedupe_key =
    complaints:<id>:<state>:<time of the move>``, so a complaint resolved,
    reopened and resolved again is told twice, a retried call once.
    """
    if not settings_of(ctx.crm).notify.get("complaints", True) or not updates:
        return 0
    queued = 0
    for update in updates:
        state = str(update["state"])
        name = f"complaints.{state}"
        _builtin(ctx, name)
        at = update["at"]
        variables = {
            "complaint_id": int(update["complaint_id"]),
            "state": state,
            "reference": update.get("reference"),
            "category": update.get("category"),
            "severity": update.get("severity"),
        }
        result = _guarded(
            ctx,
            f"complaint {update['complaint_id']} ({state})",
            queue.enqueue,
            customer_id=int(update["customer_id"]),
            template=name,
            purpose="service",
            variables=variables,
            ref_type="complaints.complaint",
            ref_id=str(update["complaint_id"]),
            dedupe_key=f"complaints:{update['complaint_id']}:{state}:{at.isoformat()}",
        )
        queued += result is not None and result.state in _TAKEN
    return queued


@requires(Action.REPORT)
def reminders(ctx: UnitOfWork, items: Sequence[Mapping[str, Any]]) -> int:
    """Send each activity reminder to its assignee (a staff message); return how many queued.

    Subject ``Reminder: <subject>``, text with the due time in the assignee's
    zone; the channel is the ``staff`` default or the user's first configured
    address (``[plugins.messaging.staff.<user>]``). A reminder without an
    assignee, or to a user with no address, is refused (``no_address``).
    ``dedupe_key = activities:reminder:<activity id>:<due time>``.
    """
    if not settings_of(ctx.crm).notify.get("reminders", True) or not items:
        return 0
    queued = 0
    for item in items:
        user = item.get("assignee")
        if not user:
            continue
        due = item["due_at"]
        text = (
            f"{item['subject']}\n\nDue {item['due_local']} ({item['timezone']}), "
            f"priority {item['priority']}, customer {item['customer_id']}."
        )
        result = _guarded(
            ctx,
            f"reminder of activity {item['activity_id']}",
            queue.enqueue_staff,
            user=str(user),
            subject=f"Reminder: {item['subject']}",
            text=text,
            ref_type="activities.activity",
            ref_id=str(item["activity_id"]),
            dedupe_key=f"activities:reminder:{item['activity_id']}:{due.isoformat()}",
        )
        queued += result is not None and result.state in _TAKEN
    return queued


@requires(Action.WRITE, customer=lambda crm, ctx, args: [t["customer_id"] for t in args["tasks"]])
def care_messages(ctx: UnitOfWork, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
    """Queue a care greeting for each care task; return the activity ids taken.

    Template ``activities.care`` (purpose ``marketing``), on the task's
    channel when a messaging channel has that name, else the ``marketing``
    default. Variables ``ref.subject``, ``ref.kind``, ``ref.activity_id``. A
    task is taken when its message is queued or deferred; a refused one
    (consent, cap) stays a task for a person. ``dedupe_key =
    activities:care:<activity id>``.
    """
    if not settings_of(ctx.crm).notify.get("care", True) or not tasks:
        return []
    _builtin(ctx, "activities.care")
    taken: list[int] = []
    for task in tasks:
        variables = {
            "subject": task["subject"],
            "kind": task["kind"],
            "activity_id": int(task["activity_id"]),
        }
        result = _guarded(
            ctx,
            f"care message of activity {task['activity_id']}",
            queue.enqueue,
            customer_id=int(task["customer_id"]),
            template="activities.care",
            channel=_channel_for(ctx, task.get("channel"), "marketing"),
            purpose="marketing",
            variables=variables,
            ref_type="activities.activity",
            ref_id=str(task["activity_id"]),
            dedupe_key=f"activities:care:{task['activity_id']}",
        )
        if result is not None and result.state in _TAKEN:
            taken.append(int(task["activity_id"]))
    return taken


enforce_declared(__name__)

__all__ = ["care_messages", "complaint_progress", "reminders", "survey_invitations", "survey_url"]
