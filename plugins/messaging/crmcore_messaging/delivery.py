"""Draining the queue after commit: claim, send outside any transaction, record the outcome.

:func:`send_pending` (``crm messages send``) repeats, until nothing is due
or ``limit`` messages were handled:

1. :func:`~crmcore_messaging.claims.claim` a batch (one short transaction,
   rules re-checked);
2. send each claimed message through its channel, outside any transaction;
3. one transaction records every outcome: ``sent`` (``sent_at``, the
   provider id, the outbound interaction recorded through core with
   ``source="messaging"`` and ``external_id`` = the token), a retry
   (``queued`` again, ``attempts + 1``, ``not_before = now + base_seconds *
   factor^(attempts - 1)``), ``failed`` (permanent, or the attempts used up)
   or ``bounced`` (recipient refused). The events ``messaging.message_sent``
   and ``messaging.message_failed`` (data: :data:`EVENT_FIELDS`, ids and codes
   only) go to the outbox in that transaction.

Messages a crashed worker left ``sending`` are failed with reason
``interrupted`` after the lease and never resent (at most once). It is safe
to run from several processes at once: a message is claimed by one only.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from attrs import asdict, frozen
from sqlalchemy import bindparam, or_, select, update

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.checks import integer
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging.channels.base import (
    Bounced,
    DeliveryError,
    Outgoing,
    PermanentFailure,
    TemporaryFailure,
)
from crmcore_messaging.channels.registry import channel_of, new_channel
from crmcore_messaging.claims import claim, expire_interrupted
from crmcore_messaging.rules import erased_ids
from crmcore_messaging.settings import Settings, settings_of
from crmcore_messaging.tables import messages_table
from crmcore_messaging.tokens import unsubscribe_url

if TYPE_CHECKING:
    from sqlalchemy import Row

_log = logging.getLogger("crmcore_messaging.delivery")
#: The data of the ``messaging.message_sent`` and ``messaging.message_failed`` events.
EVENT_FIELDS = (
    "customer_id",
    "message_id",
    "channel",
    "purpose",
    "state",
    "reason",
    "ref_type",
    "ref_id",
)
#: Longest text kept as an interaction's text.
INTERACTION_TEXT = 500


@frozen
class SendReport:
    """What one :func:`send_pending` run did."""

    worker: str
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    bounced: int = 0
    refused: int = 0
    deferred: int = 0
    interrupted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return asdict(self)


def default_worker() -> str:
    """A name unique to this process and call: ``host:pid:random``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _outgoing(crm: CRM, row: Row[Any]) -> Outgoing:
    unsubscribe = None if row.customer_id is None else unsubscribe_url(crm, row.token)
    return Outgoing(
        id=int(row.id),
        token=row.token,
        channel=row.channel,
        recipient=row.recipient or "",
        purpose=row.purpose,
        text=row.body_text or "",
        subject=row.subject,
        html=row.body_html,
        customer_id=None if row.customer_id is None else int(row.customer_id),
        staff_user=row.staff_user,
        unsubscribe_url=unsubscribe,
    )


def _transmit(crm: CRM, rows: Sequence[Row[Any]]) -> list[tuple[Row[Any], str | None, Any]]:
    """Send each row through its channel: (row, provider id, DeliveryError or None).

    A failure before a message is handed to its channel (preparing it,
    opening the channel) is temporary: nothing left.
    """
    by_channel: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_channel[row.channel].append(row)
    outcomes: list[tuple[Row[Any], str | None, Any]] = []
    for name, group in by_channel.items():
        try:
            channel = new_channel(crm, name)
            channel.open()
        except Exception as exc:
            _log.exception("channel %s could not be opened", name)
            error = TemporaryFailure(f"{type(exc).__name__}: {exc}", reason="open")
            outcomes.extend((row, None, error) for row in group)
            continue
        try:
            for row in group:
                outcomes.append(_send_one(crm, channel, row))
        finally:
            try:
                channel.close()
            except Exception:
                _log.exception("channel %s could not be closed", name)
    return outcomes


def _send_one(crm: CRM, channel: Any, row: Row[Any]) -> tuple[Row[Any], str | None, Any]:
    try:
        outgoing = _outgoing(crm, row)
    except Exception as exc:  # nothing was handed to the channel: safe to retry
        return row, None, TemporaryFailure(f"{type(exc).__name__}: {exc}", reason="prepare")
    try:
        return row, channel.send(outgoing), None
    except DeliveryError as exc:
        return row, None, exc
    except Exception as exc:  # a channel's bug: never retried (it may have sent)
        _log.exception("channel %s failed on message %s", row.channel, row.id)
        return row, None, PermanentFailure(f"{type(exc).__name__}: {exc}", reason="error")


