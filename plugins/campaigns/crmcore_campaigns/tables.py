"""The plugin's tables on core's shared MetaData, all prefixed ``campaigns_``.

* ``campaigns_campaigns``: one row per campaign: its definition (audience,
  variants, schedule, budget, cost per message, control share, seed, margin,
  attribution window, currency) and its state (``draft``, ``launched``,
  ``stopped``), with the moments it was launched, first sent, reminded and stopped.
* ``campaigns_recipients``: the audience frozen at launch, one row per member:
  ``grp`` (``treatment`` or ``control``), ``variant`` (NULL for the control group),
  ``stratum`` and ``position`` (the member's place in its stratum's shuffled order).
  Later changes of the segment or filter never change it.
* ``campaigns_sends``: one row per message the campaign asked messaging for
  (``step`` 1 the first message, 2 the reminder): the message id, the state
  messaging answered at enqueue (``queued``, ``deferred``, ``refused``,
  ``duplicate``) or ``skipped`` (a reminder the budget did not allow), and the reason.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

CAMPAIGNS = "campaigns_campaigns"
RECIPIENTS = "campaigns_recipients"
SENDS = "campaigns_sends"


def campaigns_table(metadata: MetaData) -> Table:
    """Return ``campaigns_campaigns`` (defined once on ``metadata``)."""
    if CAMPAIGNS in metadata.tables:
        return metadata.tables[CAMPAIGNS]
    return Table(
        CAMPAIGNS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("name", String(200), nullable=False),
        Column("status", String(12), nullable=False),
        Column("audience", JSONDocument, nullable=False),
        Column("variants", JSONDocument, nullable=False),
        Column("channel", String(40)),
        Column("control_share", Money, nullable=False),
        Column("stratify", Boolean, nullable=False),
        Column("seed", BigInteger),
        Column("budget", Money),
        Column("cost_per_message", Money, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("margin", Money, nullable=False),
        Column("attribution_days", Integer, nullable=False),
        Column("send_at", UTCDateTime),
        Column("reminder_days", Integer),
        Column("audience_size", Integer),
        Column("launched_at", UTCDateTime),
        Column("first_send_at", UTCDateTime),
        Column("reminder_status", String(20)),
        Column("reminded_at", UTCDateTime),
        Column("stopped_at", UTCDateTime),
        Column("created_at", UTCDateTime, nullable=False),
        Column("created_by", String(200)),
        Column("launched_by", String(200)),
    )


def recipients_table(metadata: MetaData) -> Table:
    """Return ``campaigns_recipients`` (defined once on ``metadata``)."""
    if RECIPIENTS in metadata.tables:
        return metadata.tables[RECIPIENTS]
    campaigns_table(metadata)
    return Table(
        RECIPIENTS,
        metadata,
        Column(
            "campaign_id",
            IdType,
            ForeignKey(f"{CAMPAIGNS}.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("grp", String(10), nullable=False),
        Column("variant", String(40)),
        Column("stratum", String(20), nullable=False),
        Column("position", Integer, nullable=False),
        Column("assigned_at", UTCDateTime, nullable=False),
        Index("ix_campaigns_recipients_customer_id", "customer_id"),
    )


def sends_table(metadata: MetaData) -> Table:
    """Return ``campaigns_sends`` (defined once on ``metadata``)."""
    if SENDS in metadata.tables:
        return metadata.tables[SENDS]
    campaigns_table(metadata)
    return Table(
        SENDS,
        metadata,
        Column(
            "campaign_id",
            IdType,
            ForeignKey(f"{CAMPAIGNS}.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("step", Integer, primary_key=True, autoincrement=False),
        Column("message_id", IdType),
        Column("state", String(12), nullable=False),
        Column("reason", String(40)),
        Column("at", UTCDateTime, nullable=False),
        Index("ix_campaigns_sends_customer_id", "customer_id"),
    )


def register(metadata: MetaData) -> None:
    """Define the three tables on ``metadata``."""
    recipients_table(metadata)
    sends_table(metadata)


__all__ = [
    "CAMPAIGNS",
    "RECIPIENTS",
    "SENDS",
    "campaigns_table",
    "recipients_table",
    "register",
    "sends_table",
]
