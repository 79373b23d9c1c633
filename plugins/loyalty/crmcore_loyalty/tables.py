"""The loyalty plugin's tables, defined once on core's shared MetaData.

* ``loyalty_members``: one row per customer who ever joined (status, tier).
* ``loyalty_ledger``: the append-only points ledger; a member's balance is
  the sum of their entries' ``points``. ``idempotency_key`` is UNIQUE: the
  database, not a read-then-write check, guarantees each key is applied once.
* ``loyalty_lots``: one lot per positive entry (what was credited, what is
  left of it, when it expires): the index FIFO consumption and expiry use.
* ``loyalty_allocations``: which lots each debit consumed (append-only).
* ``loyalty_tier_changes``: upgrade and downgrade history.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

MEMBERS = "loyalty_members"
LEDGER = "loyalty_ledger"
LOTS = "loyalty_lots"
ALLOCATIONS = "loyalty_allocations"
TIER_CHANGES = "loyalty_tier_changes"


def members_table(metadata: MetaData) -> Table:
    """Return ``loyalty_members`` on ``metadata``, defining it the first time."""
    if MEMBERS in metadata.tables:
        return metadata.tables[MEMBERS]
    return Table(
        MEMBERS,
        metadata,
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("member_number", String(40), nullable=False, unique=True),
        Column("status", String(10), nullable=False),
        Column("joined_at", UTCDateTime, nullable=False),
        Column("left_at", UTCDateTime),
        Column("channel", String(30)),
        Column("referred_by", IdType, ForeignKey("crm_customers.id", ondelete="SET NULL")),
        Column("tier", String(60)),
        Column("tier_since", UTCDateTime),
    )


def ledger_table(metadata: MetaData) -> Table:
    """Return ``loyalty_ledger`` on ``metadata``, defining it the first time.

    ``points`` is signed (credits positive, debits negative). ``occurred_at``
    is when the entry takes effect (a purchase's time, an expiry instant),
    ``recorded_at`` when it was written. ``amount`` is the qualifying spend
    an entry carries (the purchase amount on a purchase's base earn entry,
    minus the refunded amount on a reversal). ``customer_id`` becomes NULL
    when the customer is erased (the entry stays as an anonymous aggregate).
    """
    if LEDGER in metadata.tables:
        return metadata.tables[LEDGER]
    return Table(
        LEDGER,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("customer_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
        Column("kind", String(10), nullable=False),
        Column("points", BigInteger, nullable=False),
        Column("occurred_at", UTCDateTime, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime),
        Column("interaction_id", BigInteger),
        Column("purchase_id", BigInteger),
        Column("amount", Money),
        Column("reason", Text),
        Column("idempotency_key", String(200), unique=True),
        Column("actor", String(200)),
        Column("details", JSONDocument),
        Index("ix_loyalty_ledger_customer_time", "customer_id", "occurred_at"),
        Index("ix_loyalty_ledger_purchase_id", "purchase_id"),
        Index("ix_loyalty_ledger_kind_time", "kind", "occurred_at"),
    )


def lots_table(metadata: MetaData) -> Table:
    """Return ``loyalty_lots`` on ``metadata``, defining it the first time.

    ``id`` is the id of the positive ledger entry that created the lot;
    ``remaining`` is what no debit has consumed yet (always
    ``points - sum(allocations)``).
    """
    if LOTS in metadata.tables:
        return metadata.tables[LOTS]
    return Table(
        LOTS,
        metadata,
        Column(
            "id",
            IdType,
            ForeignKey("loyalty_ledger.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("points", BigInteger, nullable=False),
        Column("remaining", BigInteger, nullable=False),
        Column("earned_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime),
        # The database itself refuses an overdrawn lot.
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining"),
        Index("ix_loyalty_lots_customer_earned", "customer_id", "earned_at"),
        Index("ix_loyalty_lots_expires_at", "expires_at"),
    )


def allocations_table(metadata: MetaData) -> Table:
    """Return ``loyalty_allocations`` on ``metadata``, defining it the first time."""
    if ALLOCATIONS in metadata.tables:
        return metadata.tables[ALLOCATIONS]
    return Table(
        ALLOCATIONS,
        metadata,
        Column(
            "entry_id",
            IdType,
            ForeignKey("loyalty_ledger.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "lot_id",
            IdType,
            ForeignKey("loyalty_lots.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("points", BigInteger, nullable=False),
    )


def tier_changes_table(metadata: MetaData) -> Table:
    """Return ``loyalty_tier_changes`` on ``metadata``, defining it the first time."""
    if TIER_CHANGES in metadata.tables:
        return metadata.tables[TIER_CHANGES]
    return Table(
        TIER_CHANGES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("from_tier", String(60)),
        Column("to_tier", String(60)),
        Column("at", UTCDateTime, nullable=False),
        Column("reason", Text),
    )


def register_tables(metadata: MetaData) -> None:
    """Define every loyalty table on ``metadata`` (idempotent)."""
    members_table(metadata)
    ledger_table(metadata)
    lots_table(metadata)
    allocations_table(metadata)
    tier_changes_table(metadata)
