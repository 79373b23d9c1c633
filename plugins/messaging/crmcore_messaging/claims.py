"""Claiming due messages for one worker: one short transaction that also re-checks the rules.

:func:`claim` runs in a transaction of its own, serialised against every
other claim: on PostgreSQL by a transaction-level advisory lock (the due rows
are also selected ``FOR UPDATE SKIP LOCKED``), on SQLite by the write lock
crmcore's ``BEGIN IMMEDIATE`` takes. Inside it:

1. ``UPDATE messaging_messages SET state='sending', claimed_by=:worker,
   claimed_at=:now WHERE id IN (SELECT id ... WHERE state IN ('queued',
   'deferred') AND not_before <= :now AND channel IN (:configured) ORDER BY
   not_before, id LIMIT :n) AND state IN ('queued','deferred') RETURNING
   ...``: the due messages, oldest due first, read from the partial index of
   waiting ones; a row is claimed by one worker only; messages of a channel
   this CRM does not configure stay queued (another process sends them);
2. the rules are checked again for each claimed customer message, in claim
   order (``not_before``, then id), with the consent flags and erasures as
   committed now, and frequency caps counted over committed ``sending`` and
   ``sent`` messages plus those of this batch already admitted (so two
   workers, or one batch, cannot pass a cap); a failing message becomes
   ``refused`` with its reason, one in quiet hours ``deferred`` to their end.

:func:`expire_interrupted` fails (reason ``interrupted``) messages left
``sending`` longer than the lease: they may have reached the server, so they
are never sent again automatically (at most once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, text, update

from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging import rules
from crmcore_messaging.settings import settings_of
from crmcore_messaging.tables import PENDING, messages_table

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import MetaData, Row, Select

    from crmcore import CRM

#: The PostgreSQL advisory lock key that serialises claims ("msgc").
CLAIM_LOCK = 0x6D736763
#: States a claim takes messages from.
CLAIMABLE = ("queued", "deferred")
#: Columns a claim returns (what sending needs).
_COLUMNS = (
    "id",
    "not_before",
    "token",
    "customer_id",
    "staff_user",
    "recipient",
    "channel",
    "purpose",
    "subject",
    "body_text",
    "body_html",
    "attempts",
    "timezone",
    "template",
    "ref_type",
    "ref_id",
)


def due_messages(
    metadata: MetaData, channels: Sequence[str], now: datetime, limit: int
) -> Select[tuple[int]]:
    """The ids a claim takes: waiting, due at ``now``, of ``channels``, oldest due first.

    The condition on the state is written as the partial index
    ``ix_messaging_messages_pending`` says it, so that the database reads the
    batch from that index, not every message ever sent.
    """
    table = messages_table(metadata)
    return (
        select(table.c.id)
        .where(PENDING, table.c.not_before <= now, table.c.channel.in_(list(channels)))
        .order_by(table.c.not_before, table.c.id)
        .limit(limit)
    )


@requires(Action.ADMINISTER)
def expire_interrupted(crm: CRM) -> int:
    """Fail the messages left ``sending`` for longer than ``lease_minutes``; return how many."""
    settings = settings_of(crm)
    table = messages_table(crm.metadata)
    with crm.unit_of_work() as uow:
        cutoff = uow.now - timedelta(minutes=settings.lease_minutes)
        done = uow.connection.execute(
            update(table)
            .where(table.c.state == "sending", table.c.claimed_at < cutoff)
            .values(
                state="failed",
                reason="interrupted",
                detail=f"still sending after {settings.lease_minutes} minutes: not resent",
                updated_at=uow.now,
            )
        )
    return int(done.rowcount or 0)


@requires(Action.ADMINISTER)
def claim(crm: CRM, worker: str, limit: int) -> tuple[int, list[Row[Any]], dict[str, int]]:
    """Claim up to ``limit`` due messages for ``worker`` and re-check the rules.

    Returns (rows claimed, the rows to send now, counts of ``refused`` and
    ``deferred``). Nothing claimed means nothing is due.
    """
    settings = settings_of(crm)
    table = messages_table(crm.metadata)
    counts = {"refused": 0, "deferred": 0}
    with crm.unit_of_work(actor=worker) as uow:
        connection = uow.connection
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
        due = due_messages(crm.metadata, list(settings.channels), uow.now, limit)
        if postgres:
            due = due.with_for_update(skip_locked=True)
        claimed = connection.execute(
            update(table)
            .where(table.c.id.in_(due.scalar_subquery()), table.c.state.in_(CLAIMABLE))
            .values(state="sending", claimed_by=worker, claimed_at=uow.now, updated_at=uow.now)
            .returning(*(table.c[name] for name in _COLUMNS))
        ).all()
        claimed = sorted(claimed, key=lambda r: (r.not_before, int(r.id)))  # claim order
        if not claimed:
            return 0, [], counts
        customer_ids = sorted({int(r.customer_id) for r in claimed if r.customer_id is not None})
        erased = rules.erased_ids(connection, customer_ids)
        consents = rules.consents_of(connection, customer_ids)
        counter = rules.CapCounter(
            connection,
            crm.metadata,
            settings,
            customer_ids,
            uow.now,
            exclude=[int(r.id) for r in claimed],
        )
        ready: list[Row[Any]] = []
        refused: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        for row in claimed:
            if row.customer_id is None:  # staff: no customer rule applies
                ready.append(row)
                continue
            config = settings.channels[row.channel]
            reason = rules.first_refusal(
                customer_id=int(row.customer_id),
                erased=erased,
                consents=consents,
                channel=config,
                purpose=row.purpose,
                recipient=row.recipient,
            )
            if reason is not None:
                refused.append({"mid": row.id, "why": reason})
                continue
            until = rules.quiet_until(uow.now, row.timezone or settings.default_timezone, settings)
            if until is not None:
                deferred.append({"mid": row.id, "until": until})
            elif not counter.admit(int(row.customer_id), row.channel, row.purpose):
                refused.append({"mid": row.id, "why": "frequency_cap"})
            else:
                ready.append(row)
        _release(uow.connection, table, refused, deferred, uow.now)
        counts["refused"], counts["deferred"] = len(refused), len(deferred)
    return len(claimed), ready, counts


def _release(
    connection: Any,
    table: Any,
    refused: Sequence[dict[str, Any]],
    deferred: Sequence[dict[str, Any]],
    now: Any,
) -> None:
    """Mark the refused and deferred messages of a claim (they were ``sending`` a moment)."""
    back = {"claimed_by": None, "claimed_at": None, "updated_at": now}
    if refused:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("mid"))
            .values(state="refused", reason=bindparam("why"), **back),
            list(refused),
        )
    if deferred:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("mid"))
            .values(state="deferred", reason="quiet_hours", not_before=bindparam("until"), **back),
            list(deferred),
        )


enforce_declared(__name__)
