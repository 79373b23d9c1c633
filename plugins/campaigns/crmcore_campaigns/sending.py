"""The campaign's side of crmcore-messaging: enqueue a step's messages, cancel queued ones.

Messages are enqueued with ``crmcore_messaging.queue.enqueue_many`` inside the
campaign's unit of work (they commit with the launch or not at all), with
``purpose="marketing"``, ``ref_type="campaigns.campaign"``, ``ref_id`` the
campaign id and ``dedupe_key = "campaigns:{id}:{step}:{customer_id}"``, so a
step asked for twice sends once. Messaging applies consent, suppression,
frequency caps and quiet hours; a message it refuses is recorded as refused
(state and reason in ``campaigns_sends``) and costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, update

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.bulk import insert_rows
from crmcore_campaigns.resolvers import campaign_recipients
from crmcore_campaigns.tables import sends_table

REF_TYPE = "campaigns.campaign"
#: Message states that were handed to a channel: they count as sent (and cost).
SENT_STATES = ("sent", "bounced")
#: States of a message still waiting to go out (a stop refuses them).
PENDING_STATES = ("queued", "deferred")
STOP_REASON = "campaign_stopped"


@requires(Action.READ, scoped=True)  # reads no customer data
def messaging_enabled(crm: CRM) -> bool:
    """Whether crmcore-messaging is installed and enabled on this CRM."""
    if not crm.pm.has_plugin("messaging"):
        return False
    try:
        import crmcore_messaging.queue  # noqa: F401
    except ImportError:
        return False
    return True


@requires(Action.READ, scoped=True)  # reads no customer data
def require_messaging(crm: CRM) -> None:
    """Refuse clearly when messaging is missing (a launch that sends needs it)."""
    if not messaging_enabled(crm):
        raise ValidationError(
            "messaging: sending a campaign needs the messaging plugin: install crmcore-messaging "
            "(pip install crmcore-messaging) and enable it, or launch with send=False "
            "(--no-send) to freeze the audience only",
            field="messaging",
        )


@requires(Action.READ, scoped=True)  # reads no customer data
def messages_table(crm: CRM) -> Table | None:
    """Messaging's ``messaging_messages`` table, or ``None`` when messaging is not enabled."""
    return crm.metadata.tables.get("messaging_messages") if crm.pm.has_plugin("messaging") else None


@requires(Action.READ, scoped=True)  # reads no customer data
def clicks_table(crm: CRM) -> Table | None:
    """Messaging's ``messaging_clicks`` table, or ``None`` when messaging is not enabled."""
    return crm.metadata.tables.get("messaging_clicks") if crm.pm.has_plugin("messaging") else None


@requires(Action.WRITE, customer="customer_ids")
def enqueue_step(
    uow: UnitOfWork,
    campaign: dict[str, Any],
    step: int,
    customer_ids: Sequence[int],
    templates: dict[int, str],
    not_before: datetime | None,
) -> dict[str, int]:
    """Enqueue ``step``'s message for each customer; record them in ``campaigns_sends``.

    ``templates`` maps each customer to the template of their variant. Returns
    how many messaging answered with each state.
    """
    from crmcore_messaging.queue import enqueue_many

    campaign_id = int(campaign["id"])
    answers = enqueue_many(
        uow,
        (
            {
                "customer_id": customer_id,
                "template": templates[customer_id],
                "channel": campaign["channel"],
                "purpose": "marketing",
                "variables": {"campaign": campaign["name"], "step": step},
                "ref_type": REF_TYPE,
                "ref_id": str(campaign_id),
                "dedupe_key": f"campaigns:{campaign_id}:{step}:{customer_id}",
                "not_before": not_before,
            }
            for customer_id in customer_ids
        ),
    )
    rows: list[dict[str, Any]] = []
    states: dict[str, int] = {}
    for customer_id, queued in zip(customer_ids, answers, strict=True):
        states[queued.state] = states.get(queued.state, 0) + 1
        rows.append(
            {
                "campaign_id": campaign_id,
                "customer_id": customer_id,
                "step": step,
                "message_id": queued.message_id,
                "state": queued.state,
                "reason": queued.reason,
                "at": uow.now,
            }
        )
    insert_rows(uow.connection, sends_table(uow.crm.metadata), rows)
    return states


@requires(Action.WRITE, customer=campaign_recipients)
def cancel_pending(uow: UnitOfWork, campaign_id: int) -> int:
    """Refuse the campaign's messages still queued or deferred (reason ``campaign_stopped``).

    An UPDATE of messaging's ``messaging_messages`` (state ``refused``): they
    are never sent. Returns how many were cancelled (0 without messaging).
    """
    messages = messages_table(uow.crm)
    if messages is None:
        return 0
    result = uow.connection.execute(
        update(messages)
        .where(
            messages.c.ref_type == REF_TYPE,
            messages.c.ref_id == str(campaign_id),
            messages.c.state.in_(PENDING_STATES),
        )
        .values(state="refused", reason=STOP_REASON, updated_at=uow.now)
    )
    return int(result.rowcount or 0)


enforce_declared(__name__)

__all__ = [
    "PENDING_STATES",
    "REF_TYPE",
    "SENT_STATES",
    "STOP_REASON",
    "cancel_pending",
    "clicks_table",
    "enqueue_step",
    "messages_table",
    "messaging_enabled",
    "require_messaging",
]
