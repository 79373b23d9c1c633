"""The plugin's tables, on core's shared MetaData (every name prefixed ``segmentation_``).

* ``segmentation_segments``: saved rule-based segment definitions.
* ``segmentation_members``: current members of each segment.
* ``segmentation_history``: every join and leave, with its time.
* ``segmentation_churn_alerts``: customers whose churn score crossed the threshold,
  with the score, the reasons and whether they were moved to ``at_risk``.
* ``segmentation_customer_costs``: per-customer acquisition and service costs
  (override the configured defaults in profitability).
* ``segmentation_model_fits``: every fit of the probabilistic models (BG/NBD,
  Gamma-Gamma): parameters, standard errors, fit date and data window.
* ``segmentation_predictions``: per customer, the scores of the latest fit (P(alive),
  expected purchases and spend, discounted CLV), as of that fit.

Rows referencing a customer go away with the customer (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

SEGMENTS = "segmentation_segments"
MEMBERS = "segmentation_members"
HISTORY = "segmentation_history"
CHURN_ALERTS = "segmentation_churn_alerts"
CUSTOMER_COSTS = "segmentation_customer_costs"
MODEL_FITS = "segmentation_model_fits"
PREDICTIONS = "segmentation_predictions"


def _customer_fk() -> ForeignKey:
    return ForeignKey("crm_customers.id", ondelete="CASCADE")


def _segment_fk() -> ForeignKey:
    return ForeignKey(f"{SEGMENTS}.id", ondelete="CASCADE")


def define_tables(metadata: MetaData) -> None:
    """Define every table of the plugin on ``metadata`` (once per process)."""
    if SEGMENTS in metadata.tables:
        return
    Table(
        SEGMENTS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("key", String(100), nullable=False, unique=True),
        Column("name", String(200), nullable=False),
        Column("description", Text),
        Column("rule", JSONDocument, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("refreshed_at", UTCDateTime),
        Column("member_count", Integer, nullable=False),
    )
    Table(
        MEMBERS,
        metadata,
        Column("segment_id", IdType, _segment_fk(), primary_key=True, autoincrement=False),
        Column("customer_id", IdType, _customer_fk(), primary_key=True, autoincrement=False),
        Column("joined_at", UTCDateTime, nullable=False),
        Index("ix_segmentation_members_customer_id", "customer_id"),
    )
    Table(
        HISTORY,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("segment_id", IdType, _segment_fk(), nullable=False),
        Column("customer_id", IdType, _customer_fk(), nullable=False),
        Column("joined", Boolean, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Index("ix_segmentation_history_customer_id", "customer_id"),
        Index("ix_segmentation_history_segment_at", "segment_id", "at"),
    )
    Table(
        CHURN_ALERTS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("customer_id", IdType, _customer_fk(), nullable=False),
        Column("score", Float, nullable=False),
        Column("reasons", JSONDocument, nullable=False),
        Column("moved", Boolean, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Index("ix_segmentation_churn_alerts_customer_id", "customer_id"),
        Index("ix_segmentation_churn_alerts_at", "at"),
    )
    Table(
        CUSTOMER_COSTS,
        metadata,
        Column("customer_id", IdType, _customer_fk(), primary_key=True, autoincrement=False),
        Column("acquisition", Money),
        Column("service", Money),
        Column("updated_at", UTCDateTime, nullable=False),
    )

    Table(
        MODEL_FITS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("model", String(30), nullable=False),
        Column("params", JSONDocument, nullable=False),
        Column("standard_errors", JSONDocument, nullable=False),
        Column("log_likelihood", Float, nullable=False),
        Column("customers", Integer, nullable=False),
        Column("converged", Boolean, nullable=False),
        Column("time_unit_days", Integer, nullable=False),
        Column("calibration_start", Date),
        Column("calibration_end", Date, nullable=False),
        Column("currency", String(3)),
        Column("fitted_at", UTCDateTime, nullable=False),
        Index("ix_segmentation_model_fits_model_at", "model", "fitted_at"),
    )
    Table(
        PREDICTIONS,
        metadata,
        Column("customer_id", IdType, _customer_fk(), primary_key=True, autoincrement=False),
        Column("p_alive", Float, nullable=False),
        Column("expected_purchases", Float, nullable=False),
        Column("expected_spend", Money),
        Column("clv", Money),
        Column("horizon_days", Integer, nullable=False),
        Column("at", UTCDateTime, nullable=False),
    )


def table(metadata: MetaData, name: str) -> Table:
    """One of the plugin's tables by name, defining them first if needed."""
    define_tables(metadata)
    return metadata.tables[name]
