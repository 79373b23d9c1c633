"""Complaint analytics, computed in SQL on both backends: rates, times, SLA, hot issues, workload.

Definitions, for a half-open period ``[start, end)``:

* ``complaints_opened``: complaints whose ``opened_at`` is in the period.
* ``complaints_per_100_active_customers``: opened x 100 / active customers,
  where an active customer has at least one interaction in the period (core's
  definition of ``active_customers``); ``complaints_per_100_purchases``:
  opened x 100 / purchase interactions in the period.
* first-response times: ``first_response_seconds`` of complaints whose first
  response is in the period; resolution times: ``resolution_seconds`` of
  complaints whose latest resolution is in the period. Both in business seconds.
* **percentiles use the nearest-rank definition**: the p-th percentile of
  ``n`` values sorted ascending is the value at rank ``ceil(p x n / 100)``
  (1-based), so it is always one of the values; the median is p50 (for an
  even ``n`` the lower of the two middle values). Computed with
  ``ROW_NUMBER() OVER (ORDER BY v)`` and ``COUNT(*) OVER ()``: the smallest
  value whose rank ``r`` satisfies ``r x 100 >= n x p``. SQLite has no
  percentile function, PostgreSQL's ``percentile_disc`` is not portable;
  window functions run on both.
* compliance: ``first_response_compliance_pct`` is the share of first
  responses in the period within target; ``resolution_compliance_pct`` the
  share of resolutions in the period within target; ``sla_compliance_pct``
  the share of resolutions in the period whose first response *and*
  resolution were within target. "Within target" is ``seconds <= target``.
* ``sla_breaches``: breaches marked by the sweep in the period.
* ``reopen_rate_pct``: reopenings in the period per 100 resolutions in the period.
* ``recurrences``: complaints opened in the period that repeat an earlier one.

Percentages and rates are rounded half-up to two decimals; ``None`` when
their denominator is zero. Ratios are formed from exact SQL counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    distinct,
    func,
    literal,
    select,
)

from crmcore import CRM, Period, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_complaints.tables import breaches_table, cases_table, history_table
from crmcore_complaints.workflow import ACTIVE, State

#: Percentiles reported for first-response and resolution times.
PERCENTILES = (50, 90)


def ratio(numerator: int, denominator: int, scale: int = 100) -> float | None:
    """``numerator x scale / denominator``, rounded half-up to 2 decimals (None when 0/0)."""
    if not denominator:
        return None
    value = Decimal(numerator * scale) / Decimal(denominator)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _in(column: Any, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def percentiles(
    connection: Connection,
    value: Any,
    where: ColumnElement[bool],
    points: Sequence[int] = PERCENTILES,
) -> dict[int, int | None]:
    """Nearest-rank percentiles of ``value`` over the rows matching ``where``, in one query.

    Each is the smallest value whose 1-based rank ``r`` in ascending order
    satisfies ``r x 100 >= n x p`` (that is, rank ``ceil(p x n / 100)``).
    """
    ranked = (
        select(
            value.label("v"),
            func.row_number().over(order_by=value).label("rn"),
            func.count().over().label("n"),
        )
        .where(where, value.is_not(None))
        .subquery()
    )
    columns = [
        func.min(case((ranked.c.rn * 100 >= ranked.c.n * p, ranked.c.v))).label(f"p{p}")
        for p in points
    ]
    row = connection.execute(select(*columns)).one()
    return {p: None if v is None else int(v) for p, v in zip(points, row, strict=True)}


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """The plugin's KPIs for ``period`` (flat, for ``crm report``); see the module docstring."""
    cases = cases_table(crm.metadata)
    history = history_table(crm.metadata)
    breaches = breaches_table(crm.metadata)
    interactions = crm.metadata.tables["crm_interactions"]
    c = cases.c
    with crm.reading(ctx) as uow:
        conn = uow.connection
        opened, recurrences = conn.execute(
            select(func.count(), func.count(c.recurrence_of)).where(_in(c.opened_at, period))
        ).one()
        active, purchases = conn.execute(
            select(
                func.count(distinct(interactions.c.customer_id)),
                func.count(case((interactions.c.kind == "purchase", 1))),
            ).where(_in(interactions.c.occurred_at, period))
        ).one()
        responded = _in(c.first_response_at, period)
        fr_count, fr_met = conn.execute(
            select(
                func.count(),
                func.count(case((c.first_response_seconds <= c.first_response_target_seconds, 1))),
            ).where(responded)
        ).one()
        resolved = _in(c.resolved_at, period)
        res_count, res_met, both_met = conn.execute(
            select(
                func.count(),
                func.count(case((c.resolution_seconds <= c.resolution_target_seconds, 1))),
                func.count(
                    case(
                        (
                            and_(
                                c.resolution_seconds <= c.resolution_target_seconds,
                                c.first_response_seconds <= c.first_response_target_seconds,
                            ),
                            1,
                        )
                    )
                ),
            ).where(resolved)
        ).one()
        rated = conn.execute(
            select(func.avg(c.rating)).where(_in(c.rated_at, period), c.rating.is_not(None))
        ).scalar_one()
        resolutions, reopens = conn.execute(
            select(
                func.count(case((history.c.to_value == State.RESOLVED.value, 1))),
                func.count(case((history.c.to_value == State.REOPENED.value, 1))),
            ).where(history.c.action == "move", _in(history.c.at, period))
        ).one()
        breach_count = conn.execute(
            select(func.count()).where(_in(breaches.c.detected_at, period))
        ).scalar_one()
        fr = percentiles(conn, c.first_response_seconds, responded)
        res = percentiles(conn, c.resolution_seconds, resolved)
    return {
        "complaints_opened": int(opened),
        "complaints_per_100_active_customers": ratio(opened, active),
        "complaints_per_100_purchases": ratio(opened, purchases),
        "first_response_median_seconds": fr[50],
        "first_response_p90_seconds": fr[90],
        "resolution_median_seconds": res[50],
        "resolution_p90_seconds": res[90],
        "first_response_compliance_pct": ratio(fr_met, fr_count),
        "resolution_compliance_pct": ratio(res_met, res_count),
        "sla_compliance_pct": ratio(both_met, res_count),
        "sla_breaches": int(breach_count),
        "reopen_rate_pct": ratio(reopens, resolutions),
        "recurrences": int(recurrences),
        "avg_rating": None if rated is None else round(float(rated), 2),
    }


