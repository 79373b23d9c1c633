"""surveys plugin: surveys, questions, invitations, responses and answers.

Revision ID: surveys_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from crmcore.storage.types import IdType, JSONDocument, UTCDateTime

revision = "surveys_0001"
down_revision = None
branch_labels = ("surveys",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    """Create the plugin's five tables."""
    op.create_table(
        "surveys_surveys",
        sa.Column("id", IdType, nullable=False, autoincrement=True),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("definition", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_surveys_surveys"),
        sa.UniqueConstraint("key", "version", name="uq_surveys_surveys_key_version"),
    )
    op.create_table(
        "surveys_questions",
        sa.Column("survey_id", IdType, nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("scale_min", sa.Integer),
        sa.Column("scale_max", sa.Integer),
        sa.Column("dimension", sa.String(100)),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("metric", sa.String(10)),
        sa.Column("role", sa.String(20)),
        sa.Column("pair", sa.Integer),
        sa.PrimaryKeyConstraint("survey_id", "key", name="pk_surveys_questions"),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys_surveys.id"],
            ondelete="CASCADE",
            name="fk_surveys_questions_survey_id_surveys_surveys",
        ),
    )
    op.create_table(
        "surveys_invitations",
        sa.Column("id", IdType, nullable=False, autoincrement=True),
        sa.Column("survey_id", IdType, nullable=False),
        sa.Column("customer_id", IdType, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stratum", sa.String(200)),
        sa.Column("sent_at", UTCDateTime, nullable=False),
        sa.Column("answered_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_surveys_invitations"),
        sa.UniqueConstraint("token", name="uq_surveys_invitations_token"),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys_surveys.id"],
            ondelete="CASCADE",
            name="fk_surveys_invitations_survey_id_surveys_surveys",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_surveys_invitations_customer_id_crm_customers",
        ),
    )
    op.create_index(
        "ix_surveys_invitations_survey_sent", "surveys_invitations", ["survey_id", "sent_at"]
    )
    op.create_index("ix_surveys_invitations_customer_id", "surveys_invitations", ["customer_id"])
    op.create_table(
        "surveys_responses",
        sa.Column("id", IdType, nullable=False, autoincrement=True),
        sa.Column("survey_id", IdType, nullable=False),
        sa.Column("customer_id", IdType),
        sa.Column("invitation_id", IdType),
        sa.Column("interaction_id", IdType),
        sa.Column("answered_at", UTCDateTime, nullable=False),
        sa.Column("channel", sa.String(30), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("alert_metric", sa.String(10)),
        sa.Column("alert_score", sa.Float),
        sa.Column("alert_threshold", sa.Float),
        sa.PrimaryKeyConstraint("id", name="pk_surveys_responses"),
        sa.UniqueConstraint("invitation_id", name="uq_surveys_responses_invitation_id"),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys_surveys.id"],
            ondelete="CASCADE",
            name="fk_surveys_responses_survey_id_surveys_surveys",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["crm_customers.id"],
            ondelete="CASCADE",
            name="fk_surveys_responses_customer_id_crm_customers",
        ),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["surveys_invitations.id"],
            ondelete="SET NULL",
            name="fk_surveys_responses_invitation_id_surveys_invitations",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["crm_interactions.id"],
            ondelete="SET NULL",
            name="fk_surveys_responses_interaction_id_crm_interactions",
        ),
    )
    op.create_index(
        "ix_surveys_responses_survey_answered", "surveys_responses", ["survey_id", "answered_at"]
    )
    op.create_index(
        "ix_surveys_responses_customer_answered",
        "surveys_responses",
        ["customer_id", "answered_at"],
    )
    op.create_table(
        "surveys_answers",
        sa.Column("response_id", IdType, nullable=False),
        sa.Column("question_key", sa.String(100), nullable=False),
        sa.Column("rating", sa.Integer),
        sa.Column("choice", sa.String(200)),
        sa.Column("choices", JSONDocument),
        sa.Column("text", sa.Text),
        sa.PrimaryKeyConstraint("response_id", "question_key", name="pk_surveys_answers"),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["surveys_responses.id"],
            ondelete="CASCADE",
            name="fk_surveys_answers_response_id_surveys_responses",
        ),
    )


def downgrade() -> None:
    """Drop the plugin's tables."""
    for table in (
        "surveys_answers",
        "surveys_responses",
        "surveys_invitations",
        "surveys_questions",
        "surveys_surveys",
    ):
        op.drop_table(table)
