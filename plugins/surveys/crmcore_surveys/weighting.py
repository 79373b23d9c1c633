"""Index weights: declared, AHP or entropy dimension weights spread over the questions.

:func:`question_weights` gives every index question its weight ``v_q`` per survey
version; :func:`entropy` computes entropy weights from the answers in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, case, func, literal, select

from crmcore import ValidationError
from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.scorer import Scorer
from crmcore_surveys.weights import AHPResult, EntropyColumn, checked_ahp, entropy_weights


def entropy(scorer: Scorer, dimensions: Sequence[str]) -> tuple[dict[str, float], int]:
    """Entropy weights of ``dimensions`` over the responses that answered all of them.

    ``x_ij`` is response i's score (0-100) on dimension j, standardised per
    dimension to ``y = (x - min) / (max - min)``; the sums ``sum y`` and
    ``sum y ln y`` come from SQL (``ln`` is built into PostgreSQL and SQLite >= 3.35).
    Returns the weights and m, the number of complete responses.
    """
    if not dimensions:
        return {}, 0
    norm = scorer.norm()
    per = (
        select(
            scorer.r.c.id.label("rid"),
            scorer.q.c.dimension.label("dim"),
            func.avg(norm).label("x"),
        )
        .select_from(scorer.answers_from())
        .where(
            *scorer.conditions(),
            scorer.index_question(),
            scorer.q.c.dimension.in_(list(dimensions)),
            scorer.a.c.rating.is_not(None),
        )
        .group_by(scorer.r.c.id, scorer.q.c.dimension)
        .subquery()
    )
    # Responses with every dimension answered, by a window count (no self-join).
    counted = select(
        per.c.dim, per.c.x, func.count().over(partition_by=per.c.rid).label("k")
    ).subquery()
    complete = counted.c.k == len(dimensions)
    m = int(
        scorer.connection.execute(
            select(func.count()).where(complete, counted.c.dim == dimensions[0])
        ).scalar_one()
    )
    bounds = {
        row.dim: (float(row.lo), float(row.hi))
        for row in scorer.connection.execute(
            select(
                counted.c.dim,
                func.min(counted.c.x).label("lo"),
                func.max(counted.c.x).label("hi"),
            )
            .where(complete)
            .group_by(counted.c.dim)
        )
    }
    varying = {d: b for d, b in bounds.items() if b[1] - b[0] > 1e-12}
    sums: dict[str, EntropyColumn] = {}
    if varying:
        y = case(
            *(
                (counted.c.dim == d, (counted.c.x - lo) / (hi - lo))
                for d, (lo, hi) in sorted(varying.items())
            ),
            else_=literal(0.0, Float),
        )
        y_log_y = case((y > 0, y * func.ln(y)), else_=literal(0.0, Float))
        for row in scorer.connection.execute(
            select(
                counted.c.dim,
                func.sum(y).label("total"),
                func.sum(y_log_y).label("ylogy"),
            )
            .where(complete, counted.c.dim.in_(sorted(varying)))
            .group_by(counted.c.dim)
        ):
            sums[row.dim] = EntropyColumn(float(row.total), float(row.ylogy))
    columns = [sums.get(d, EntropyColumn(0.0, 0.0)) for d in dimensions]
    return dict(zip(dimensions, entropy_weights(columns, m), strict=True)), m


def question_weights(
    scorer: Scorer,
    versions: Sequence[SurveyVersion],
    method: str,
    ahp_matrix: Sequence[Sequence[float]] | None,
) -> tuple[dict[tuple[int, str], float], dict[str, Any]]:
    """Question weights ``v_q`` per (version id, question) and a description of them."""
    latest = max(versions, key=lambda v: v.version)
    definition = latest.definition
    dimensions = list(definition.dimensions)
    for version in versions:
        for d in version.definition.dimensions:
            if d not in dimensions:
                dimensions.append(d)
    info: dict[str, Any] = {"method": method}
    dimension_weights: dict[str, float] | None
    if method == "declared":
        dimension_weights = None
        declared: dict[str, float] = {}
        for d, w in definition.declared_dimension_weights().items():
            declared[d] = w
        total = sum(declared.values()) or 1.0
        info["weights"] = {d: w / total for d, w in declared.items()}
    elif method == "ahp":
        result: AHPResult | None
        names: Sequence[str]
        if ahp_matrix is not None:
            result = checked_ahp(ahp_matrix, field="ahp_matrix")
            names = definition.weighting.dimensions or definition.dimensions
            if len(names) != len(result.weights):
                raise ValidationError(
                    f"ahp_matrix: {len(result.weights)} rows for the {len(names)} dimensions "
                    f"{list(names)}",
                    field="ahp_matrix",
                )
        else:
            result = definition.weighting.ahp
            names = definition.weighting.dimensions
            if result is None:
                raise ValidationError(
                    f"weighting: survey {latest.key!r} declares no AHP matrix; give one",
                    field="weighting",
                )
        dimension_weights = dict(zip(names, result.weights, strict=True))
        info["weights"] = dimension_weights
        info["ahp"] = {
            "lambda_max": result.lambda_max,
            "consistency_index": result.consistency_index,
            "consistency_ratio": result.consistency_ratio,
        }
    else:
        dimension_weights, m = entropy(scorer, dimensions)
        info["weights"] = dimension_weights
        info["complete_responses"] = m
    weights: dict[tuple[int, str], float] = {}
    for version in versions:
        for qid, w in version.definition.index_weights(dimension_weights).items():
            weights[(version.id, qid)] = w
    return weights, info
