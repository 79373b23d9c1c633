"""messaging plugin: messages, templates, clicks, unsubscribes, secrets.

Revision ID: messaging_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, UTCDateTime

revision = "messaging_0001"
down_revision = None
# The plugin's own branch, which starts after core's first revision.
branch_labels = ("messaging",)
depends_on = "crmcore_0001"

_MESSAGES = "messaging_messages"


def upgrade() -> None:
    """Create the plugin's tables and their indexes."""
    op.create_table(
        _MESSAGES,
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("customer_id", IdType),
        sa.Column("staff_user", sa.String(200)),
        sa.Column("recipient", sa.String(320)),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("template", sa.String(100)),
        sa.Column("template_version", sa.Integer),
        sa.Column("locale", sa.String(20)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("subject", sa.Text),
        sa.Column("body_text", sa.Text),
        sa.Column("body_html", sa.Text),
        sa.Column("ref_type", sa.String(60)),
        sa.Column("ref_id", sa.String(100)),
        sa.Column("dedupe_key", sa.String(200)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("detail", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", UTCDateTime, nullable=False),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("read_at", UTCDateTime),
        sa.Column("provider_id", sa.String(200)),
        sa.Column("interaction_id", IdType),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messaging_messages"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_messaging_messages_customer_id_crm_customers",
        ),
        sa.UniqueConstraint("token", name="uq_messaging_messages_token"),
        sa.UniqueConstraint("dedupe_key", name="uq_messaging_messages_dedupe_key"),
    )
    op.create_index("ix_messaging_messages_state_not_before", _MESSAGES, ["state", "not_before"])
    op.create_index("ix_messaging_messages_customer_sent", _MESSAGES, ["customer_id", "sent_at"])
    op.create_index("ix_messaging_messages_ref", _MESSAGES, ["ref_type", "ref_id"])
    op.create_table(
        "messaging_templates",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("locale", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(40)),
        sa.Column("subject", sa.Text),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_messaging_templates"),
        sa.UniqueConstraint(
            "name", "locale", "version", name="uq_messaging_templates_name_locale_version"
        ),
    )
    op.create_table(
        "messaging_clicks",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("message_id", IdType, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("clicked_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messaging_clicks"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            [f"{_MESSAGES}.id"],
            ondelete="CASCADE",
            name="fk_messaging_clicks_message_id_messaging_messages",
        ),
    )
    op.create_index("ix_messaging_clicks_message_id", "messaging_clicks", ["message_id"])
    op.create_table(
        "messaging_unsubscribes",
        sa.Column("id", IdType, autoincrement=True),
        sa.Column("message_id", IdType),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("consent_field", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messaging_unsubscribes"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            [f"{_MESSAGES}.id"],
            ondelete="SET NULL",
            name="fk_messaging_unsubscribes_message_id_messaging_messages",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_messaging_unsubscribes_customer_id_crm_customers",
        ),
    )
    op.create_index(
        "ix_messaging_unsubscribes_customer_id", "messaging_unsubscribes", ["customer_id"]
    )
    op.create_table(
        "messaging_secrets",
        sa.Column("name", sa.String(40)),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_messaging_secrets"),
    )


def downgrade() -> None:
    """Drop the plugin's tables."""
    op.drop_table("messaging_secrets")
    op.drop_table("messaging_unsubscribes")
    op.drop_table("messaging_clicks")
    op.drop_table("messaging_templates")
    op.drop_table(_MESSAGES)
