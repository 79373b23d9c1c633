"""Reading the queue: listings, one message, a customer's messages, the in-app inbox, status.

Listings are scoped to the acting user (``crm.access.where``): an agent sees
the messages of customers they may read and the staff messages addressed to
them. Changing the queue (cancelling) is for administrators.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from crmcore import CRM, UnitOfWork
from crmcore.access import AccessDeniedError, Action, Role
from crmcore.checks import choice, identifier, integer
from crmcore.errors import ConflictError, NotFoundError
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging.tables import STATES, messages_table

if TYPE_CHECKING:
    from sqlalchemy import Row


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def message_dict(row: Row[Any]) -> dict[str, Any]:
    """A message row as JSON-safe data (what the listings and ``--json`` show)."""
    return {
        "id": int(row.id),
        "customer_id": None if row.customer_id is None else int(row.customer_id),
        "staff_user": row.staff_user,
        "recipient": row.recipient,
        "channel": row.channel,
        "purpose": row.purpose,
        "template": row.template,
        "template_version": row.template_version,
        "locale": row.locale,
        "subject": row.subject,
        "text": row.body_text,
        "state": row.state,
        "reason": row.reason,
        "detail": row.detail,
        "attempts": int(row.attempts),
        "not_before": _iso(row.not_before),
        "sent_at": _iso(row.sent_at),
        "read": row.read_at is not None,
        "ref": f"{row.ref_type}:{row.ref_id}" if row.ref_type else None,
        "created_at": _iso(row.created_at),
    }


@requires(Action.READ, scoped=True)
def list_messages(
    crm: CRM,
    *,
    customer_id: int | None = None,
    state: str | None = None,
    channel: str | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    limit: int = 100,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Messages the acting user may see, newest first, filtered by the arguments."""
    integer("limit", limit, 1, 10_000)
    table = messages_table(crm.metadata)
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(table.c.customer_id == identifier("customer_id", customer_id))
    if state is not None:
        query = query.where(table.c.state == choice("state", state, STATES))
    if channel is not None:
        query = query.where(table.c.channel == channel)
    if ref_type is not None:
        query = query.where(table.c.ref_type == ref_type)
    if ref_id is not None:
        query = query.where(table.c.ref_id == str(ref_id))
    with crm.reading(ctx) as uow:
        visible = crm.access.where(table.c.customer_id, ctx=uow)
        principal = crm.principal
        if principal is not None:
            visible = or_(visible, table.c.staff_user == principal.user)
        rows = uow.connection.execute(query.where(visible)).all()
    return [message_dict(r) for r in rows]


