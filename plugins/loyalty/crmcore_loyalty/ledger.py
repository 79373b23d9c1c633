"""The ledger engine: append entries, keep lots, consume them FIFO, expire them.

Every function works inside the caller's unit of work (``ctx``) and issues a
constant number of statements whatever the number of rows. Invariants kept
for every customer:

* balance = ``SUM(loyalty_ledger.points)``;
* ``SUM(loyalty_lots.remaining)`` = balance, every ``remaining`` in
  ``[0, points]`` (a CHECK constraint refuses an overdrawn lot);
* each idempotency key is applied once: the key column is UNIQUE and
  inserts use ``ON CONFLICT DO NOTHING``, so a concurrent duplicate waits
  for the first writer and then inserts nothing.

Concurrency: debits first lock the members' rows (``SELECT ... FOR UPDATE``
on PostgreSQL, ordered by customer id so that batches cannot deadlock);
SQLite transactions begin IMMEDIATE and hold the one write lock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from attrs import frozen
from sqlalchemy import (
    Connection,
    Insert,
    String,
    Table,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from crmcore import CRM, ConflictError, UnitOfWork
from crmcore.audit import acting_user
from crmcore.storage.filters import among
from crmcore.storage.ids import allocate_ids
from crmcore_loyalty.records import ExpiryRun, LedgerEntry
from crmcore_loyalty.tables import (
    allocations_table,
    ledger_table,
    lots_table,
    members_table,
)

# Ids per IN (...) list, well below every backend's bind-parameter limit.
CHUNK = 500


def chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """Sorted unique ids in lists of at most :data:`CHUNK`."""
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), CHUNK):
        yield wanted[start : start + CHUNK]


def is_postgresql(connection: Connection) -> bool:
    """Whether ``connection`` talks to PostgreSQL (row locks needed) rather than SQLite."""
    return connection.dialect.name == "postgresql"


def insert_ignoring_duplicate_keys(connection: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING`` for this backend."""
    dialect_insert = postgresql.insert if is_postgresql(connection) else sqlite.insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])


def lock_members(
    ctx: UnitOfWork, customer_ids: Iterable[int], *, lock: bool = True
) -> dict[int, Any]:
    """Return the ``loyalty_members`` rows of these customers, locked on PostgreSQL.

    Rows are locked in customer-id order (no deadlock between two batches);
    ``lock=False`` only reads them. Each row carries the customer's
    ``birth_date``. Non-members are simply absent from the result.
    """
    members = members_table(ctx.crm.metadata)
    customers = ctx.crm.metadata.tables["crm_customers"]
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    query = (
        select(members, customers.c.birth_date)
        .join(customers, customers.c.id == members.c.customer_id)
        .where(among(ctx.connection, members.c.customer_id, wanted))
        .order_by(members.c.customer_id)
    )
    if lock and is_postgresql(ctx.connection):
        query = query.with_for_update(of=members)
    return {row.customer_id: row for row in ctx.connection.execute(query).all()}


def entry_by_key(ctx: UnitOfWork, key: str) -> LedgerEntry | None:
    """The entry stored under an idempotency key, if any."""
    ledger = ledger_table(ctx.crm.metadata)
    row = ctx.connection.execute(select(ledger).where(ledger.c.idempotency_key == key)).first()
    return None if row is None else LedgerEntry.from_row(row, replayed=True)


def existing_keys(ctx: UnitOfWork, keys: Iterable[str]) -> set[str]:
    """Which of these idempotency keys are already in the ledger (one query)."""
    ledger = ledger_table(ctx.crm.metadata)
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    query = select(ledger.c.idempotency_key).where(
        among(ctx.connection, ledger.c.idempotency_key, wanted)
    )
    return set(ctx.connection.execute(query).scalars().all())


