"""NPS, CSAT, CES and per-question means: one ``GROUP BY`` over the rating answers each.

Each function takes a :class:`~crmcore_surveys.scorer.Scorer` (scope and optional
breakdown) and returns its figures by group label (``None`` without a breakdown);
:mod:`crmcore_surveys.statistics` turns the SQL sums into estimates and 95% intervals.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from crmcore_surveys.scorer import Scorer
from crmcore_surveys.statistics import mean_estimate, nps_estimate, proportion_estimate


def nps(scorer: Scorer) -> dict[str | None, dict[str, Any]]:
    """NPS per group: promoters (9-10), passives (7-8), detractors (0-6), NPS and CI."""
    rating = scorer.a.c.rating
    query = (
        scorer.grouped_select(
            func.count(rating).label("n"),
            func.sum(case((rating >= 9, 1), else_=0)).label("promoters"),
            func.sum(case((rating <= 6, 1), else_=0)).label("detractors"),
        )
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.q.c.metric == "nps", rating.is_not(None))
    )
    out = {}
    for key, row in scorer.rows_by_group(query).items():
        n, pro, det = int(row.n), int(row.promoters or 0), int(row.detractors or 0)
        if n == 0:
            continue
        out[key] = {
            **nps_estimate(n, pro, det).to_dict(),
            "promoters": pro,
            "passives": n - pro - det,
            "detractors": det,
        }
    return out


def csat(scorer: Scorer) -> dict[str | None, dict[str, Any]]:
    """CSAT per group: % of answers in the top two boxes (Wilson CI), and the mean."""
    rating = scorer.a.c.rating
    query = (
        scorer.grouped_select(
            func.count(rating).label("n"),
            func.sum(case((rating >= scorer.q.c.scale_max - 1, 1), else_=0)).label("top2"),
            func.sum(rating).label("s"),
            func.sum(rating * rating).label("ss"),
        )
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.q.c.metric == "csat", rating.is_not(None))
    )
    out = {}
    for key, row in scorer.rows_by_group(query).items():
        n = int(row.n)
        if n == 0:
            continue
        mean = mean_estimate(n, float(row.s), float(row.ss))
        out[key] = {
            **proportion_estimate(n, int(row.top2)).to_dict(),
            "top2": int(row.top2),
            "mean": mean.value,
            "mean_ci_low": mean.ci_low,
            "mean_ci_high": mean.ci_high,
        }
    return out


def ces(scorer: Scorer) -> dict[str | None, dict[str, Any]]:
    """CES per group: the mean of the ces answers with its normal CI."""
    rating = scorer.a.c.rating
    query = (
        scorer.grouped_select(
            func.count(rating).label("n"),
            func.sum(rating).label("s"),
            func.sum(rating * rating).label("ss"),
        )
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.q.c.metric == "ces", rating.is_not(None))
    )
    return {
        key: mean_estimate(int(row.n), float(row.s), float(row.ss)).to_dict()
        for key, row in scorer.rows_by_group(query).items()
        if int(row.n)
    }


def questions(scorer: Scorer) -> list[dict[str, Any]]:
    """Mean, SD and CI of every rating question (by question id and scale)."""
    rating = scorer.a.c.rating
    query = (
        select(
            scorer.q.c.key,
            scorer.q.c.scale_min,
            scorer.q.c.scale_max,
            func.min(scorer.q.c.position).label("position"),
            func.count(rating).label("n"),
            func.sum(rating).label("s"),
            func.sum(rating * rating).label("ss"),
        )
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.q.c.type == "rating", rating.is_not(None))
        .group_by(scorer.q.c.key, scorer.q.c.scale_min, scorer.q.c.scale_max)
        .order_by(func.min(scorer.q.c.position), scorer.q.c.key)
    )
    return [
        {
            "question": row.key,
            "scale": f"{row.scale_min}-{row.scale_max}",
            **mean_estimate(int(row.n), float(row.s), float(row.ss)).to_dict(),
        }
        for row in scorer.connection.execute(query)
    ]
