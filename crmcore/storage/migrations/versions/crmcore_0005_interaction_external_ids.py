"""crmcore: idempotency keys on interactions (source, external_id).

Revision ID: crmcore_0005
Revises: crmcore_0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0005"
down_revision = "crmcore_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_interactions") as batch:
        batch.add_column(sa.Column("source", sa.String(100)))
        batch.add_column(sa.Column("external_id", sa.String(200)))
        batch.create_unique_constraint(
            "uq_crm_interactions_external_id_source", ["external_id", "source"]
        )


def downgrade() -> None:
    with op.batch_alter_table("crm_interactions") as batch:
        batch.drop_constraint("uq_crm_interactions_external_id_source", type_="unique")
        batch.drop_column("external_id")
        batch.drop_column("source")
