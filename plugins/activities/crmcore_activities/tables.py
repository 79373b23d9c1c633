"""The plugin's tables on core's shared MetaData, both prefixed ``activities_``.

* ``activities_activities``: one row per activity (task). ``due_at`` is stored in
  UTC with the assignee's time zone name beside it (``timezone``); overdue is not
  stored (planned and ``due_at`` before now). A task planned by a rule carries
  ``rule_id`` and ``occurrence`` (the local day it is for); the unique key
  ``(rule_id, occurrence, customer_id)`` makes planning idempotent (and, in
  that order, finds a rule's tasks of a day by its prefix). A follow-up of
  another plugin's event carries ``followup_key`` (unique), for the same reason.
* ``activities_rules``: cadence and care rules. ``planned_through`` is the last day
  a (non dry-run) ``plan`` covered for the rule.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
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

from crmcore.storage.types import IdType, JSONDocument, UTCDateTime

ACTIVITIES = "activities_activities"
RULES = "activities_rules"


def rules_table(metadata: MetaData) -> Table:
    """Return ``activities_rules`` (defined once on ``metadata``)."""
    if RULES in metadata.tables:
        return metadata.tables[RULES]
    return Table(
        RULES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False, unique=True),
        Column("type", String(20), nullable=False),
        Column("kind", String(40), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("priority", Integer, nullable=False),
        Column("params", JSONDocument, nullable=False),
        Column("targets", JSONDocument, nullable=False),
        Column("assign", String(250), nullable=False),
        Column("start_date", Date, nullable=False),
        Column("planned_through", Date),
        Column("active", Boolean, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )


def activities_table(metadata: MetaData) -> Table:
    """Return ``activities_activities`` (defined once on ``metadata``)."""
    if ACTIVITIES in metadata.tables:
        return metadata.tables[ACTIVITIES]
    rules_table(metadata)
    return Table(
        ACTIVITIES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("contact_id", IdType, ForeignKey("crm_customers.id", ondelete="SET NULL")),
        Column("kind", String(40), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("notes", Text),
        Column("assignee", String(200)),
        Column("due_at", UTCDateTime, nullable=False),
        Column("timezone", String(64), nullable=False),
        Column("duration_minutes", Integer),
        Column("priority", Integer, nullable=False),
        Column("status", String(10), nullable=False),
        Column("outcome", Text),
        Column("ref_type", String(60)),
        Column("ref_id", String(100)),
        Column("source", String(20), nullable=False),
        Column("rule_id", IdType, ForeignKey(f"{RULES}.id", ondelete="SET NULL")),
        Column("occurrence", Date),
        Column("followup_key", String(200), unique=True),
        Column("remind_at", UTCDateTime),
        Column("reminded_at", UTCDateTime),
        Column("interaction_id", IdType),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("completed_at", UTCDateTime),
        UniqueConstraint(
            "rule_id",
            "occurrence",
            "customer_id",
            name="uq_activities_activities_rule_occurrence_customer",
        ),
        Index("ix_activities_activities_assignee_status_due", "assignee", "status", "due_at"),
        Index("ix_activities_activities_customer_id", "customer_id"),
        Index("ix_activities_activities_status_remind", "status", "remind_at"),
    )


def register(metadata: MetaData) -> None:
    """Define both tables on ``metadata``."""
    activities_table(metadata)


__all__ = ["ACTIVITIES", "RULES", "activities_table", "register", "rules_table"]