def _bucket_bounds(period: Period, buckets: int) -> list[datetime]:
    step = (period.end - period.start) / buckets
    return [period.start + step * i for i in range(buckets)] + [period.end]


@requires(Action.REPORT)
def trends(
    crm: CRM,
    period: Period,
    *,
    buckets: int = 6,
    top: int = 5,
    by: str = "category",
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Counts per equal slice of ``period`` for the ``top`` categories (or root causes).

    ``by="category"`` counts complaints opened per slice; ``by="root_cause"``
    counts resolutions per slice. The slice of each row is found in SQL with
    a ``CASE`` over the slice boundaries (portable; no date functions), and
    grouped there. Returns ``{"buckets": [start ISO ...], "series": {name: [n ...]}}``.
    """
    if by not in {"category", "root_cause"}:
        raise ValueError(f"by must be 'category' or 'root_cause', got {by!r}")
    cases = cases_table(crm.metadata)
    column = cases.c.category if by == "category" else cases.c.root_cause
    time_column = cases.c.opened_at if by == "category" else cases.c.resolved_at
    bounds = _bucket_bounds(period, buckets)
    slice_of = case(
        *((time_column < bound, literal(i)) for i, bound in enumerate(bounds[1:-1])),
        else_=literal(buckets - 1),
    ).label("slice")
    where = and_(_in(time_column, period), column.is_not(None))
    with crm.reading(ctx) as uow:
        leaders = [
            name
            for name, _ in uow.connection.execute(
                select(column, func.count())
                .where(where)
                .group_by(column)
                .order_by(func.count().desc(), column)
                .limit(top)
            )
        ]
        counts = uow.connection.execute(
            select(column.label("name"), slice_of, func.count().label("n"))
            .where(where, column.in_(leaders))
            .group_by(column, slice_of)
        ).all()
    series = {name: [0] * buckets for name in leaders}
    for name, index, n in counts:
        series[name][int(index)] = int(n)
    return {"buckets": [b.isoformat() for b in bounds[:-1]], "series": series}


@requires(Action.REPORT)
def hot_issues(
    crm: CRM, period: Period, *, buckets: int = 6, top: int = 5, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Categories rising in the last slice of ``period`` against their average before.

    ``increase`` is the last slice's count minus the mean of the earlier
    slices; only rising categories are returned, the steepest first.
    """
    data = trends(crm, period, buckets=buckets, top=max(top * 3, 10), ctx=ctx)
    rising = []
    for name, counts in data["series"].items():
        before = counts[:-1]
        baseline = sum(before) / len(before) if before else 0.0
        increase = counts[-1] - baseline
        if increase > 0:
            rising.append(
                {
                    "category": name,
                    "last": counts[-1],
                    "baseline": round(baseline, 2),
                    "increase": round(increase, 2),
                }
            )
    rising.sort(key=lambda r: (-r["increase"], r["category"]))
    return rising[:top]


@requires(Action.REPORT)
def workload(
    crm: CRM, period: Period, now: datetime | None = None, *, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Per assignee: complaints being handled now, overdue now, resolved in the period.

    ``overdue`` counts active complaints past a due instant (first response
    not given by its due time, or the resolution clock past its due time) as
    of ``now`` (default the CRM's clock). Unassigned complaints are under
    ``assignee = None``.
    """
    cases = cases_table(crm.metadata)
    c = cases.c
    moment = (now or crm.clock()).astimezone(UTC).replace(microsecond=0)
    active = c.state.in_([s.value for s in ACTIVE])
    overdue = and_(
        active,
        (c.first_response_at.is_(None) & (c.first_response_due_at < moment))
        | (c.resolution_due_at < moment),
    )
    resolved = _in(c.resolved_at, period)
    query = (
        select(
            c.assignee,
            func.count(case((active, 1))).label("active"),
            func.count(case((overdue, 1))).label("overdue"),
            func.count(case((resolved, 1))).label("resolved"),
            func.avg(case((resolved, c.resolution_seconds))).label("avg_resolution_seconds"),
        )
        .group_by(c.assignee)
        .order_by(func.count(case((active, 1))).desc(), c.assignee)
    )
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(query).all()
    return [
        {
            "assignee": row.assignee,
            "active": int(row.active),
            "overdue": int(row.overdue),
            "resolved": int(row.resolved),
            "avg_resolution_seconds": (
                None if row.avg_resolution_seconds is None else int(row.avg_resolution_seconds)
            ),
        }
        for row in rows
        if row.active or row.resolved
    ]


@requires(Action.REPORT)
def top_counts(
    crm: CRM, period: Period, *, by: str = "category", top: int = 5, ctx: UnitOfWork | None = None
) -> list[Any]:
    """The ``top`` categories (complaints opened) or root causes (resolutions) of ``period``."""
    cases = cases_table(crm.metadata)
    column = cases.c.category if by == "category" else cases.c.root_cause
    time_column = cases.c.opened_at if by == "category" else cases.c.resolved_at
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(column, func.count())
            .where(_in(time_column, period), column.is_not(None))
            .group_by(column)
            .order_by(func.count().desc(), column)
            .limit(top)
        ).all()
    return [{"name": name, "count": int(n)} for name, n in rows]


@requires(Action.REPORT)
def backlog(crm: CRM, *, ctx: UnitOfWork | None = None) -> dict[str, int]:
    """Complaints per state right now (every state listed, zero included)."""
    cases = cases_table(crm.metadata)
    with crm.reading(ctx) as uow:
        found: dict[str, int] = dict(
            uow.connection.execute(
                select(cases.c.state, func.count()).group_by(cases.c.state)
            ).all()
        )
    return {s.value: int(found.get(s.value, 0)) for s in State}


@requires(Action.REPORT)
def report(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """Everything ``crm complaints report`` shows for ``period``, JSON-safe."""
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "kpis": metrics(crm, period, ctx=ctx),
        "backlog": backlog(crm, ctx=ctx),
        "top_categories": top_counts(crm, period, by="category", ctx=ctx),
        "top_root_causes": top_counts(crm, period, by="root_cause", ctx=ctx),
        "hot_issues": hot_issues(crm, period),
        "category_trend": trends(crm, period, by="category", ctx=ctx),
        "root_cause_trend": trends(crm, period, by="root_cause", ctx=ctx),
        "workload": workload(crm, period, ctx=ctx),
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
