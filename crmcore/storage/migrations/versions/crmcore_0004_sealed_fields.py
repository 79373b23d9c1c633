"""crmcore: sealed (encrypted) customer fields.

Revision ID: crmcore_0004
Revises: crmcore_0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0004"
down_revision = "crmcore_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_customers") as batch:
        batch.add_column(sa.Column("sealed", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("crm_customers") as batch:
        batch.drop_column("sealed")