def _interaction(crm: CRM, row: Row[Any], customer_id: int, uow: UnitOfWork) -> dict[str, Any]:
    channel = channel_of(crm, row.channel)
    return {
        "customer_id": customer_id,
        "kind": channel.interaction_kind,
        "channel": channel.channel_of_interaction,
        "direction": "outbound",
        "occurred_at": uow.now,
        "text": (row.subject or row.body_text or "")[:INTERACTION_TEXT] or None,
        "source": "messaging",
        "external_id": row.token,
        "payload": {
            "message_id": int(row.id),
            "channel": row.channel,
            "purpose": row.purpose,
            "template": row.template,
            "ref_type": row.ref_type,
            "ref_id": row.ref_id,
        },
    }


def _record(
    crm: CRM,
    uow: UnitOfWork,
    worker: str,
    outcomes: Sequence[tuple[Row[Any], str | None, Any]],
    settings: Settings,
    counts: dict[str, int],
) -> None:
    """Record every outcome of a batch inside ``uow``."""
    table = messages_table(crm.metadata)
    mine = [table.c.id == bindparam("mid"), table.c.claimed_by == worker]
    sent = [(row, pid) for row, pid, error in outcomes if error is None]
    if sent:
        done = uow.connection.execute(
            update(table)
            .where(
                *mine,
                or_(
                    table.c.state == "sending",
                    (table.c.state == "failed") & (table.c.reason == "interrupted"),
                ),
            )
            .values(
                state="sent",
                reason=None,
                detail=None,
                sent_at=uow.now,
                provider_id=bindparam("pid"),
                attempts=table.c.attempts + 1,
                updated_at=uow.now,
            ),
            [{"mid": row.id, "pid": None if pid is None else str(pid)[:200]} for row, pid in sent],
        )
        counts["sent"] += int(done.rowcount or 0)
        # The customers now: a merge may have moved a message meanwhile, a deletion removed it.
        current = uow.connection.execute(
            select(table.c.id, table.c.customer_id).where(
                table.c.id.in_([int(row.id) for row, _ in sent]),
                table.c.customer_id.is_not(None),
            )
        )
        now_of = {int(message_id): int(customer_id) for message_id, customer_id in current}
        erased = erased_ids(uow.connection, now_of.values())  # erased while it was being sent
        _interactions(
            crm,
            uow,
            [
                (row, now_of[int(row.id)])
                for row, _ in sent
                if int(row.id) in now_of and now_of[int(row.id)] not in erased
            ],
        )
        _announce(crm, uow, [row for row, _ in sent])
        uow.emit_rows(
            "messaging.message_sent",
            EVENT_FIELDS,
            [_event(row, "sent", None) for row, _ in sent],
        )
    changes: list[dict[str, Any]] = []
    for row, _, error in outcomes:
        if error is None:
            continue
        attempts = int(row.attempts) + 1
        if _retried(row, error, settings):
            state, key = "queued", "retried"
            when = uow.now + timedelta(seconds=settings.retry.delay_seconds(attempts))
        else:
            state = "bounced" if isinstance(error, Bounced) else "failed"
            key, when = state, uow.now
        counts[key] += 1
        changes.append(
            {
                "mid": row.id,
                "st": state,
                "why": error.reason[:40],
                "what": error.detail[:2000],
                "n": attempts,
                "nb": when,
            }
        )
    ended = [(row, e) for row, _, e in outcomes if e is not None]
    ended = [(r, e) for r, e in ended if not _retried(r, e, settings)]
    if ended:
        uow.emit_rows(
            "messaging.message_failed",
            EVENT_FIELDS,
            [
                _event(row, "bounced" if isinstance(e, Bounced) else "failed", e.reason)
                for row, e in ended
            ],
        )
    if changes:
        uow.connection.execute(
            update(table)
            .where(*mine, table.c.state == "sending")
            .values(
                state=bindparam("st"),
                reason=bindparam("why"),
                detail=bindparam("what"),
                attempts=bindparam("n"),
                not_before=bindparam("nb"),
                claimed_by=None,
                updated_at=uow.now,
            ),
            changes,
        )


