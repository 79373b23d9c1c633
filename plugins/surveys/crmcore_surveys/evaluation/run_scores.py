"""Grey relational analysis and PCA of a survey's dimension scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crmcore import ValidationError
from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.dimensions import dimension_means, overall_question
from crmcore_surveys.evaluation import data, grey, pca
from crmcore_surveys.evaluation.common import (
    index_dimensions,
    with_responses,
)
from crmcore_surveys.evaluation.results import (
    GreyItem,
    GreyResult,
    Header,
    PCAComponent,
    PCADimension,
    PCAGroup,
    PCARespondent,
    PCAResult,
)
from crmcore_surveys.scorer import Scorer

#: Fewest complete respondents the grey (dimensions mode) analysis accepts.
GREY_MIN_RESPONDENTS = 3
#: Grey references in the groups mode.
REFERENCES = ("ideal", "best")


def evaluate_grey(
    scorer: Scorer,
    grouped: Scorer | None,
    versions: Sequence[SurveyVersion],
    header: Header,
    *,
    rho: Any = grey.DEFAULT_RHO,
    normalisation: str = "minmax",
    reference: str | None = None,
) -> GreyResult:
    """Grey relational grades: dimensions to the overall answer, or groups to a reference."""
    rho = grey.check_rho(rho)
    if normalisation not in grey.NORMALISATIONS:
        raise ValidationError(
            f"normalisation: {normalisation!r} is not one of: {', '.join(grey.NORMALISATIONS)}",
            field="normalisation",
        )
    dimensions = index_dimensions(versions)
    if grouped is None:
        if reference is not None:
            raise ValidationError(
                "reference: only with group_by (the groups mode compares groups to a reference)",
                field="reference",
            )
        return _greyindex_dimensions(scorer, versions, header, dimensions, rho, normalisation)
    reference = reference or "ideal"
    if reference not in REFERENCES:
        raise ValidationError(
            f"reference: {reference!r} is not one of: {', '.join(REFERENCES)}", field="reference"
        )
    return _grey_groups(grouped, header, dimensions, rho, normalisation, reference)


def _greyindex_dimensions(
    scorer: Scorer,
    versions: Sequence[SurveyVersion],
    header: Header,
    dimensions: Sequence[str],
    rho: float,
    normalisation: str,
) -> GreyResult:
    overall = {v.id: q for v in versions if (q := overall_question(v)) is not None}
    if not overall:
        raise ValidationError(
            "grey: the survey has no overall question (overall, else nps, else csat) to "
            "relate the dimensions to; give group_by to compare groups to the ideal",
            field="method",
        )
    matrix = data.dimension_matrix(scorer, dimensions)
    y = data.overall_scores(scorer, overall)
    column = np.array([y.get(rid, np.nan) for rid in matrix.response_ids])
    values = np.column_stack([column, matrix.values]) if matrix.response_ids else np.zeros((0, 1))
    keep = ~np.isnan(values).any(axis=1)
    values = values[keep]
    n = int(values.shape[0])
    if n < GREY_MIN_RESPONDENTS:
        raise ValidationError(
            f"grey: needs at least {GREY_MIN_RESPONDENTS} respondents who answered the overall "
            f"question and every dimension, got {n}",
            field="responses",
        )
    question = "/".join(sorted(set(overall.values())))
    normalised = grey.normalise(values, normalisation, [question, *dimensions])
    outcome = grey.relational(normalised[:, 0], normalised[:, 1:], rho)
    ranks = grey.ranks(outcome.grades)
    items = [
        GreyItem(d, float(outcome.grades[i]), ranks[i], float(values[:, i + 1].mean()), n)
        for i, d in enumerate(dimensions)
    ]
    return GreyResult(
        header=with_responses(header, n),
        mode="dimensions",
        reference=question,
        rho=rho,
        normalisation=normalisation,
        delta_min=outcome.delta_min,
        delta_max=outcome.delta_max,
        items=tuple(sorted(items, key=lambda item: item.rank)),
    )


def _grey_groups(
    grouped: Scorer,
    header: Header,
    dimensions: Sequence[str],
    rho: float,
    normalisation: str,
    reference: str,
) -> GreyResult:
    means = dimension_means(grouped)
    counts = grouped.responses()
    labels, rows, incomplete = [], [], []
    for label in sorted(k for k in means if k is not None):
        scores = {item["dimension"]: item["score"] for item in means[label]}
        if any(scores.get(d) is None for d in dimensions):
            incomplete.append(label)
            continue
        labels.append(label)
        rows.append([float(scores[d]) for d in dimensions])
    if len(labels) < 2:
        raise ValidationError(
            f"grey: needs at least 2 groups with answers on every dimension, got {len(labels)}",
            field="group_by",
        )
    table = np.array(rows)
    ideal = np.full(len(dimensions), 100.0) if reference == "ideal" else table.max(axis=0)
    normalised = grey.normalise(np.vstack([ideal, table]), normalisation, dimensions)
    outcome = grey.relational(normalised[0], normalised[1:].T, rho)
    ranks = grey.ranks(outcome.grades)
    items = [
        GreyItem(
            name=label,
            grade=float(outcome.grades[g]),
            rank=ranks[g],
            score=float(table[g].mean()),
            n=int(counts.get(label, 0)),
            coefficients={d: float(outcome.coefficients[k, g]) for k, d in enumerate(dimensions)},
            scores={d: float(table[g, k]) for k, d in enumerate(dimensions)},
        )
        for g, label in enumerate(labels)
    ]
    return GreyResult(
        header=header,
        mode="groups",
        reference=reference,
        rho=rho,
        normalisation=normalisation,
        delta_min=outcome.delta_min,
        delta_max=outcome.delta_max,
        items=tuple(sorted(items, key=lambda item: item.rank)),
        incomplete_groups=tuple(incomplete),
    )


# --- pca -------------------------------------------------------------------------------


def evaluate_pca(
    scorer: Scorer,
    grouped: Scorer | None,
    versions: Sequence[SurveyVersion],
    header: Header,
    *,
    retain: Any = pca.KAISER,
) -> PCAResult:
    """PCA of the dimension scores: components, weights, composite scores (and by group)."""
    retain = pca.check_retain(retain)
    dimensions = index_dimensions(versions)
    matrix = data.dimension_matrix(scorer, dimensions).complete()
    out = pca.pca(matrix.values, retain, dimensions)
    components = tuple(
        PCAComponent(
            number=j + 1,
            eigenvalue=float(out.eigenvalues[j]),
            explained=float(out.explained[j]),
            cumulative=float(out.cumulative[j]),
            retained=j < out.retained,
            loadings={
                d: float(out.vectors[i, j] * np.sqrt(out.eigenvalues[j]))
                for i, d in enumerate(dimensions)
            },
            vector={d: float(out.vectors[i, j]) for i, d in enumerate(dimensions)},
        )
        for j in range(len(dimensions))
    )
    respondents = tuple(
        PCARespondent(rid, cid, float(out.composite[r]), float(out.scores[r]))
        for r, (rid, cid) in enumerate(zip(matrix.response_ids, matrix.customer_ids, strict=True))
    )
    groups: list[PCAGroup] = []
    if grouped is not None:
        members = data.group_rows(grouped, matrix.response_ids)
        for label in sorted(members):
            rows = members[label]
            groups.append(
                PCAGroup(
                    label,
                    len(rows),
                    float(out.composite[rows].mean()),
                    float(out.scores[rows].mean()),
                )
            )
    return PCAResult(
        header=with_responses(header, len(matrix.response_ids)),
        retain=retain,
        retained=out.retained,
        components=components,
        dimensions=tuple(
            PCADimension(
                d,
                float(out.means[i]),
                float(out.sds[i]),
                float(out.coefficients[i]),
                float(out.weights[i]),
            )
            for i, d in enumerate(dimensions)
        ),
        respondents=respondents,
        groups=tuple(groups),
    )
