"""segmentation plugin: fitted probabilistic models (BG/NBD, Gamma-Gamma) and their scores.

Revision ID: segmentation_0002
Revises: segmentation_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

revision = "segmentation_0002"
down_revision = "segmentation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create segmentation_model_fits and segmentation_predictions."""
    op.create_table(
        "segmentation_model_fits",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(30), nullable=False),
        sa.Column("params", JSONDocument, nullable=False),
        sa.Column("standard_errors", JSONDocument, nullable=False),
        sa.Column("log_likelihood", sa.Float, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("converged", sa.Boolean, nullable=False),
        sa.Column("time_unit_days", sa.Integer, nullable=False),
        sa.Column("calibration_start", sa.Date),
        sa.Column("calibration_end", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3)),
        sa.Column("fitted_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segmentation_model_fits"),
    )
    op.create_index(
        "ix_segmentation_model_fits_model_at", "segmentation_model_fits", ["model", "fitted_at"]
    )
    op.create_table(
        "segmentation_predictions",
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("p_alive", sa.Float, nullable=False),
        sa.Column("expected_purchases", sa.Float, nullable=False),
        sa.Column("expected_spend", Money),
        sa.Column("clv", Money),
        sa.Column("horizon_days", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_segmentation_predictions"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_segmentation_predictions_customer_id_crm_customers",
        ),
    )


def downgrade() -> None:
    """Drop the two tables."""
    op.drop_table("segmentation_predictions")
    op.drop_index("ix_segmentation_model_fits_model_at", "segmentation_model_fits")
    op.drop_table("segmentation_model_fits")