def _retried(row: Row[Any], error: DeliveryError, settings: Settings) -> bool:
    """Whether a failed attempt is retried: temporary, and attempts left."""
    attempts = int(row.attempts) + 1
    return isinstance(error, TemporaryFailure) and attempts < settings.retry.max_attempts


def _event(row: Row[Any], state: str, reason: str | None) -> list[Any]:
    customer = None if row.customer_id is None else int(row.customer_id)
    return [
        customer,
        int(row.id),
        row.channel,
        row.purpose,
        state,
        reason,
        row.ref_type,
        row.ref_id,
    ]


def _interactions(crm: CRM, uow: UnitOfWork, sent: Sequence[tuple[Row[Any], int]]) -> None:
    """Record the sent customer messages (row, customer now) as outbound interactions."""
    if not sent:
        return
    rows = [row for row, _ in sent]
    by_token = {row.token: int(row.id) for row in rows}
    ids: dict[int, int] = {}
    items = [_interaction(crm, row, customer_id, uow) for row, customer_id in sent]

    def existing(position: int, _item: Any, stored: int | None) -> None:
        if stored is not None:
            ids[int(rows[position].id)] = stored

    def rejected(position: int, _item: Any, exc: Exception) -> None:
        _log.warning("message %s: interaction not recorded: %s", rows[position].id, exc)

    stored = crm.interactions.record_many(items, ctx=uow, on_existing=existing, on_reject=rejected)
    for interaction in stored:
        if interaction.external_id in by_token and interaction.id is not None:
            ids[by_token[interaction.external_id]] = interaction.id
    if ids:
        table = messages_table(crm.metadata)
        uow.connection.execute(
            update(table)
            .where(table.c.id == bindparam("mid"))
            .values(interaction_id=bindparam("iid")),
            [{"mid": m, "iid": i} for m, i in ids.items()],
        )


def _announce(crm: CRM, uow: UnitOfWork, rows: Sequence[Row[Any]]) -> None:
    """Call ``messaging_message_sent`` in a savepoint: a failing plugin cannot unsend."""
    if not rows or not crm.pm.hook.messaging_message_sent.get_hookimpls():
        return
    messages = [
        {
            "message_id": int(r.id),
            "token": r.token,
            "customer_id": None if r.customer_id is None else int(r.customer_id),
            "staff_user": r.staff_user,
            "channel": r.channel,
            "purpose": r.purpose,
            "ref_type": r.ref_type,
            "ref_id": r.ref_id,
            "sent_at": uow.now,
        }
        for r in rows
    ]
    savepoint = uow.connection.begin_nested()
    try:
        crm.call_hook("messaging_message_sent", ctx=uow, messages=messages)
    except Exception:
        savepoint.rollback()
        _log.exception("messaging_message_sent failed; the messages stay sent")
    else:
        savepoint.commit()


@requires(Action.ADMINISTER)
def send_pending(crm: CRM, *, limit: int | None = None, worker: str | None = None) -> SendReport:
    """Send every due message (at most ``limit``); return what happened.

    Idempotent and safe from several processes at once: each message is
    claimed by one worker, in a transaction of its own, and sent once at
    most. ``worker`` names this sender in ``claimed_by`` (default
    :func:`default_worker`).
    """
    if limit is not None:
        integer("limit", limit, 1, 10_000_000)
    name = default_worker() if worker is None else str(worker)[:100]
    settings = settings_of(crm)
    counts: dict[str, int] = defaultdict(int)
    counts["interrupted"] = expire_interrupted(crm)
    left = limit
    while left is None or left > 0:
        size = settings.batch_size if left is None else min(settings.batch_size, left)
        claimed, ready, checked = claim(crm, name, size)
        if not claimed:
            break
        counts["claimed"] += claimed
        counts["refused"] += checked["refused"]
        counts["deferred"] += checked["deferred"]
        if left is not None:
            left -= claimed
        if not ready:
            continue
        outcomes = _transmit(crm, ready)
        with crm.unit_of_work(actor=name) as uow:
            _record(crm, uow, name, outcomes, settings, counts)
    report = SendReport(worker=name, **{k: v for k, v in counts.items() if v})
    if report.claimed or report.interrupted:
        with crm.unit_of_work(actor=name) as uow:
            details = {k: v for k, v in report.to_dict().items() if v}
            crm.audit.record(uow, [AuditEntry("messaging.send", "message", None, None, details)])
    return report


enforce_declared(__name__)
