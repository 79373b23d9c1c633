"""Core tables, on the one :data:`metadata` that plugins add their tables to.

Plugin tables are prefixed with the plugin name (``loyalty_ledger``); core
tables are prefixed ``crm_``.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    or_,
    text,
)

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

#: Naming convention so that constraint names are stable across backends and migrations.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The shared MetaData of core and every plugin.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


customers = Table(
    "crm_customers",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("name", String(300), nullable=False),
    Column("name_norm", String(300), nullable=False, index=True),
    Column("email", String(320)),
    Column("email_norm", String(320), unique=True),
    Column("phone", String(50)),
    Column("phone_norm", String(50), unique=True),
    Column("address", Text),
    Column("gender", String(20)),
    Column("birth_date", Date),
    Column("company_name", String(300)),
    Column("org_norm", String(300), unique=True),
    Column("industry", String(200)),
    Column("size", Integer),
    Column("registered_capital", Money),
    Column("founding_date", Date),
    Column("owner", String(200), index=True),
    Column("stage", String(20), nullable=False, index=True),
    Column("source_channel", String(30)),
    Column("attributes", JSONDocument, nullable=False),
    Column("consent_marketing_email", Boolean, nullable=False),
    Column("consent_marketing_sms", Boolean, nullable=False),
    Column("consent_marketing_phone", Boolean, nullable=False),
    Column("consent_surveys", Boolean, nullable=False),
    Column("consent_data_processing", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # Encrypted fields (crmcore.security.encryption), sealed together; NULL when encryption is off.
    Column("sealed", Text),
)

customer_tags = Table(
    "crm_customer_tags",
    metadata,
    Column(
        "customer_id",
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag", String(100), primary_key=True),
    Index("ix_crm_customer_tags_tag", "tag"),
)

interactions = Table(
    "crm_interactions",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column(
        "customer_id",
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(30), nullable=False),
    Column("channel", String(30), nullable=False),
    Column("direction", String(10), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("amount", Money),
    Column("currency", String(3)),
    Column("items", JSONDocument, nullable=False),
    Column("text", Text),
    Column("payload", JSONDocument, nullable=False),
    Column("handled_by", String(200)),
    Column("response_seconds", Float),
    # Idempotency key: an interaction with an external id is stored once per source.
    Column("source", String(100)),
    Column("external_id", String(200)),
    # The contact person (a customer of kind person) involved when the customer is an
    # organisation (crmcore.services.accounts).
    Column("contact_id", IdType, ForeignKey("crm_customers.id", ondelete="SET NULL"), index=True),
    # external_id first: the duplicate check looks rows up by external id.
    UniqueConstraint("external_id", "source", name="uq_crm_interactions_external_id_source"),
    Index("ix_crm_interactions_customer_time", "customer_id", "occurred_at"),
    Index("ix_crm_interactions_kind_time", "kind", "occurred_at"),
)

lifecycle_events = Table(
    "crm_lifecycle_events",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column(
        "customer_id",
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("from_stage", String(20)),
    Column("to_stage", String(20), nullable=False),
    Column("reason", Text),
    Column("actor", String(200)),
    Column("at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "crm_audit_log",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(200), index=True),
    Column("action", String(60), nullable=False),
    Column("entity", String(60), nullable=False),
    Column("entity_id", BigInteger),
    # No foreign key: entries outlive the customers they describe.
    Column("customer_id", BigInteger, index=True),
    Column("details", JSONDocument, nullable=False),
    # Whom an application said the principal acted for (``actor`` is the principal).
    Column("on_behalf_of", String(200)),
)

customer_grants = Table(
    "crm_customer_grants",
    metadata,
    Column(
        "customer_id",
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user", String(200), primary_key=True),
)

# The transactional outbox (crmcore.events): one row per group of events a unit of work
# emitted, written in its transaction; ``position`` is given at commit, in commit order.
events = Table(
    "crm_events",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("position", BigInteger, unique=True),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("type", String(100), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200)),
    # One item per event: {"customer_id": ..., ...}; no foreign key, events outlive customers.
    Column("items", JSONDocument, nullable=False),
)

event_cursors = Table(
    "crm_event_cursors",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- identity: external ids and merges (crmcore.services.customers) -------------------

# The ids a customer has in other systems: (system, external_id) names one customer.
customer_external_ids = Table(
    "crm_customer_external_ids",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("external_id", String(200), primary_key=True),
    Column(
        "customer_id",
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
)

# Tombstones of merged customers: the duplicate's row is gone, its id resolves to the kept one.
customer_merges = Table(
    "crm_customer_merges",
    metadata,
    Column("merged_id", BigInteger, primary_key=True),
    Column(
        "kept_id",
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("merged_at", UTCDateTime, nullable=False),
    Column("actor", String(200)),
)

# --- accounts: contacts, hierarchy, links, team, relationship strength ------------------


def _customer_ref(name: str, *, index: bool = False, primary_key: bool = False) -> Column[int]:
    return Column(
        name,
        IdType,
        ForeignKey("crm_customers.id", ondelete="CASCADE"),
        nullable=False,
        index=index,
        primary_key=primary_key,
    )


# A person working at an organisation: role in the decision chain, title, dates.
contacts = Table(
    "crm_contacts",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    _customer_ref("person_id", index=True),
    _customer_ref("organisation_id", index=True),
    Column("job_title", String(200)),
    Column("department", String(200)),
    Column("role", String(40)),
    Column("is_primary", Boolean, nullable=False),
    Column("start_date", Date),
    Column("end_date", Date),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("person_id", "organisation_id", name="uq_crm_contacts_person_org"),
    # At most one primary contact per organisation.
    Index(
        "ix_crm_contacts_one_primary",
        "organisation_id",
        unique=True,
        sqlite_where=text("is_primary"),
        postgresql_where=text("is_primary"),
    ),
)


def contact_is_current(day: date) -> ColumnElement[bool]:
    """``crm_contacts`` rows whose person holds the role on ``day`` (a UTC calendar day).

    Current from ``start_date`` (inclusive; none: always) until ``end_date``
    (exclusive: the first day the role is no longer held; none: still held).
    """
    return and_(
        or_(contacts.c.start_date.is_(None), contacts.c.start_date <= day),
        or_(contacts.c.end_date.is_(None), contacts.c.end_date > day),
    )


# Organisation hierarchy: each organisation has at most one parent.
account_parents = Table(
    "crm_account_parents",
    metadata,
    _customer_ref("organisation_id", primary_key=True),
    _customer_ref("parent_id", index=True),
)

# Typed links between customers (referred_by, partner_of ...), from -> to.
customer_links = Table(
    "crm_customer_links",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    _customer_ref("from_id", index=True),
    _customer_ref("to_id", index=True),
    Column("type", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("from_id", "to_id", "type", name="uq_crm_customer_links_from_to_type"),
)

# The account team: who on our side works on an account, in which role.
account_team = Table(
    "crm_account_team",
    metadata,
    _customer_ref("customer_id", primary_key=True),
    Column("user", String(200), primary_key=True),
    Column("role", String(40), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
)

# Relationship strength over time: one score per dimension, per account and optionally
# per decision maker (contact_id), with where it came from.
relationship_scores = Table(
    "crm_relationship_scores",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    _customer_ref("account_id"),
    Column("contact_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
    Column("dimension", String(40), nullable=False),
    Column("score", Float, nullable=False),
    Column("measured_at", UTCDateTime, nullable=False),
    Column("source", String(40), nullable=False),
    Column("actor", String(200)),
    Index("ix_crm_relationship_scores_account_time", "account_id", "measured_at"),
)

# Identity-key collisions found when stored keys were re-normalised (crmcore_0010): the
# customer whose key was left NULL, and the (older) customer that kept it. No key value is
# kept here (it may be personal data); ``crm customers duplicates`` lists these pairs.
identity_collisions = Table(
    "crm_identity_collisions",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    _customer_ref("customer_id", index=True),
    _customer_ref("holder_id", index=True),
    Column("key_column", String(20), nullable=False),
    Column("source", String(40), nullable=False),
    Column("found_at", UTCDateTime, nullable=False),
)
