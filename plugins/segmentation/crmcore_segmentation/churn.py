"""Churn early warning: a weighted risk score from purchase behaviour and every plugin's signals.

For each customer with a counted purchase before ``as_of`` (settings in ``[churn]``):

* **frequency drop**: ``recent`` = counted purchases in ``[as_of - recent_days, as_of)``,
  ``baseline`` = those in the ``baseline_days`` before that. With ``baseline >=
  min_baseline_purchases``, ``drop = 1 - (recent / recent_days) / (baseline /
  baseline_days)``; the signal's strength is ``drop`` when ``drop >= drop_threshold``, else 0.
* **purchase interval** (in place of the frequency drop when the history is long enough:
  :data:`~crmcore_segmentation.intervals.MIN_INTERVALS` intervals between purchase days
  or more): ``ratio = recency_days / median interval``; strength ``min(1, ratio / (2 *
  OVERDUE_FACTOR))`` when ``ratio >= OVERDUE_FACTOR`` (2), else 0 (see :mod:`.intervals`).
  It takes the frequency drop's weight and field.
* **inactivity**: ``recency_days`` (UTC calendar days since the last counted purchase);
  strength ``min(1, recency_days / (2 * inactivity_days))`` when ``recency_days >=
  inactivity_days``, else 0.
* **plugins**: ``crm.churn_signals(ids)`` (complaints, low survey scores ...); strength
  ``min(1, sum of the customer's signal weights)``.

``score = w_frequency_drop * drop + w_inactivity * inactivity + w_plugins * plugins``.
Customers with ``score >= threshold`` are flagged; :func:`apply_churn_warnings` moves the
flagged customers in stage new, active or loyal to ``at_risk`` through core's lifecycle
service, the reasons in the move's reason, and records an alert row for each move.

The two behavioural strengths are computed set-based in SQL for every customer; only
customers who could reach the threshold (SQL score + ``w_plugins >= threshold``) are
read, asked about plugin signals and scored exactly in Python.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import (
    Column,
    Float,
    Integer,
    Select,
    String,
    case,
    cast,
    func,
    insert,
    literal,
    select,
)

from crmcore import CRM, Stage, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import UTCDateTime
from crmcore_segmentation.calendar_sql import day_number
from crmcore_segmentation.churn_scoring import ChurnAssessment as ChurnAssessment
from crmcore_segmentation.churn_scoring import assess_rows
from crmcore_segmentation.churn_store import ranked_in_database, scratch_table
from crmcore_segmentation.intervals import (
    MIN_INTERVALS,
    interval_query,
    interval_strength,
)
from crmcore_segmentation.per_customer import merge_per_customer
from crmcore_segmentation.purchases import counted_purchases
from crmcore_segmentation.rfm import days_before, resolve_as_of
from crmcore_segmentation.settings import settings_of
from crmcore_segmentation.tables import CHURN_ALERTS, table

#: Stages from which the lifecycle graph allows a move to at_risk.
MOVABLE = frozenset({Stage.NEW, Stage.ACTIVE, Stage.LOYAL})
#: Candidates scored (and plugin signals asked for) per batch.
BATCH = 500
_SLACK = 1e-9


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def churn_query(crm: CRM, *, as_of: datetime | None = None) -> Select[Any]:
    """Per customer with a counted purchase: behaviour counts and the SQL part of the score.

    Columns: ``customer_id``, ``stage``, ``recent``, ``baseline``, ``recency_days``,
    ``drop_strength``, ``inactivity_strength``, ``partial_score`` (floats in SQL, used
    to pick candidates; the exact score is recomputed in Python).
    """
    settings = settings_of(crm)
    churn = settings.churn
    moment = resolve_as_of(crm, as_of)
    recent_start = days_before(moment, churn.recent_days, "recent_days")
    purchases = counted_purchases(crm, moment, currency=settings.currency).subquery("p")
    is_recent = purchases.c.occurred_at >= literal(recent_start, UTCDateTime)
    in_baseline = purchases.c.occurred_at >= literal(
        days_before(recent_start, churn.baseline_days, "baseline_days"), UTCDateTime
    )
    behaviour = select(
        purchases.c.customer_id,
        func.sum(case((is_recent, 1), else_=0)).label("recent"),
        func.sum(case((in_baseline & ~is_recent, 1), else_=0)).label("baseline"),
        (literal(day_number(moment), Integer) - func.max(purchases.c.day)).label("recency"),
    ).group_by(purchases.c.customer_id)
    spacing = interval_query(crm, as_of=moment).subquery("spacing")
    stats = merge_per_customer(
        behaviour,
        [select(spacing.c.customer_id, spacing.c.intervals, spacing.c.median_interval_days)],
        "behaviour",
    )
    recent = cast(stats.c.recent, Float) / churn.recent_days
    baseline = cast(stats.c.baseline, Float) / churn.baseline_days
    drop = literal(1.0, Float) - recent / case((baseline > 0, baseline), else_=literal(1.0))
    drop_strength = case(
        (
            stats.c.intervals >= MIN_INTERVALS,
            interval_strength(stats.c.recency, stats.c.median_interval_days),
        ),
        (
            (stats.c.baseline >= churn.min_baseline_purchases) & (drop >= churn.drop_threshold),
            drop,
        ),
        else_=literal(0.0, Float),
    )
    inactivity_strength = case(
        (
            stats.c.recency >= churn.inactivity_days,
            case(
                (stats.c.recency >= 2 * churn.inactivity_days, literal(1.0, Float)),
                else_=cast(stats.c.recency, Float) / (2 * churn.inactivity_days),
            ),
        ),
        else_=literal(0.0, Float),
    )
    scored = select(
        stats.c.customer_id,
        stats.c.recent,
        stats.c.baseline,
        stats.c.recency.label("recency_days"),
        stats.c.intervals,
        stats.c.median_interval_days,
        drop_strength.label("drop_strength"),
        inactivity_strength.label("inactivity_strength"),
    ).subquery("scored")
    customers = crm.metadata.tables["crm_customers"]
    partial = (
        literal(churn.weight_frequency_drop, Float) * scored.c.drop_strength
        + literal(churn.weight_inactivity, Float) * scored.c.inactivity_strength
    )
    return select(
        scored.c.customer_id,
        customers.c.stage,
        scored.c.recent,
        scored.c.baseline,
        scored.c.recency_days,
        scored.c.intervals,
        scored.c.median_interval_days,
        scored.c.drop_strength,
        scored.c.inactivity_strength,
        partial.label("partial_score"),
    ).join(customers, customers.c.id == scored.c.customer_id)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_churn(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    stages: Sequence[str] | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[ChurnAssessment]:
    """Customers whose churn score reaches the threshold, by customer id, streamed.

    The candidates are written by one ``INSERT ... SELECT`` to a temporary
    table, then read back in keyset pages of :data:`BATCH`; each page's
    plugin signals are asked for and its scores computed before the next is
    read, so memory holds one page whatever the number of customers. No
    transaction stays open between pages (on SQLite every transaction holds
    the write lock, and the plugins read their signals on connections of
    their own). ``stages`` limits the customers assessed (default: every stage).
    """
    churn = settings_of(crm).churn
    scored = churn_query(crm, as_of=as_of).subquery("churn")
    columns = [
        "customer_id",
        "stage",
        "recent",
        "baseline",
        "recency_days",
        "intervals",
        "median_interval_days",
    ]
    query = select(*(scored.c[name] for name in columns)).where(
        scored.c.partial_score + literal(churn.weight_plugins + _SLACK, Float) >= churn.threshold,
        crm.access.where(scored.c.customer_id, ctx=ctx),
    )
    if stages is not None:
        query = query.where(scored.c.stage.in_(list(stages)))
    candidates = scratch_table(
        "candidates",
        Column("stage", String(20), nullable=False),
        Column("recent", Integer, nullable=False),
        Column("baseline", Integer, nullable=False),
        Column("recency_days", Integer, nullable=False),
        Column("intervals", Integer),
        Column("median_interval_days", Float),
    )
    with crm.reading(ctx) as uow:
        conn = uow.connection
        candidates.create(conn)
        try:
            conn.execute(insert(candidates).from_select(columns, query))
            conn.commit()
            last = 0
            while True:
                rows = conn.execute(
                    select(candidates)
                    .where(candidates.c.customer_id > last)
                    .order_by(candidates.c.customer_id)
                    .limit(BATCH)
                ).all()
                conn.commit()
                if not rows:
                    return
                yield from assess_rows(rows, crm, churn)
                last = int(rows[-1].customer_id)
        finally:
            conn.rollback()
            candidates.drop(conn)
            conn.commit()


def _rank(assessment: ChurnAssessment) -> tuple[float, int]:
    return (-assessment.score, assessment.customer_id)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def ranked_churn(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    stages: Sequence[str] | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[ChurnAssessment]:
    """:func:`iter_churn` highest score first, then by id; at most ``limit`` of them.

    With a ``limit`` only that many assessments are held (a bounded heap);
    without one the assessments are ranked by the database in a temporary
    table and streamed back, so memory stays flat either way.
    """
    found = iter_churn(crm, as_of=as_of, stages=stages)
    if limit is not None:
        yield from heapq.nsmallest(limit, found, key=_rank)
        return
    yield from ranked_in_database(found, crm, ctx=ctx)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def assess_churn(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    stages: Sequence[str] | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[ChurnAssessment]:
    """Customers whose churn score reaches the threshold, highest score first, then by id.

    ``stages`` limits the customers assessed (default: every stage); ``limit``
    keeps the first ``limit`` (only they are held in memory). To stream every
    one use :func:`ranked_churn` or, in id order, :func:`iter_churn`.
    """
    found = iter_churn(crm, as_of=as_of, stages=stages, ctx=ctx)
    if limit is not None:
        return heapq.nsmallest(limit, found, key=_rank)
    return sorted(found, key=_rank)


@frozen
class ChurnMoves:
    """What :func:`apply_churn` did: how many customers moved and the top ones."""

    moved: int
    top: tuple[ChurnAssessment, ...]


@requires(Action.WRITE, scoped=True)  # moves only assessed (visible) customers; core guards
def apply_churn(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    keep: int | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> ChurnMoves:
    """Move flagged customers in new/active/loyal to ``at_risk``, with the reasons.

    One unit of work: core's lifecycle moves (``crm.lifecycle.move_many``,
    reason ``churn score 0.72: ...``) and one alert row per move in
    ``segmentation_churn_alerts``, written :data:`BATCH` customers at a time;
    each batch is then handed to ``segmentation_churn_alerts_raised``.
    Returns the number moved and the ``keep`` highest-scored of them (every
    one when ``keep`` is None), highest score first. The flagged customers
    are assessed before the unit of work opens (plugins read their signals
    on connections of their own, which SQLite's write lock would block) and
    are held in memory meanwhile.
    """
    movable = [s.value for s in MOVABLE]
    alerts = table(crm.metadata, CHURN_ALERTS)
    flagged = assess_churn(crm, as_of=as_of, stages=movable)
    with crm.unit_of_work(actor, ctx) as uow:
        for start in range(0, len(flagged), BATCH):
            batch = flagged[start : start + BATCH]
            moves: list[tuple[int, Stage | str, str | None]] = [
                (
                    a.customer_id,
                    Stage.AT_RISK,
                    f"churn score {a.score:.2f}: " + "; ".join(a.reasons),
                )
                for a in batch
            ]
            crm.lifecycle.move_many(moves, actor=actor, ctx=uow)
            rows = [
                {
                    "customer_id": a.customer_id,
                    "score": a.score,
                    "reasons": list(a.reasons),
                    "moved": True,
                    "at": uow.now,
                }
                for a in batch
            ]
            uow.connection.execute(insert(alerts), rows)
            raised = [{k: r[k] for k in ("customer_id", "score", "reasons", "at")} for r in rows]
            crm.call_hook("segmentation_churn_alerts_raised", ctx=uow, alerts=raised)
    top = flagged if keep is None else flagged[:keep]
    return ChurnMoves(moved=len(flagged), top=tuple(top))


@requires(Action.WRITE, scoped=True)  # through apply_churn
def apply_churn_warnings(
    crm: CRM,
    *,
    as_of: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> list[ChurnAssessment]:
    """Move flagged customers in new/active/loyal to ``at_risk``; returns every one moved.

    See :func:`apply_churn` (which returns only a count and the top ones).
    """
    return list(apply_churn(crm, as_of=as_of, actor=actor, ctx=ctx).top)


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def recent_alerts(
    crm: CRM, *, limit: int = 20, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """The latest churn alerts, newest first: customer, name, score, reasons, at."""
    alerts = table(crm.metadata, CHURN_ALERTS)
    customers = crm.metadata.tables["crm_customers"]
    query = (
        select(alerts, customers.c.name)
        .join(customers, customers.c.id == alerts.c.customer_id)
        .where(crm.access.where(alerts.c.customer_id, ctx=ctx))
        .order_by(alerts.c.at.desc(), alerts.c.score.desc(), alerts.c.customer_id)
        .limit(limit)
    )
    with crm.reading(ctx) as uow:
        return [
            {
                "customer_id": int(r.customer_id),
                "name": r.name,
                "score": float(r.score),
                "reasons": list(r.reasons),
                "at": r.at,
            }
            for r in uow.connection.execute(query)
        ]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