def entry_row(
    ctx: UnitOfWork,
    *,
    customer_id: int,
    kind: str,
    points: int,
    key: str,
    occurred_at: datetime,
    expires_at: datetime | None = None,
    interaction_id: int | None = None,
    purchase_id: int | None = None,
    amount: Decimal | None = None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete ``loyalty_ledger`` row (every column present, for executemany)."""
    return {
        "customer_id": customer_id,
        "kind": kind,
        "points": points,
        "occurred_at": occurred_at,
        "recorded_at": ctx.now,
        "expires_at": expires_at,
        "interaction_id": interaction_id,
        "purchase_id": purchase_id,
        "amount": amount,
        "reason": reason,
        "idempotency_key": key,
        "actor": acting_user(ctx),
        "details": dict(details) if details else None,
    }


def _audit(ctx: UnitOfWork, rows: Sequence[Mapping[str, Any]]) -> None:
    """Audit written entries through core: one entry per kind (a batch entry when many)."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(str(row["kind"]), []).append(row)
    for kind, entries in by_kind.items():
        if len(entries) == 1:
            row = entries[0]
            subjects = [(row["id"], row["customer_id"], {"points": int(row["points"])})]
        else:
            subjects = [(r["id"], r["customer_id"], {}) for r in entries]
        ctx.crm.audit.record_batch(ctx, f"loyalty.{kind}", "loyalty_entry", subjects)


def append(ctx: UnitOfWork, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Append entries (from :func:`entry_row`); create the lots of the positive ones.

    Entries whose key is already stored are skipped (``ON CONFLICT DO
    NOTHING``). Returns the ids of the entries actually written. Three
    statements whatever the number of rows.
    """
    if not rows:
        return []
    ledger = ledger_table(ctx.crm.metadata)
    lots = lots_table(ctx.crm.metadata)
    ids = allocate_ids(ctx.connection, ledger, len(rows))
    stamped = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
    ctx.connection.execute(insert_ignoring_duplicate_keys(ctx.connection, ledger), stamped)
    written = set(
        ctx.connection.execute(
            select(ledger.c.id).where(among(ctx.connection, ledger.c.id, ids))
        ).scalars()
    )
    _audit(ctx, [row for row in stamped if row["id"] in written])
    credited = [new_id for new_id, row in zip(ids, rows, strict=True) if row["points"] > 0]
    if credited and written:
        ctx.connection.execute(
            insert(lots).from_select(
                ["id", "customer_id", "points", "remaining", "earned_at", "expires_at"],
                select(
                    ledger.c.id,
                    ledger.c.customer_id,
                    ledger.c.points,
                    ledger.c.points,
                    ledger.c.occurred_at,
                    ledger.c.expires_at,
                ).where(among(ctx.connection, ledger.c.id, sorted(written.intersection(credited)))),
            )
        )
    return [new_id for new_id in ids if new_id in written]


def append_one(ctx: UnitOfWork, row: dict[str, Any]) -> LedgerEntry:
    """Append one entry idempotently; return it, or the entry its key already stored.

    A reused key whose stored entry differs (customer, kind or points)
    raises ConflictError: a key names one operation, never two.
    """
    written = append(ctx, [row])
    ledger = ledger_table(ctx.crm.metadata)
    if written:
        stored = ctx.connection.execute(select(ledger).where(ledger.c.id == written[0])).one()
        return LedgerEntry.from_row(stored)
    existing = entry_by_key(ctx, row["idempotency_key"])
    if existing is None:  # pragma: no cover - the conflict row cannot vanish inside the lock
        raise ConflictError(f"idempotency_key: {row['idempotency_key']!r} could not be stored")
    check_same_operation(existing, row)
    return existing


def check_same_operation(existing: LedgerEntry, row: Mapping[str, Any]) -> None:
    """Raise ConflictError when a reused key's entry is not the operation now asked for."""
    if (existing.customer_id, existing.kind, existing.points) != (
        row["customer_id"],
        row["kind"],
        row["points"],
    ):
        raise ConflictError(
            f"idempotency_key: {row['idempotency_key']!r} was already used by entry "
            f"{existing.id} ({existing.kind} {existing.points:+d} points for customer "
            f"{existing.customer_id}), not {row['kind']} {row['points']:+d} points for "
            f"customer {row['customer_id']}"
        )


def balances(ctx: UnitOfWork, customer_ids: Iterable[int]) -> dict[int, int]:
    """The ledger balance (sum of points) of each customer; 0 for customers without entries."""
    ledger = ledger_table(ctx.crm.metadata)
    result: dict[int, int] = {}
    for chunk in chunks(customer_ids):
        result.update(dict.fromkeys(chunk, 0))
        query = (
            select(ledger.c.customer_id, func.coalesce(func.sum(ledger.c.points), 0))
            .where(ledger.c.customer_id.in_(chunk))
            .group_by(ledger.c.customer_id)
        )
        result.update((cid, int(total)) for cid, total in ctx.connection.execute(query))
    return result


# --- debits ----------------------------------------------------------------------------


@frozen
class Debit:
    """Points to take from a customer's lots, oldest first.

    ``row`` is the entry to write (its ``points`` are filled in: minus what
    was taken). ``prefer_purchase`` makes the lots that purchase created go
    first (a refund reverses the purchase's own points first). ``partial``
    takes what is there when the lots do not cover ``wanted`` (reversals);
    otherwise the caller has checked the balance beforehand.
    """

    row: dict[str, Any]
    wanted: int
    prefer_purchase: int | None = None
    partial: bool = False


def apply_debits(
    ctx: UnitOfWork, debits: Sequence[Debit], *, written_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Consume lots for each debit in order, write the debit entries; return the rows written.

    One read of the open lots, one executemany each for the entries, the lot
    updates and the allocations. Debits whose key is already stored are
    skipped by the caller (:func:`existing_keys`). With ``written_ids`` the
    entries were already written (a redemption claims its key first) and
    only the lots are consumed.
    """
    if not debits:
        return []
    ledger = ledger_table(ctx.crm.metadata)
    lots = lots_table(ctx.crm.metadata)
    open_lots: dict[int, list[list[Any]]] = defaultdict(list)
    for chunk in chunks(d.row["customer_id"] for d in debits):
        query = (
            select(lots.c.id, lots.c.customer_id, lots.c.remaining, ledger.c.purchase_id)
            .join(ledger, ledger.c.id == lots.c.id)
            .where(lots.c.customer_id.in_(chunk), lots.c.remaining > 0)
            .order_by(lots.c.customer_id, lots.c.earned_at, lots.c.id)
        )
        for lot_id, cid, remaining, purchase_id in ctx.connection.execute(query):
            open_lots[cid].append([lot_id, int(remaining), purchase_id])
    rows: list[dict[str, Any]] = []
    taken_per_row: list[list[tuple[int, int]]] = []
    for debit in debits:
        customer_lots = open_lots[debit.row["customer_id"]]
        ordered = sorted(
            customer_lots,
            key=lambda lot: 0 if debit.prefer_purchase and lot[2] == debit.prefer_purchase else 1,
        )  # stable: FIFO within each group
        need = debit.wanted
        taken: list[tuple[int, int]] = []
        for lot in ordered:
            if need <= 0:
                break
            take = min(need, lot[1])
            if take > 0:
                lot[1] -= take
                need -= take
                taken.append((lot[0], take))
        if need > 0 and not debit.partial:
            raise RuntimeError(  # pragma: no cover - callers check the balance first
                f"loyalty ledger and lots disagree for customer {debit.row['customer_id']}"
            )
        got = debit.wanted - max(need, 0)
        row = {**debit.row, "points": -got}
        if debit.partial and got < debit.wanted:
            details = dict(row.get("details") or {})
            details.update({"wanted": debit.wanted, "shortfall": debit.wanted - got})
            row["details"] = details
        rows.append(row)
        taken_per_row.append(taken)
    if written_ids is None:
        ids = allocate_ids(ctx.connection, ledger, len(rows))
        ctx.connection.execute(
            insert(ledger), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)]
        )
    else:
        ids = list(written_ids)
    consumed: dict[int, int] = defaultdict(int)
    allocations = []
    for entry_id, taken in zip(ids, taken_per_row, strict=True):
        for lot_id, points in taken:
            consumed[lot_id] += points
            allocations.append({"entry_id": entry_id, "lot_id": lot_id, "points": points})
    if consumed:
        ctx.connection.execute(
            update(lots)
            .where(lots.c.id == bindparam("lot"))
            .values(remaining=lots.c.remaining - bindparam("taken")),
            [{"lot": lot, "taken": n} for lot, n in consumed.items()],
        )
        ctx.connection.execute(insert(allocations_table(ctx.crm.metadata)), allocations)
    return [{**r, "id": i} for r, i in zip(rows, ids, strict=True)]


# --- expiry ----------------------------------------------------------------------------


def expire_due(
    ctx: UnitOfWork,
    as_of: datetime,
    customer_ids: Sequence[int] | None = None,
    *,
    locked: bool = False,
) -> ExpiryRun:
    """Write off every lot (of these customers, or all) whose ``expires_at <= as_of``.

    Each lot gets one ``expire`` entry dated at its own expiry instant, for
    exactly its remaining points, under the key ``expire:<lot id>``: running
    again writes nothing (idempotent). Set-based: a lock, a count and three
    statements per call (per 500 customers when ids are given), whatever the
    number of lots. ``locked=True``: the caller already holds the members' locks.
    """
    crm = ctx.crm
    lots = lots_table(crm.metadata)
    ledger = ledger_table(crm.metadata)
    allocations = allocations_table(crm.metadata)
    groups: list[list[int] | None] = [None] if customer_ids is None else list(chunks(customer_ids))
    total_lots = total_points = total_members = 0
    for group in groups:
        due = and_(
            lots.c.remaining > 0,
            lots.c.expires_at.is_not(None),
            lots.c.expires_at <= as_of,
            true() if group is None else lots.c.customer_id.in_(group),
        )
        if not locked and is_postgresql(ctx.connection):
            members = members_table(crm.metadata)
            ctx.connection.execute(
                select(members.c.customer_id)
                .where(members.c.customer_id.in_(select(lots.c.customer_id).where(due)))
                .order_by(members.c.customer_id)
                .with_for_update()
            )
        count, points, people = ctx.connection.execute(
            select(
                func.count(),
                func.coalesce(func.sum(lots.c.remaining), 0),
                func.count(func.distinct(lots.c.customer_id)),
            ).where(due)
        ).one()
        if not count:
            continue
        key = literal("expire:") + cast(lots.c.id, String)
        ctx.connection.execute(
            insert_ignoring_duplicate_keys(ctx.connection, ledger).from_select(
                [
                    "customer_id",
                    "kind",
                    "points",
                    "occurred_at",
                    "recorded_at",
                    "reason",
                    "idempotency_key",
                    "actor",
                ],
                select(
                    lots.c.customer_id,
                    literal("expire"),
                    -lots.c.remaining,
                    lots.c.expires_at,
                    literal(ctx.now, type_=ledger.c.recorded_at.type),
                    literal("points expired"),
                    key,
                    literal(acting_user(ctx), type_=String),
                )
                .where(due)
                .order_by(lots.c.expires_at, lots.c.id),
            )
        )
        ctx.connection.execute(
            insert(allocations).from_select(
                ["entry_id", "lot_id", "points"],
                select(ledger.c.id, lots.c.id, lots.c.remaining)
                .select_from(lots)
                .join(ledger, ledger.c.idempotency_key == key)
                .where(due),
            )
        )
        ctx.connection.execute(update(lots).where(due).values(remaining=0))
        total_lots += int(count)
        total_points += int(points)
        total_members += int(people)
    return ExpiryRun(as_of=as_of, lots=total_lots, points=total_points, members=total_members)


def overdue_points(crm: CRM, connection: Connection, customer_id: int, as_of: datetime) -> int:
    """Points of the customer's lots past their expiry at ``as_of`` but not yet written off."""
    lots = lots_table(crm.metadata)
    return int(
        connection.execute(
            select(func.coalesce(func.sum(lots.c.remaining), 0)).where(
                lots.c.customer_id == customer_id,
                lots.c.remaining > 0,
                lots.c.expires_at.is_not(None),
                lots.c.expires_at <= as_of,
            )
        ).scalar_one()
    )


def expiring_lots(
    crm: CRM, connection: Connection, customer_id: int, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """``(expires_at, points)`` of the customer's lots expiring in ``(start, end]``, soonest first.

    Grouped by expiry instant in SQL.
    """
    lots = lots_table(crm.metadata)
    query = (
        select(lots.c.expires_at, func.sum(lots.c.remaining))
        .where(
            lots.c.customer_id == customer_id,
            lots.c.remaining > 0,
            lots.c.expires_at > start,
            lots.c.expires_at <= end,
        )
        .group_by(lots.c.expires_at)
        .order_by(lots.c.expires_at)
    )
    return [(at, int(points)) for at, points in connection.execute(query)]


__all__ = [
    "Debit",
    "append",
    "append_one",
    "apply_debits",
    "balances",
    "check_same_operation",
    "chunks",
    "entry_by_key",
    "entry_row",
    "existing_keys",
    "expire_due",
    "expiring_lots",
    "insert_ignoring_duplicate_keys",
    "is_postgresql",
    "lock_members",
]
