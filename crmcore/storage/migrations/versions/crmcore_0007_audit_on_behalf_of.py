"""crmcore: the audit log records on whose behalf a principal acted.

``actor`` is from now on always the authenticated principal (or the label the
trusted system view gives); what an application claims (``actor=`` on a
user's view, ``crm --user alice --actor bob``) goes to ``on_behalf_of``.
Existing rows keep their ``actor`` and get ``on_behalf_of`` NULL: which of
their actors were claimed rather than authenticated cannot be known.

Revision ID: crmcore_0007
Revises: crmcore_0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "crmcore_0007"
down_revision = "crmcore_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("crm_audit_log") as batch:
        batch.add_column(sa.Column("on_behalf_of", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_audit_log") as batch:
        batch.drop_column("on_behalf_of")
