"""The plugin's tables on core's shared MetaData, all prefixed ``sales_``.

* ``sales_deals``: one row per opportunity, its pipeline, stage and status;
* ``sales_deal_contacts``: the contact persons involved, with their role in the deal;
* ``sales_deal_items``: the products of a deal;
* ``sales_deal_history``: every change of a field that matters (field, old, new, at, actor);
* ``sales_contracts``, ``sales_instalments``, ``sales_payments``: contracts, their
  payment schedules and the payments received;
* ``sales_targets``: quotas per owner or team and period.

``customer_id`` is ``NULL`` on rows of customers who were erased (the rows stay,
stripped of free text, so that aggregates keep adding up).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

DEALS = "sales_deals"
DEAL_CONTACTS = "sales_deal_contacts"
DEAL_ITEMS = "sales_deal_items"
HISTORY = "sales_deal_history"
CONTRACTS = "sales_contracts"
INSTALMENTS = "sales_instalments"
PAYMENTS = "sales_payments"
TARGETS = "sales_targets"

_CUSTOMER_FK = "crm_customers.id"


def _customer() -> Column[int]:
    return Column("customer_id", IdType, ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))


def deals_table(metadata: MetaData) -> Table:
    """Return ``sales_deals``: ``status`` is ``open``, ``won`` or ``lost``; ``stage`` likewise.

    ``probability`` is a whole percentage; ``stage_changed_at`` the last stage
    move (creation counts); ``closed_at`` the win or loss.
    """
    if DEALS in metadata.tables:
        return metadata.tables[DEALS]
    return Table(
        DEALS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        _customer(),
        Column("title", String(200), nullable=False),
        Column("pipeline", String(40), nullable=False),
        Column("stage", String(40), nullable=False),
        Column("status", String(10), nullable=False),
        Column("probability", Integer, nullable=False),
        Column("category", String(20), nullable=False),
        Column("amount", Money, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("expected_close", Date, nullable=False),
        Column("owner", String(200)),
        Column("team", String(200)),
        Column("channel", String(40)),
        Column("campaign_id", String(100)),
        Column("next_step", Text),
        Column("notes", Text),
        Column("reason", String(40)),
        Column("competitor", String(200)),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("stage_changed_at", UTCDateTime, nullable=False),
        Column("closed_at", UTCDateTime),
        Column("reopen_count", Integer, nullable=False, default=0),
        Index("ix_sales_deals_customer_id", "customer_id"),
        Index("ix_sales_deals_status_close", "status", "expected_close"),
        Index("ix_sales_deals_owner", "owner"),
        Index("ix_sales_deals_closed_at", "closed_at"),
    )


def deal_contacts_table(metadata: MetaData) -> Table:
    """Return ``sales_deal_contacts``: a person involved in a deal and their role."""
    if DEAL_CONTACTS in metadata.tables:
        return metadata.tables[DEAL_CONTACTS]
    return Table(
        DEAL_CONTACTS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("deal_id", IdType, ForeignKey("sales_deals.id", ondelete="CASCADE"), nullable=False),
        Column("contact_id", IdType, ForeignKey(_CUSTOMER_FK, ondelete="CASCADE")),
        Column("role", String(40)),
        UniqueConstraint("deal_id", "contact_id", name="uq_sales_deal_contacts_deal_contact"),
        Index("ix_sales_deal_contacts_contact_id", "contact_id"),
    )


def deal_items_table(metadata: MetaData) -> Table:
    """Return ``sales_deal_items``: product, quantity and unit price of a deal line."""
    if DEAL_ITEMS in metadata.tables:
        return metadata.tables[DEAL_ITEMS]
    return Table(
        DEAL_ITEMS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("deal_id", IdType, ForeignKey("sales_deals.id", ondelete="CASCADE"), nullable=False),
        Column("product", String(200), nullable=False),
        Column("quantity", Integer, nullable=False),
        Column("unit_price", Money, nullable=False),
        Index("ix_sales_deal_items_deal_id", "deal_id"),
    )


def history_table(metadata: MetaData) -> Table:
    """Return ``sales_deal_history``: one row per changed field (``old``/``new`` as text)."""
    if HISTORY in metadata.tables:
        return metadata.tables[HISTORY]
    return Table(
        HISTORY,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("deal_id", IdType, ForeignKey("sales_deals.id", ondelete="CASCADE"), nullable=False),
        Column("field", String(40), nullable=False),
        Column("old", String(200)),
        Column("new", String(200)),
        Column("at", UTCDateTime, nullable=False),
        Column("actor", String(200)),
        Index("ix_sales_deal_history_deal_id", "deal_id", "id"),
        Index("ix_sales_deal_history_field_at", "field", "at"),
    )


def contracts_table(metadata: MetaData) -> Table:
    """Return ``sales_contracts``: value, dates and payment terms of a won deal."""
    if CONTRACTS in metadata.tables:
        return metadata.tables[CONTRACTS]
    return Table(
        CONTRACTS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("deal_id", IdType, ForeignKey("sales_deals.id", ondelete="SET NULL")),
        _customer(),
        Column("value", Money, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("start_date", Date, nullable=False),
        Column("end_date", Date, nullable=False),
        Column("renewal_date", Date),
        Column("payment_terms_days", Integer, nullable=False),
        Column("owner", String(200)),
        Column("created_at", UTCDateTime, nullable=False),
        Column("renewal_notified_at", UTCDateTime),
        Index("ix_sales_contracts_customer_id", "customer_id"),
        Index("ix_sales_contracts_renewal_date", "renewal_date"),
    )


def instalments_table(metadata: MetaData) -> Table:
    """Return ``sales_instalments``: the schedule of a contract (amount due on a date)."""
    if INSTALMENTS in metadata.tables:
        return metadata.tables[INSTALMENTS]
    return Table(
        INSTALMENTS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "contract_id",
            IdType,
            ForeignKey("sales_contracts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _customer(),
        Column("seq", Integer, nullable=False),
        Column("due_date", Date, nullable=False),
        Column("amount", Money, nullable=False),
        Column("overdue_notified_at", UTCDateTime),
        UniqueConstraint("contract_id", "seq", name="uq_sales_instalments_contract_seq"),
        Index("ix_sales_instalments_due_date", "due_date"),
    )


def payments_table(metadata: MetaData) -> Table:
    """Return ``sales_payments``: money received on a contract, unique by ``reference``."""
    if PAYMENTS in metadata.tables:
        return metadata.tables[PAYMENTS]
    return Table(
        PAYMENTS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "contract_id",
            IdType,
            ForeignKey("sales_contracts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _customer(),
        Column("amount", Money, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("received_on", Date, nullable=False),
        Column("reference", String(200), nullable=False),
        Column("interaction_id", IdType, ForeignKey("crm_interactions.id", ondelete="SET NULL")),
        Column("recorded_at", UTCDateTime, nullable=False),
        UniqueConstraint("reference", name="uq_sales_payments_reference"),
        Index("ix_sales_payments_contract_id", "contract_id"),
        Index("ix_sales_payments_received_on", "received_on"),
    )


def targets_table(metadata: MetaData) -> Table:
    """Return ``sales_targets``: a quota for an owner or a team over ``[start, end)`` days."""
    if TARGETS in metadata.tables:
        return metadata.tables[TARGETS]
    return Table(
        TARGETS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("owner", String(200)),
        Column("team", String(200)),
        Column("period_start", Date, nullable=False),
        Column("period_end", Date, nullable=False),
        Column("amount", Money, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("details", JSONDocument, nullable=False),
        UniqueConstraint(
            "owner", "team", "period_start", "period_end", name="uq_sales_targets_who_period"
        ),
    )


def register(metadata: MetaData) -> None:
    """Define every table of the plugin on ``metadata`` (once)."""
    deals_table(metadata)
    deal_contacts_table(metadata)
    deal_items_table(metadata)
    history_table(metadata)
    contracts_table(metadata)
    instalments_table(metadata)
    payments_table(metadata)
    targets_table(metadata)


__all__ = [
    "contracts_table",
    "deal_contacts_table",
    "deal_items_table",
    "deals_table",
    "history_table",
    "instalments_table",
    "payments_table",
    "register",
    "targets_table",
]
