"""Queueing messages inside the caller's unit of work: nothing leaves before it commits.

:func:`enqueue` (customers) and :func:`enqueue_staff` (users) only write a
row of ``messaging_messages`` through ``ctx``; :func:`send_message` is the
same for an application or a command (its own unit of work, audited).
:func:`crmcore_messaging.delivery.send_pending` sends what committed.

The rules (:mod:`crmcore_messaging.rules`) are checked here and again when
the message is claimed for sending: a message refused now is stored with
state ``refused`` and its reason and is never sent; one in quiet hours is
stored ``deferred`` until they end. A ``dedupe_key`` already stored makes
:func:`enqueue` store nothing and answer ``duplicate`` (re-runs of a sweep
queue nothing twice, even when two run at once).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.checks import bad
from crmcore.errors import ValidationError
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.batches import numbered_batches
from crmcore_messaging import rules
from crmcore_messaging.channels.registry import channel_of
from crmcore_messaging.preparing import (
    SUBJECT_LIMIT,
    TEXT_LIMIT,
    Batch,
    optional_text,
    references,
    required_text,
)
from crmcore_messaging.settings import settings_of

#: Requests decided and stored together by :func:`enqueue_many`.
BATCH = 500


@frozen
class Queued:
    """What :func:`enqueue` did: the message's id (``None`` if nothing was stored), state, reason.

    ``state`` is ``queued``, ``deferred`` (quiet hours), ``refused`` (see
    ``reason``) or ``duplicate`` (its ``dedupe_key`` was stored already:
    ``message_id`` is the stored message's).
    """

    message_id: int | None
    state: str
    reason: str | None = None


@requires(Action.WRITE, customer="customer_id")
def enqueue(
    ctx: UnitOfWork,
    *,
    customer_id: int,
    template: str | None = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    channel: str | None = None,
    purpose: str = "marketing",
    locale: str | None = None,
    variables: Mapping[str, Any] | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> Queued:
    """Queue a message to a customer inside ``ctx`` (sent after commit by ``send_pending``).

    Give ``template`` (rendered now for the customer, in ``locale`` or the
    customer's) or ``text`` (with optional ``subject`` and ``html``).
    ``channel`` defaults to ``default_channel`` of ``purpose`` (marketing,
    survey or service). ``not_before`` delays it. A customer merged into
    another is the kept one. ValidationError for bad arguments, NotFoundError
    for an unknown customer.
    """
    request = {
        "customer_id": customer_id,
        "template": template,
        "subject": subject,
        "text": text,
        "html": html,
        "channel": channel,
        "purpose": purpose,
        "locale": locale,
        "variables": variables,
        "ref_type": ref_type,
        "ref_id": ref_id,
        "dedupe_key": dedupe_key,
        "not_before": not_before,
    }
    return _queue(ctx, [request], BATCH, numbered=False, guard=False)[0]


@requires(Action.WRITE, scoped=True)  # write on every customer, checked per batch below
def enqueue_many(
    ctx: UnitOfWork, messages: Iterable[Mapping[str, Any]], *, batch_size: int = BATCH
) -> list[Queued]:
    """Queue many messages to customers inside ``ctx``: :func:`enqueue` for each, in batches.

    Each item holds :func:`enqueue`'s keyword arguments. The result is in
    the order of ``messages`` and equals what calling :func:`enqueue` for
    each would give, in a fixed number of queries per batch of
    ``batch_size`` (only templates are rendered one by one). A bad item is a
    ValidationError naming it (``messages[12]: text: ...``) and rolls the
    whole unit of work back. Needs write access to every customer.
    """
    return _queue(ctx, messages, batch_size, numbered=True, guard=True)


def _queue(
    ctx: UnitOfWork,
    messages: Iterable[Mapping[str, Any]],
    batch_size: int,
    *,
    numbered: bool,
    guard: bool,
) -> list[Queued]:
    batch = Batch(ctx, settings_of(ctx.crm))
    results: list[Queued] = []
    for chunk in numbered_batches(messages, batch_size):
        requests = []
        for position, given in chunk:
            try:
                requests.append(batch.check(given))
            except ValidationError as exc:
                if not numbered:
                    raise
                raise ValidationError(
                    f"messages[{position}]: {exc}", field=exc.field, value=exc.value
                ) from None
        if guard:
            ctx.crm.access.guard(ctx, [r["customer_id"] for r in requests], Action.WRITE)
        results.extend(_queue_batch(batch, requests))
    return results


def _queue_batch(batch: Batch, requests: Sequence[Mapping[str, Any]]) -> list[Queued]:
    """Decide and store one batch of checked requests (see :mod:`crmcore_messaging.preparing`)."""
    ctx = batch.ctx
    stored = batch.stored_keys(r["dedupe_key"] for r in requests)
    customers = batch.customers(r["customer_id"] for r in requests)
    ids = sorted({int(c.id) for c in customers.values() if c.id is not None})
    erased = rules.erased_ids(ctx.connection, ids)
    counter = rules.CapCounter(ctx.connection, ctx.crm.metadata, batch.settings, ids, ctx.now)
    rows: list[dict[str, Any]] = []
    decided: list[dict[str, Any] | Queued | str] = []  # a row, a stored duplicate, or its key
    first: set[str] = set()
    for request in requests:
        key = request["dedupe_key"]
        if key in stored:
            decided.append(Queued(stored[key], "duplicate"))
        elif key is not None and key in first:
            decided.append(key)  # repeats an earlier request of this batch
        else:
            row = batch.decide(request, customers[request["customer_id"]], erased, counter)
            if key is not None:
                first.add(key)
            rows.append(row)
            decided.append(row)
    new = batch.store(rows)
    taken = [r["dedupe_key"] for r in rows if r["token"] not in new]  # stored concurrently
    stored.update(batch.stored_keys(taken))
    stored.update({r["dedupe_key"]: new[r["token"]] for r in rows if r["token"] in new})
    results: list[Queued] = []
    for item in decided:
        if isinstance(item, Queued):
            results.append(item)
        elif isinstance(item, str) or item["token"] not in new:
            key = item if isinstance(item, str) else item["dedupe_key"]
            results.append(Queued(stored.get(key), "duplicate"))
        else:
            results.append(Queued(new[item["token"]], item["state"], item.get("reason")))
    return results


@requires(Action.REPORT)
def enqueue_staff(
    ctx: UnitOfWork,
    *,
    user: str,
    subject: str,
    text: str,
    channel: str | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    dedupe_key: str | None = None,
) -> Queued:
    """Queue a message to a user (a reminder, an escalation) inside ``ctx``.

    No consent, cap or quiet hours apply. The channel is ``channel``, else
    ``default_channel`` of purpose ``staff``, else the user's first
    configured one (``[plugins.messaging.staff.<user>]``); the address is the
    user's on that channel (``in_app``: the user name). Refused with reason
    ``no_address`` when the user has none there.
    """
    settings = settings_of(ctx.crm)
    user_name = required_text("user", user, 200)
    subject_text = required_text("subject", subject, SUBJECT_LIMIT)
    body = optional_text("text", text, TEXT_LIMIT)
    if not body or not body.strip():
        bad("text", "must not be empty", text)
    addresses = settings.staff.get(user_name, {})
    if channel is not None:
        name = channel
    elif "staff" in settings.default_channels:
        name = settings.default_channels["staff"]
    else:
        name = next(iter(addresses), settings.default_channel("staff"))
    settings.channel(name)
    kind = channel_of(ctx.crm, name).address
    recipient = addresses.get(name) or (user_name if kind == "customer" else None)
    ref_type, ref_id, dedupe_key = references(ref_type, ref_id, dedupe_key)
    batch = Batch(ctx, settings)
    existing = batch.stored_keys([dedupe_key])
    if dedupe_key in existing:
        return Queued(existing[dedupe_key], "duplicate")
    reason = None if recipient else "no_address"
    row = {
        "token": secrets.token_hex(16),
        "staff_user": user_name,
        "recipient": recipient,
        "channel": name,
        "purpose": "staff",
        "subject": subject_text,
        "body_text": body,
        "ref_type": ref_type,
        "ref_id": ref_id,
        "dedupe_key": dedupe_key,
        "not_before": ctx.now,
        "state": "queued" if reason is None else "refused",
        "reason": reason,
    }
    new = batch.store([row])
    if row["token"] not in new:  # the key was stored concurrently
        return Queued(batch.stored_keys([dedupe_key]).get(str(dedupe_key)), "duplicate")
    return Queued(new[str(row["token"])], str(row["state"]), reason)


@requires(Action.WRITE, customer="customer_id")
def send_message(
    crm: CRM,
    customer_id: int,
    *,
    template: str | None = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    channel: str | None = None,
    purpose: str = "marketing",
    locale: str | None = None,
    variables: Mapping[str, Any] | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Queued:
    """Queue a message to a customer in a unit of work of its own (or ``ctx``), audited.

    The same as :func:`enqueue`; the audit log records ``messaging.message_queue``
    with the message id, channel, purpose, state and reason.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        queued = enqueue(
            uow,
            customer_id=customer_id,
            template=template,
            subject=subject,
            text=text,
            html=html,
            channel=channel,
            purpose=purpose,
            locale=locale,
            variables=variables,
            ref_type=ref_type,
            ref_id=ref_id,
            dedupe_key=dedupe_key,
            not_before=not_before,
        )
        if queued.message_id is not None and queued.state != "duplicate":
            details = {
                "channel": channel or settings_of(crm).default_channel(purpose),
                "purpose": purpose,
                "state": queued.state,
                "reason": queued.reason,
            }
            crm.audit.record_batch(
                uow,
                "messaging.message_queue",
                "message",
                [(queued.message_id, customer_id, details)],
            )
    return queued


enforce_declared(__name__)
