"""The surveys plugin's tables, defined once on core's shared MetaData.

* ``surveys_surveys``: one row per survey *version* (``key`` + ``version``), with its
  validated definition as JSON.
* ``surveys_questions``: the questions of each version, flattened, so that scoring can
  join answers to their scale, dimension, weight, metric and role in SQL.
* ``surveys_invitations``: who was invited to which version, with a unique token.
* ``surveys_responses``: one row per response (at most one per invitation).
* ``surveys_answers``: one row per answered question of a response.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
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

SURVEYS = "surveys_surveys"
QUESTIONS = "surveys_questions"
INVITATIONS = "surveys_invitations"
RESPONSES = "surveys_responses"
ANSWERS = "surveys_answers"


def surveys_table(metadata: MetaData) -> Table:
    """Return ``surveys_surveys`` (one row per survey version), defining it the first time."""
    if SURVEYS in metadata.tables:
        return metadata.tables[SURVEYS]
    return Table(
        SURVEYS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("key", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("title", String(300), nullable=False),
        Column("definition", JSONDocument, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("created_by", String(200)),
        UniqueConstraint("key", "version", name="uq_surveys_surveys_key_version"),
    )


def questions_table(metadata: MetaData) -> Table:
    """Return ``surveys_questions`` (the questions of each version), defining it the first time.

    ``scale_min``/``scale_max`` are set for rating questions only; ``metric`` is
    ``nps``, ``csat``, ``ces`` or NULL; ``role`` is ``overall``, ``expectation``,
    ``perception`` or NULL; ``pair`` numbers the expectation/perception pair.
    """
    if QUESTIONS in metadata.tables:
        return metadata.tables[QUESTIONS]
    return Table(
        QUESTIONS,
        metadata,
        Column(
            "survey_id",
            IdType,
            ForeignKey(f"{SURVEYS}.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("key", String(100), primary_key=True),
        Column("position", Integer, nullable=False),
        Column("type", String(20), nullable=False),
        Column("scale_min", Integer),
        Column("scale_max", Integer),
        Column("dimension", String(100)),
        Column("weight", Float, nullable=False),
        Column("metric", String(10)),
        Column("role", String(20)),
        Column("pair", Integer),
    )


def invitations_table(metadata: MetaData) -> Table:
    """Return ``surveys_invitations``, defining it the first time.

    ``status`` is ``sent`` or ``answered``; ``stratum`` is the stratum label of a
    stratified sample. Goes away with the customer (``ON DELETE CASCADE``).
    """
    if INVITATIONS in metadata.tables:
        return metadata.tables[INVITATIONS]
    return Table(
        INVITATIONS,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "survey_id", IdType, ForeignKey(f"{SURVEYS}.id", ondelete="CASCADE"), nullable=False
        ),
        Column(
            "customer_id",
            IdType,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("token", String(64), nullable=False, unique=True),
        Column("channel", String(30), nullable=False),
        Column("status", String(20), nullable=False),
        Column("stratum", String(200)),
        Column("sent_at", UTCDateTime, nullable=False),
        Column("answered_at", UTCDateTime),
        Index("ix_surveys_invitations_survey_sent", "survey_id", "sent_at"),
        Index("ix_surveys_invitations_customer_id", "customer_id"),
    )


def responses_table(metadata: MetaData) -> Table:
    """Return ``surveys_responses``, defining it the first time.

    ``customer_id`` is NULL once the customer was erased (the numeric answers stay,
    unlinked). ``alert_*`` hold the low-score alert fired for the response, if any.
    """
    if RESPONSES in metadata.tables:
        return metadata.tables[RESPONSES]
    return Table(
        RESPONSES,
        metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column(
            "survey_id", IdType, ForeignKey(f"{SURVEYS}.id", ondelete="CASCADE"), nullable=False
        ),
        Column("customer_id", IdType, ForeignKey("crm_customers.id", ondelete="CASCADE")),
        Column(
            "invitation_id",
            IdType,
            ForeignKey(f"{INVITATIONS}.id", ondelete="SET NULL"),
            unique=True,
        ),
        Column("interaction_id", IdType, ForeignKey("crm_interactions.id", ondelete="SET NULL")),
        Column("answered_at", UTCDateTime, nullable=False),
        Column("channel", String(30), nullable=False),
        Column("source", String(20), nullable=False),
        Column("comment", Text),
        Column("alert_metric", String(10)),
        Column("alert_score", Float),
        Column("alert_threshold", Float),
        Index("ix_surveys_responses_survey_answered", "survey_id", "answered_at"),
        Index("ix_surveys_responses_customer_answered", "customer_id", "answered_at"),
    )


def answers_table(metadata: MetaData) -> Table:
    """Return ``surveys_answers`` (one row per answered question), defining it the first time.

    ``rating`` for rating questions, ``choice`` for single choice, ``choices`` (a JSON
    list) for multiple choice, ``text`` for free text.
    """
    if ANSWERS in metadata.tables:
        return metadata.tables[ANSWERS]
    return Table(
        ANSWERS,
        metadata,
        Column(
            "response_id",
            IdType,
            ForeignKey(f"{RESPONSES}.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("question_key", String(100), primary_key=True),
        Column("rating", Integer),
        Column("choice", String(200)),
        Column("choices", JSONDocument),
        Column("text", Text),
    )


def register_tables(metadata: MetaData) -> None:
    """Define every table of the plugin on ``metadata`` (idempotent)."""
    surveys_table(metadata)
    questions_table(metadata)
    invitations_table(metadata)
    responses_table(metadata)
    answers_table(metadata)
