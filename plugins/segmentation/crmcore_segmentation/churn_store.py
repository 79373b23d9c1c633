"""Churn scoring's scratch tables: candidates, and a ranking done by the database."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

from crmcore import CRM, UnitOfWork
from crmcore_segmentation.churn_scoring import ChurnAssessment

#: Assessments written per batch.
BATCH = 500


def scratch_table(purpose: str, *columns: Column[Any]) -> Table:
    """A temporary table keyed by customer id, with a name no other call shares."""
    return Table(
        f"segmentation_churn_{purpose}_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
        *columns,
        prefixes=["TEMPORARY"],
    )


def ranked_in_database(
    found: Iterator[ChurnAssessment], crm: CRM, *, ctx: UnitOfWork | None = None
) -> Iterator[ChurnAssessment]:
    """``found`` highest score first, then by id: sorted by the database in a scratch table."""
    ranked = scratch_table(
        "ranked",
        Column("stage", String(20), nullable=False),
        Column("score", Float, nullable=False),
        Column("frequency_drop", Float, nullable=False),
        Column("inactivity", Float, nullable=False),
        Column("plugins", Float, nullable=False),
        Column("recency_days", Integer, nullable=False),
        Column("reasons", Text, nullable=False),
    )
    with crm.reading(ctx) as uow:
        conn = uow.connection
        ranked.create(conn)
        conn.commit()
        try:
            while batch := list(itertools.islice(found, BATCH)):
                rows = [{**a.as_dict(), "reasons": json.dumps(list(a.reasons))} for a in batch]
                conn.execute(insert(ranked), rows)
                conn.commit()
            query = (
                select(ranked)
                .order_by(ranked.c.score.desc(), ranked.c.customer_id)
                .execution_options(yield_per=BATCH)
            )
            for row in conn.execute(query):
                yield ChurnAssessment(
                    customer_id=int(row.customer_id),
                    stage=row.stage,
                    score=float(row.score),
                    frequency_drop=float(row.frequency_drop),
                    inactivity=float(row.inactivity),
                    plugins=float(row.plugins),
                    recency_days=int(row.recency_days),
                    reasons=tuple(json.loads(row.reasons)),
                )
        finally:
            conn.rollback()
            ranked.drop(conn)
            conn.commit()