@requires(Action.READ, scoped=True)  # checked below: the customer's, or a staff message's
def get_message(crm: CRM, message_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """One message; NotFoundError when there is none.

    A customer's message needs read access to the customer; a staff message
    is shown to its user, managers and admins. A message the user may not
    see is refused like one that does not exist would be for the customer.
    """
    table = messages_table(crm.metadata)
    with crm.reading(ctx) as uow:
        row = uow.connection.execute(
            select(table).where(table.c.id == identifier("message_id", message_id))
        ).first()
        principal = crm.principal
        if principal is not None:
            if row is None:
                raise AccessDeniedError(f"{principal.user} may not read message {message_id}")
            if row.customer_id is not None:
                crm.access.guard(uow, [int(row.customer_id)], Action.READ)
            elif principal.role is Role.AGENT and principal.user != row.staff_user:
                raise AccessDeniedError(f"{principal.user} may not read message {message_id}")
    if row is None:
        raise NotFoundError(f"message {message_id} does not exist")
    return message_dict(row)


@requires(Action.READ, customer="customer_id")
def customer_messages(
    crm: CRM, customer_id: int, *, limit: int = 100, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """The customer's messages, newest first."""
    return list_messages(crm, customer_id=customer_id, limit=limit, ctx=ctx)


@requires(Action.READ, customer="customer_id")
def inbox(
    crm: CRM, customer_id: int, *, unread_only: bool = False, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """The customer's sent in-app messages, newest first (what the application shows)."""
    from crmcore_messaging.channels.registry import channel_of
    from crmcore_messaging.settings import settings_of

    names = [
        n
        for n in settings_of(crm).channels
        if channel_of(crm, n).type_name == "in_app"  # the in-app channels
    ]
    table = messages_table(crm.metadata)
    query = (
        select(table)
        .where(
            table.c.customer_id == identifier("customer_id", customer_id),
            table.c.state == "sent",
            table.c.channel.in_(names),
        )
        .order_by(table.c.sent_at.desc(), table.c.id.desc())
    )
    if unread_only:
        query = query.where(table.c.read_at.is_(None))
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(query).all()
    return [message_dict(r) for r in rows]


@requires(Action.WRITE, customer="customer_id")
def mark_read(
    crm: CRM, customer_id: int, message_id: int, *, ctx: UnitOfWork | None = None
) -> None:
    """Mark one of the customer's sent messages read (idempotent); NotFoundError otherwise."""
    table = messages_table(crm.metadata)
    with crm.unit_of_work(ctx=ctx) as uow:
        found = uow.connection.execute(
            update(table)
            .where(
                table.c.id == identifier("message_id", message_id),
                table.c.customer_id == customer_id,
                table.c.state == "sent",
            )
            .values(read_at=func.coalesce(table.c.read_at, uow.now))
        )
        if not found.rowcount:
            raise NotFoundError(f"customer {customer_id} has no sent message {message_id}")


def _change_state(
    crm: CRM,
    message_id: int,
    *,
    allowed: tuple[str, ...],
    values: dict[str, Any],
    action: str,
    verb: str,
    actor: str | None,
    ctx: UnitOfWork | None,
) -> dict[str, Any]:
    """Set ``values`` on a message in one of the ``allowed`` states, audited as ``action``.

    ``not_before`` in ``values`` set to ``None`` means now. ConflictError,
    saying what can be ``verb``, for a message in another state.
    """
    table = messages_table(crm.metadata)
    with crm.unit_of_work(actor, ctx) as uow:
        row = uow.connection.execute(
            select(table).where(table.c.id == identifier("message_id", message_id))
        ).first()
        if row is None:
            raise NotFoundError(f"message {message_id} does not exist")
        if "not_before" in values:
            values = {**values, "not_before": values["not_before"] or uow.now}
        done = uow.connection.execute(
            update(table)
            .where(table.c.id == row.id, table.c.state.in_(allowed))
            .values(**values, updated_at=uow.now)
        )
        if not done.rowcount:
            raise ConflictError(
                f"message {message_id} is {row.state}: only a {' or '.join(allowed)} message "
                f"can be {verb}"
            )
        details = {"was": row.state, "reason": row.reason}
        crm.audit.record_batch(uow, action, "message", [(int(row.id), row.customer_id, details)])
        row = uow.connection.execute(select(table).where(table.c.id == row.id)).one()
    return message_dict(row)


@requires(Action.ADMINISTER)
def cancel_message(
    crm: CRM, message_id: int, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Refuse a message not sent yet (reason ``cancelled``); ConflictError once it left."""
    return _change_state(
        crm,
        message_id,
        allowed=("queued", "deferred"),
        values={"state": "refused", "reason": "cancelled"},
        action="messaging.message_cancel",
        verb="cancelled",
        actor=actor,
        ctx=ctx,
    )


@requires(Action.ADMINISTER)
def retry_message(
    crm: CRM, message_id: int, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Queue a failed or bounced message again, due now (an operator's decision, audited).

    For a message failed ``interrupted`` or ``unknown_outcome`` this may send
    it a second time: that is why only an administrator may, one at a time.
    The rules are checked again when it is claimed. ConflictError for any
    other state.
    """
    return _change_state(
        crm,
        message_id,
        allowed=("failed", "bounced"),
        values={
            "state": "queued",
            "reason": None,
            "not_before": None,  # now
            "claimed_by": None,
            "claimed_at": None,
        },
        action="messaging.message_retry",
        verb="queued again",
        actor=actor,
        ctx=ctx,
    )


@requires(Action.REPORT)
def queue_status(crm: CRM, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """Counts by state and channel, messages due now, the oldest due and the retries waiting."""
    table = messages_table(crm.metadata)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(table.c.state, table.c.channel, func.count()).group_by(
                table.c.state, table.c.channel
            )
        ).all()
        pending = (table.c.state.in_(("queued", "deferred")), table.c.not_before <= uow.now)
        due, oldest = uow.connection.execute(
            select(func.count(), func.min(table.c.not_before)).where(*pending)
        ).one()
        retrying = uow.connection.execute(
            select(func.count()).where(table.c.state == "queued", table.c.attempts > 0)
        ).scalar_one()
    by_state = {state: 0 for state in STATES}
    by_channel: dict[str, dict[str, int]] = {}
    for state, channel, count in rows:
        by_state[state] = by_state.get(state, 0) + int(count)
        by_channel.setdefault(channel, {})[state] = int(count)
    return {
        "by_state": by_state,
        "by_channel": {k: by_channel[k] for k in sorted(by_channel)},
        "due_now": int(due),
        "oldest_due": _iso(oldest),
        "retrying": int(retrying),
    }


enforce_declared(__name__)
