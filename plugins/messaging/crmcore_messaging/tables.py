"""The plugin's tables on core's shared MetaData, all prefixed ``messaging_``.

* ``messaging_messages``: one row per message, from enqueue to its final state.
  ``token`` (random, unique) names the message in links, the unsubscribe URL and
  the Message-ID; ``timezone`` is the customer's zone resolved at enqueue (quiet
  hours are checked in it again at claim time); ``dedupe_key`` (unique) makes a
  re-run enqueue nothing twice; ``state`` is one of :data:`STATES`; ``not_before``
  is when it may be sent. The partial index ``ix_messaging_messages_pending``
  holds only the waiting messages (queued, deferred), by ``(not_before, id)``.
* ``messaging_templates``: message templates, one row per (name, locale, version).
* ``messaging_clicks``: one row per resolved tracked link.
* ``messaging_unsubscribes``: one row per one-click unsubscribe applied.
* ``messaging_secrets``: the signing secret generated on first use.

These functions and columns are public: other plugins (campaigns) join them.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from crmcore.storage.types import IdType, UTCDateTime

MESSAGES = "messaging_messages"
TEMPLATES = "messaging_templates"
CLICKS = "messaging_clicks"
UNSUBSCRIBES = "messaging_unsubscribes"
SECRETS = "messaging_secrets"

#: The condition of the partial index of waiting messages, as claims write it (a literal,
#: so that both databases see that a claim's query implies it).
PENDING = text("state IN ('queued', 'deferred')")
#: Every state a message can be in (see docs/plugins/messaging.md, "States").
STATES = ("queued", "deferred", "sending", "sent", "failed", "bounced", "refused")


def messages_table(metadata: MetaData) -> Table:
    """Return ``messaging_messages`` (defined once on ``metadata``)."""
    if MESSAGES in metadata.tables:
        return metadata.tables[MESSAGES]
    table = Table(
        MESSAGES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("token", String(64), nullable=False, unique=True),
        Column("customer_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
        Column("staff_user", String(200)),
        Column("recipient", String(320)),
        Column("channel", String(40), nullable=False),
        Column("purpose", String(20), nullable=False),
        Column("template", String(100)),
        Column("template_version", Integer),
        Column("locale", String(20)),
        Column("timezone", String(64)),
        Column("subject", Text),
        Column("body_text", Text),
        Column("body_html", Text),
        Column("ref_type", String(60)),
        Column("ref_id", String(100)),
        Column("dedupe_key", String(200), unique=True),
        Column("state", String(12), nullable=False),
        Column("reason", String(40)),
        Column("detail", Text),
        Column("attempts", Integer, nullable=False, default=0),
        Column("not_before", UTCDateTime, nullable=False),
        Column("claimed_by", String(100)),
        Column("claimed_at", UTCDateTime),
        Column("sent_at", UTCDateTime),
        Column("read_at", UTCDateTime),
        Column("provider_id", String(200)),
        Column("interaction_id", IdType),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Index("ix_messaging_messages_state_not_before", "state", "not_before"),
        Index("ix_messaging_messages_customer_sent", "customer_id", "sent_at"),
        Index("ix_messaging_messages_ref", "ref_type", "ref_id"),
    )
    # Only the messages waiting, in the order claims take them: a claim reads its batch and
    # no more, however many sent messages the table holds (messaging_0002).
    Index(
        "ix_messaging_messages_pending",
        table.c.not_before,
        table.c.id,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    return table


def templates_table(metadata: MetaData) -> Table:
    """Return ``messaging_templates`` (defined once on ``metadata``)."""
    if TEMPLATES in metadata.tables:
        return metadata.tables[TEMPLATES]
    return Table(
        TEMPLATES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
        Column("locale", String(20), nullable=False),
        Column("version", Integer, nullable=False),
        Column("purpose", String(20), nullable=False),
        Column("channel", String(40)),
        Column("subject", Text),
        Column("body_text", Text, nullable=False),
        Column("body_html", Text),
        Column("created_at", UTCDateTime, nullable=False),
        Column("created_by", String(200)),
        UniqueConstraint(
            "name", "locale", "version", name="uq_messaging_templates_name_locale_version"
        ),
    )


def clicks_table(metadata: MetaData) -> Table:
    """Return ``messaging_clicks`` (defined once on ``metadata``)."""
    if CLICKS in metadata.tables:
        return metadata.tables[CLICKS]
    messages_table(metadata)
    return Table(
        CLICKS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "message_id",
            IdType,
            ForeignKey(f"{MESSAGES}.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("url", Text, nullable=False),
        Column("clicked_at", UTCDateTime, nullable=False),
        Index("ix_messaging_clicks_message_id", "message_id"),
    )


def unsubscribes_table(metadata: MetaData) -> Table:
    """Return ``messaging_unsubscribes`` (defined once on ``metadata``)."""
    if UNSUBSCRIBES in metadata.tables:
        return metadata.tables[UNSUBSCRIBES]
    messages_table(metadata)
    return Table(
        UNSUBSCRIBES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("message_id", IdType, ForeignKey(f"{MESSAGES}.id", ondelete="SET NULL")),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("channel", String(40), nullable=False),
        Column("consent_field", String(40), nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Index("ix_messaging_unsubscribes_customer_id", "customer_id"),
    )


def secrets_table(metadata: MetaData) -> Table:
    """Return ``messaging_secrets`` (defined once on ``metadata``)."""
    if SECRETS in metadata.tables:
        return metadata.tables[SECRETS]
    return Table(
        SECRETS,
        metadata,
        Column("name", String(40), primary_key=True),
        Column("value", String(200), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )


def register(metadata: MetaData) -> None:
    """Define every ``messaging_*`` table on ``metadata``."""
    messages_table(metadata)
    templates_table(metadata)
    clicks_table(metadata)
    unsubscribes_table(metadata)
    secrets_table(metadata)


__all__ = [
    "CLICKS",
    "MESSAGES",
    "PENDING",
    "SECRETS",
    "STATES",
    "TEMPLATES",
    "UNSUBSCRIBES",
    "clicks_table",
    "messages_table",
    "register",
    "secrets_table",
    "templates_table",
    "unsubscribes_table",
]
