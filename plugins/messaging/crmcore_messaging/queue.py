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

import importlib
import importlib.util
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
from attrs import frozen
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crmcore import CRM, Customer, UnitOfWork, checks
from crmcore.access import Action
from crmcore.checks import bad, choice
from crmcore.errors import NotFoundError, ValidationError
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.records import load_customer, merged_into
from crmcore_messaging import rules
from crmcore_messaging.channels.registry import channel_of
from crmcore_messaging.settings import CUSTOMER_PURPOSES, settings_of
from crmcore_messaging.tables import messages_table

#: Longest subject and body accepted (characters).
SUBJECT_LIMIT = 998
TEXT_LIMIT = 100_000


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


def _optional(field: str, value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        bad(field, f"expected text, got {type(value).__name__}", value)
    if len(value) > limit:
        bad(field, f"is longer than {limit} characters", value)
    return value


def _not_before(ctx: UnitOfWork, value: datetime | None) -> datetime:
    if value is None:
        return ctx.now
    if not isinstance(value, datetime) or value.tzinfo is None:
        bad("not_before", f"expected a timezone-aware timestamp, got {value!r}", value)
    return max(value, ctx.now)


def _refs(ref_type: Any, ref_id: Any, dedupe_key: Any) -> tuple[str | None, ...]:
    return (
        checks.text("ref_type", ref_type, 60),
        None if ref_id is None else checks.text("ref_id", str(ref_id), 100),
        checks.text("dedupe_key", dedupe_key, 200),
    )


def _existing(ctx: UnitOfWork, dedupe_key: str | None) -> int | None:
    if dedupe_key is None:
        return None
    table = messages_table(ctx.crm.metadata)
    found = ctx.connection.execute(
        select(table.c.id).where(table.c.dedupe_key == dedupe_key)
    ).scalar()
    return None if found is None else int(found)


def _store(ctx: UnitOfWork, row: dict[str, Any]) -> int | None:
    """Insert one message; ``None`` when its dedupe key was stored concurrently."""
    table = messages_table(ctx.crm.metadata)
    values = {
        "attempts": 0,
        "created_at": ctx.now,
        "updated_at": ctx.now,
        **row,
    }
    dialect = ctx.connection.dialect.name
    if values.get("dedupe_key") is not None and dialect in ("postgresql", "sqlite"):
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            make(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.id)
        )
    else:
        statement = insert(table).values(values).returning(table.c.id)
    found = ctx.connection.execute(statement).scalar()
    return None if found is None else int(found)


def _render(ctx: UnitOfWork, **arguments: Any) -> Any:
    """Render a template through the templates part (:mod:`crmcore_messaging.rendering`)."""
    name = "crmcore_messaging.rendering"
    if importlib.util.find_spec(name) is None:
        raise ValidationError("template: templates are not available; give text", field="template")
    return importlib.import_module(name).render_message(ctx, **arguments)


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
    settings = settings_of(ctx.crm)
    choice("purpose", purpose, CUSTOMER_PURPOSES)
    name = settings.default_channel(purpose) if channel is None else channel
    config = settings.channel(name)
    kind = channel_of(ctx.crm, name).address
    if (template is None) == (text is None):
        raise ValidationError("message: give either template or text", field="template")
    body = _optional("text", text, TEXT_LIMIT)
    if body is not None and not body.strip():
        bad("text", "must not be empty", text)
    subject = _optional("subject", subject, SUBJECT_LIMIT)
    html = _optional("html", html, TEXT_LIMIT)
    ref_type, ref_id, dedupe_key = _refs(ref_type, ref_id, dedupe_key)
    start = _not_before(ctx, not_before)
    existing = _existing(ctx, dedupe_key)
    if existing is not None:
        return Queued(existing, "duplicate")
    customer = _customer(ctx, customer_id)
    customer_id = int(customer.id or customer_id)
    recipient = rules.address_of(customer, config, kind)
    zone = rules.customer_zone(customer, settings)
    row: dict[str, Any] = {
        "token": secrets.token_hex(16),
        "customer_id": customer_id,
        "recipient": recipient,
        "channel": name,
        "purpose": purpose,
        "template": template,
        "timezone": zone,
        "ref_type": ref_type,
        "ref_id": ref_id,
        "dedupe_key": dedupe_key,
        "not_before": start,
    }
    connection = ctx.connection
    reason = rules.first_refusal(
        customer_id=customer_id,
        erased=rules.erased_ids(connection, [customer_id]),
        consents={customer_id: attrs.asdict(customer.consent)},
        channel=config,
        purpose=purpose,
        recipient=recipient,
    )
    state = "queued"
    if reason is None and start <= ctx.now:
        until = rules.quiet_until(ctx.now, zone, settings)
        if until is not None:
            state, row["not_before"] = "deferred", until
    if reason is None and state == "queued" and start <= ctx.now:
        counter = rules.CapCounter(connection, ctx.crm.metadata, settings, [customer_id], ctx.now)
        if not counter.admit(customer_id, name, purpose):
            reason = "frequency_cap"
    if reason is not None:
        row.update(state="refused", reason=reason, subject=subject, body_text=body)
    else:
        row["state"] = state
        if template is not None:
            rendered = _render(
                ctx,
                template=template,
                customer=customer,
                locale=locale or _locale(customer, settings),
                token=row["token"],
                channel=name,
                purpose=purpose,
                variables=variables,
                ref_type=ref_type,
                ref_id=ref_id,
            )
            row.update(
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                template_version=rendered.template_version,
                locale=rendered.locale,
            )
        else:
            row.update(subject=subject, body_text=body, body_html=html, locale=locale)
    message_id = _store(ctx, row)
    if message_id is None:
        return Queued(_existing(ctx, dedupe_key), "duplicate")
    return Queued(message_id, row["state"], reason)


def _customer(ctx: UnitOfWork, customer_id: int) -> Customer:
    """The customer, or the one it was merged into; NotFoundError when there is none."""
    try:
        return load_customer(ctx.connection, customer_id, ctx.crm.cipher)
    except NotFoundError:
        kept = merged_into(ctx.connection, customer_id)
        if kept is None:
            raise
        return load_customer(ctx.connection, kept, ctx.crm.cipher)


def _locale(customer: Any, settings: Any) -> str:
    given = customer.attributes.get(settings.locale_attribute)
    return given if isinstance(given, str) and given else str(settings.default_locale)


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
    user_name = text_required("user", user, 200)
    subject_text = text_required("subject", subject, SUBJECT_LIMIT)
    body = _optional("text", text, TEXT_LIMIT)
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
    ref_type, ref_id, dedupe_key = _refs(ref_type, ref_id, dedupe_key)
    existing = _existing(ctx, dedupe_key)
    if existing is not None:
        return Queued(existing, "duplicate")
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
    message_id = _store(ctx, row)
    if message_id is None:
        return Queued(_existing(ctx, dedupe_key), "duplicate")
    return Queued(message_id, str(row["state"]), reason)


def text_required(field: str, value: Any, limit: int) -> str:
    """Stripped, non-empty text of at most ``limit`` characters."""
    found = checks.text(field, value, limit, required=True)
    assert found is not None
    return found


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
