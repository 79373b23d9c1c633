"""The plugin's tables on core's shared MetaData, all prefixed ``complaints_``.

* ``complaints_cases``: one row per complaint, its workflow state and SLA clocks;
* ``complaints_history``: every change (opening, move, assignment, rating,
  breach) with who and when;
* ``complaints_compensations``: compensation granted at resolution;
* ``complaints_breaches``: SLA breaches marked by the sweep, one per complaint and target.

``customer_id`` is ``NULL`` on rows of customers who were erased (the rows
stay, stripped of every personal detail, so that aggregates keep adding up).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

CASES = "complaints_cases"
HISTORY = "complaints_history"
COMPENSATIONS = "complaints_compensations"
BREACHES = "complaints_breaches"


def cases_table(metadata: MetaData) -> Table:
    """Return ``complaints_cases`` on ``metadata``, defining it the first time.

    SLA columns (seconds are business seconds, see :mod:`crmcore_complaints.sla`):
    ``first_response_target_seconds``/``resolution_target_seconds`` are the
    targets of the severity when the complaint was opened;
    ``first_response_due_at``, ``first_response_at``, ``first_response_seconds``;
    ``resolution_accrued_seconds`` (counted up to ``resolution_running_since``,
    which is ``NULL`` while the clock is paused or stopped),
    ``resolution_due_at``, ``resolution_seconds`` (at the latest resolution).
    """
    if CASES in metadata.tables:
        return metadata.tables[CASES]
    return Table(
        CASES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("customer_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
        Column("interaction_id", IdType, ForeignKey("crm_interactions.id", ondelete="SET NULL")),
        Column("category", String(200), nullable=False),
        Column("severity", String(20), nullable=False),
        Column("channel", String(30), nullable=False),
        Column("reference", String(200)),
        Column("description", Text),
        Column("source", String(30), nullable=False),
        Column("source_ref", String(200)),
        Column("state", String(20), nullable=False),
        Column("assignee", String(200)),
        Column("opened_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("first_response_target_seconds", Integer, nullable=False),
        Column("resolution_target_seconds", Integer, nullable=False),
        Column("first_response_due_at", UTCDateTime, nullable=False),
        Column("first_response_at", UTCDateTime),
        Column("first_response_seconds", Integer),
        Column("resolution_accrued_seconds", Integer, nullable=False, server_default=text("0")),
        Column("resolution_running_since", UTCDateTime),
        Column("resolution_due_at", UTCDateTime),
        Column("resolution_seconds", Integer),
        Column("resolved_at", UTCDateTime),
        Column("resolved_by", String(200)),
        Column("closed_at", UTCDateTime),
        Column("resolution", Text),
        Column("root_cause", String(200)),
        Column("rating", Integer),
        Column("rated_at", UTCDateTime),
        Column("reopen_count", Integer, nullable=False, server_default=text("0")),
        Column("recurrence_of", IdType),
        Column("first_response_breached", Boolean, nullable=False, server_default=false()),
        Column("resolution_breached", Boolean, nullable=False, server_default=false()),
        UniqueConstraint("source", "source_ref", name="uq_complaints_cases_source_ref"),
        Index("ix_complaints_cases_customer_category", "customer_id", "category", "opened_at"),
        Index("ix_complaints_cases_opened_at", "opened_at"),
        Index("ix_complaints_cases_state", "state"),
        Index("ix_complaints_cases_assignee", "assignee"),
        Index("ix_complaints_cases_first_response_due_at", "first_response_due_at"),
        Index("ix_complaints_cases_resolution_due_at", "resolution_due_at"),
        Index("ix_complaints_cases_resolved_at", "resolved_at"),
    )


def history_table(metadata: MetaData) -> Table:
    """Return ``complaints_history``: one row per change, with ``actor`` and ``at``.

    ``action`` is ``open``, ``move``, ``assign``, ``rate`` or ``breach``;
    ``from_value``/``to_value`` hold the states (move), assignees (assign),
    ratings (rate) or the breached target (breach); ``details`` holds extras
    (resolution text and root cause of a resolving move, the due instant of a breach).
    """
    if HISTORY in metadata.tables:
        return metadata.tables[HISTORY]
    return Table(
        HISTORY,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "complaint_id",
            IdType,
            ForeignKey("complaints_cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("at", UTCDateTime, nullable=False),
        Column("actor", String(200)),
        Column("action", String(20), nullable=False),
        Column("from_value", String(200)),
        Column("to_value", String(200)),
        Column("note", Text),
        Column("details", JSONDocument, nullable=False),
        Index("ix_complaints_history_complaint_id", "complaint_id", "id"),
        Index("ix_complaints_history_action_at", "action", "at"),
    )


def compensations_table(metadata: MetaData) -> Table:
    """Return ``complaints_compensations``: what was granted, fired once through a hook."""
    if COMPENSATIONS in metadata.tables:
        return metadata.tables[COMPENSATIONS]
    return Table(
        COMPENSATIONS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "complaint_id",
            IdType,
            ForeignKey("complaints_cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("customer_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
        Column("kind", String(20), nullable=False),
        Column("points", Integer),
        Column("amount", Money),
        Column("currency", String(3)),
        Column("reason", Text),
        Column("idempotency_key", String(200), nullable=False),
        Column("refund_interaction_id", IdType),
        Column("issued_at", UTCDateTime, nullable=False),
        Column("actor", String(200)),
        UniqueConstraint("idempotency_key", name="uq_complaints_compensations_idempotency_key"),
        Index("ix_complaints_compensations_complaint_id", "complaint_id"),
    )


def breaches_table(metadata: MetaData) -> Table:
    """Return ``complaints_breaches``: one row per complaint and breached target."""
    if BREACHES in metadata.tables:
        return metadata.tables[BREACHES]
    return Table(
        BREACHES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "complaint_id",
            IdType,
            ForeignKey("complaints_cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("customer_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
        Column("severity", String(20), nullable=False),
        Column("target", String(20), nullable=False),
        Column("due_at", UTCDateTime, nullable=False),
        Column("detected_at", UTCDateTime, nullable=False),
        UniqueConstraint("complaint_id", "target", name="uq_complaints_breaches_complaint_target"),
        Index("ix_complaints_breaches_detected_at", "detected_at"),
    )


def register(metadata: MetaData) -> None:
    """Define every table of the plugin on ``metadata`` (once)."""
    cases_table(metadata)
    history_table(metadata)
    compensations_table(metadata)
    breaches_table(metadata)
