"""Per-dimension scores: dimension means, the weighted index, SERVQUAL gaps, drivers.

Each function takes a :class:`~crmcore_surveys.scorer.Scorer`; the per-response
intermediate values (a response's index, its per-dimension score) are SQL subqueries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Float, Subquery, and_, case, func, literal, or_, select

from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.scorer import Scorer
from crmcore_surveys.statistics import mean_estimate, pearson_estimate

# The overall answer as a pseudo-dimension in driver analysis (no real dimension is empty).
#: The pseudo-dimension of the overall answer in :func:`response_scores`.
OVERALL = ""


def dimension_means(scorer: Scorer) -> dict[str | None, list[dict[str, Any]]]:
    """Per dimension: the raw mean (when its questions share a scale) and the 0-100 score.

    Both pool every answer to the dimension's index questions (unweighted).
    """
    rating = scorer.a.c.rating
    norm = scorer.norm()
    query = (
        scorer.grouped_select(
            scorer.q.c.dimension.label("dimension"),
            func.count(rating).label("n"),
            func.sum(rating).label("s"),
            func.sum(rating * rating).label("ss"),
            func.sum(norm).label("ns"),
            func.sum(norm * norm).label("nss"),
            func.min(scorer.q.c.scale_min).label("lo_min"),
            func.max(scorer.q.c.scale_min).label("hi_min"),
            func.min(scorer.q.c.scale_max).label("lo_max"),
            func.max(scorer.q.c.scale_max).label("hi_max"),
        )
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.index_question(), rating.is_not(None))
        .group_by(scorer.q.c.dimension)
        .order_by(scorer.q.c.dimension)
    )
    out: dict[str | None, list[dict[str, Any]]] = {}
    for row in scorer.connection.execute(query):
        key = scorer.group_key(row)
        n = int(row.n)
        one_scale = row.lo_min == row.hi_min and row.lo_max == row.hi_max
        raw = mean_estimate(n, float(row.s), float(row.ss))
        score = mean_estimate(n, float(row.ns), float(row.nss))
        out.setdefault(key, []).append(
            {
                "dimension": row.dimension,
                "n": n,
                "scale": f"{row.lo_min}-{row.lo_max}" if one_scale else None,
                "mean": raw.value if one_scale else None,
                "sd": raw.sd if one_scale else None,
                "ci_low": raw.ci_low if one_scale else None,
                "ci_high": raw.ci_high if one_scale else None,
                "score": score.value,
                "score_ci_low": score.ci_low,
                "score_ci_high": score.ci_high,
            }
        )
    return out


def _weight_case(scorer: Scorer, weights: Mapping[tuple[int, str], float]) -> ColumnElement[float]:
    if not weights:
        return literal(0.0, Float)
    return case(
        *(
            (and_(scorer.q.c.survey_id == sid, scorer.q.c.key == key), literal(w, Float))
            for (sid, key), w in sorted(weights.items())
        ),
        else_=literal(0.0, Float),
    )


def index(
    scorer: Scorer, weights: Mapping[tuple[int, str], float]
) -> dict[str | None, dict[str, Any]]:
    """The weighted satisfaction index (0-100) per group, with its CI.

    Per response ``sum v_q x_q / sum v_q`` over its answered index questions
    (``weights`` maps (survey version id, question id) to ``v_q``); the index is the
    mean of that over responses, the CI normal with the sample SD.
    """
    v = _weight_case(scorer, weights)
    norm = scorer.norm()
    columns: list[Any] = [scorer.r.c.id.label("rid")]
    group_by: list[Any] = [scorer.r.c.id]
    if scorer.group is not None:
        columns.append(scorer.group.label("grp"))
        group_by.append(scorer.group)
    per_response = (
        select(*columns, (func.sum(v * norm) / func.sum(v)).label("idx"))
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.a.c.rating.is_not(None), v > 0)
        .group_by(*group_by)
        .subquery()
    )
    outer: list[Any] = [
        func.count(per_response.c.idx).label("n"),
        func.sum(per_response.c.idx).label("s"),
        func.sum(per_response.c.idx * per_response.c.idx).label("ss"),
    ]
    if scorer.group is not None:
        query = select(per_response.c.grp, *outer).group_by(per_response.c.grp)
    else:
        query = select(*outer)
    out = {}
    for row in scorer.connection.execute(query):
        if not row.n:
            continue
        key = scorer.group_key(row)
        out[key] = mean_estimate(int(row.n), float(row.s), float(row.ss)).to_dict()
    return out


def gaps(scorer: Scorer) -> list[dict[str, Any]]:
    """Expectation-perception gap per dimension.

    The mean of (perception - expectation) over responses answering both questions
    of a pair, pooled over the dimension's pairs.
    """
    qe, qp = scorer.q.alias("qe"), scorer.q.alias("qp")
    ae, ap = scorer.a.alias("ae"), scorer.a.alias("ap")
    diff = ap.c.rating - ae.c.rating
    joined = (
        scorer.responses_from()
        .join(ap, ap.c.response_id == scorer.r.c.id)
        .join(
            qp,
            and_(
                qp.c.survey_id == scorer.r.c.survey_id,
                qp.c.key == ap.c.question_key,
                qp.c.role == "perception",
            ),
        )
        .join(
            qe,
            and_(
                qe.c.survey_id == scorer.r.c.survey_id,
                qe.c.pair == qp.c.pair,
                qe.c.role == "expectation",
            ),
        )
        .join(ae, and_(ae.c.response_id == scorer.r.c.id, ae.c.question_key == qe.c.key))
    )
    query = (
        select(
            qp.c.dimension,
            func.count().label("n"),
            func.sum(diff).label("s"),
            func.sum(diff * diff).label("ss"),
            func.sum(ap.c.rating).label("sp"),
            func.sum(ae.c.rating).label("se"),
        )
        .select_from(joined)
        .where(*scorer.conditions(), ap.c.rating.is_not(None), ae.c.rating.is_not(None))
        .group_by(qp.c.dimension)
        .order_by(qp.c.dimension)
    )
    out = []
    for row in scorer.connection.execute(query):
        n = int(row.n)
        gap = mean_estimate(n, float(row.s), float(row.ss))
        out.append(
            {
                "dimension": row.dimension,
                "n": n,
                "expectation": float(row.se) / n,
                "perception": float(row.sp) / n,
                "gap": gap.value,
                "sd": gap.sd,
                "ci_low": gap.ci_low,
                "ci_high": gap.ci_high,
            }
        )
    return out


def overall_question(version: SurveyVersion) -> str | None:
    """The overall question: role overall, else the NPS question, else the CSAT one."""
    questions = version.definition.questions
    for field, wanted in (("role", "overall"), ("metric", "nps"), ("metric", "csat")):
        for q in questions:
            if q.type == "rating" and getattr(q, field) == wanted:
                return q.id
    return None


def response_scores(scorer: Scorer, overall: Mapping[int, str]) -> Subquery:
    """Per response and dimension, the mean of its answers on 0-100 (``rid``, ``dim``, ``x``).

    The overall question of each version (``overall``: survey version id to its
    question key) is the pseudo-dimension :data:`OVERALL`; unanswered ratings
    are left out.
    """
    is_overall = or_(
        *(
            and_(scorer.q.c.survey_id == sid, scorer.q.c.key == key)
            for sid, key in sorted(overall.items())
        )
    )
    dim = case((is_overall, literal(OVERALL)), else_=scorer.q.c.dimension)
    return (
        select(scorer.r.c.id.label("rid"), dim.label("dim"), func.avg(scorer.norm()).label("x"))
        .select_from(scorer.answers_from())
        .where(
            *scorer.conditions(),
            or_(is_overall, scorer.index_question()),
            scorer.a.c.rating.is_not(None),
        )
        .group_by(scorer.r.c.id, dim)
        .subquery()
    )


def drivers(scorer: Scorer, overall: Mapping[int, str]) -> list[dict[str, Any]]:
    """Pearson r between each dimension's per-response score and the overall answer.

    ``overall`` maps survey version id to its overall question id. Both sides on
    the 0-100 scale; a dimension's per-response score is the mean of its answers.
    Sorted by r, strongest first.
    """
    if not overall:
        return []
    # One pass over the answers, no join of grouped subqueries (PostgreSQL would
    # nest-loop over them): the overall answer is a pseudo-dimension, spread to
    # the response's dimension rows with a window function (SQLite >= 3.25, PG).
    per = response_scores(scorer, overall)
    spread = select(
        per.c.dim,
        per.c.x,
        func.max(case((per.c.dim == OVERALL, per.c.x))).over(partition_by=per.c.rid).label("y"),
    ).subquery()
    query = (
        select(
            spread.c.dim,
            func.count().label("n"),
            func.sum(spread.c.x).label("sx"),
            func.sum(spread.c.y).label("sy"),
            func.sum(spread.c.x * spread.c.x).label("sxx"),
            func.sum(spread.c.y * spread.c.y).label("syy"),
            func.sum(spread.c.x * spread.c.y).label("sxy"),
        )
        .where(spread.c.dim != OVERALL, spread.c.y.is_not(None))
        .group_by(spread.c.dim)
    )
    out = []
    for row in scorer.connection.execute(query):
        n = int(row.n)
        r = pearson_estimate(
            n, float(row.sx), float(row.sy), float(row.sxx), float(row.syy), float(row.sxy)
        )
        out.append(
            {
                "dimension": row.dim,
                "n": n,
                "r": r.value,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "score": float(row.sx) / n,
            }
        )
    out.sort(key=lambda d: (-(d["r"] if d["r"] is not None else -2.0), d["dimension"]))
    return out
