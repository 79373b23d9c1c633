"""The answer data the evaluation methods work on, loaded from the database.

Counts and per-respondent means are computed in SQL (one ``GROUP BY`` each, the same
statement on SQLite and PostgreSQL); the few rows they return become numpy arrays.
An answer's 0-100 position is ``100 (rating - scale_min) / (scale_max - scale_min)``
(:meth:`~crmcore_surveys.scorer.Scorer.norm`); a dimension's score for a respondent is
the mean position of the respondent's answers to the dimension's index questions.
Missing answers are left out: counts count what was answered, and the respondent
matrices hold NaN where a respondent did not answer (:func:`complete_rows` keeps the
respondents who answered everything needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from attrs import frozen
from numpy.typing import NDArray
from sqlalchemy import and_, func, or_, select

from crmcore.errors import ValidationError
from crmcore_surveys.scorer import Scorer

Array = NDArray[np.float64]


@frozen
class GradeCount:
    """How many answers of a dimension (in a group) gave ``rating`` on a scale."""

    group: str | None
    dimension: str
    scale_min: int
    scale_max: int
    rating: int
    n: int

    @property
    def position(self) -> float:
        """The rating's 0-100 position on its scale."""
        return 100.0 * (self.rating - self.scale_min) / (self.scale_max - self.scale_min)


def grade_counts(scorer: Scorer) -> list[GradeCount]:
    """Answers per (group,) dimension, scale and rating: the fuzzy membership ``GROUP BY``.

    Over the index questions (rating questions with a dimension, neither expectation
    nor overall questions), every survey version in scope, answers pooled.
    """
    q, rating = scorer.q, scorer.a.c.rating
    query = (
        scorer.grouped_select(
            q.c.dimension, q.c.scale_min, q.c.scale_max, rating, func.count().label("n")
        )
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), scorer.index_question(), rating.is_not(None))
        .group_by(q.c.dimension, q.c.scale_min, q.c.scale_max, rating)
    )
    return [
        GradeCount(
            scorer.group_key(row),
            str(row.dimension),
            int(row.scale_min),
            int(row.scale_max),
            int(row.rating),
            int(row.n),
        )
        for row in scorer.connection.execute(query)
    ]


@frozen
class RespondentMatrix:
    """One row per response: its id, customer (``None`` once erased) and values (NaN: none)."""

    response_ids: tuple[int, ...]
    customer_ids: tuple[int | None, ...]
    columns: tuple[str, ...]
    values: Array

    def complete(self) -> RespondentMatrix:
        """Only the rows without NaN (the respondents who answered every column)."""
        missing: NDArray[np.bool_] = np.asarray(np.isnan(self.values).any(axis=1))
        keep = [not bool(m) for m in missing.tolist()]
        return RespondentMatrix(
            tuple(r for r, k in zip(self.response_ids, keep, strict=True) if k),
            tuple(c for c, k in zip(self.customer_ids, keep, strict=True) if k),
            self.columns,
            self.values[keep],
        )


def _matrix(
    rows: Sequence[tuple[int, int | None, str, float]], columns: Sequence[str]
) -> RespondentMatrix:
    position = {c: j for j, c in enumerate(columns)}
    index: dict[int, int] = {}
    customers: dict[int, int | None] = {}
    for rid, cid, _, _ in rows:
        if rid not in index:
            index[rid] = len(index)
            customers[rid] = cid
    ordered = sorted(index)
    order = {rid: i for i, rid in enumerate(ordered)}
    values = np.full((len(ordered), len(columns)), np.nan)
    for rid, _, column, value in rows:
        if column in position:
            values[order[rid], position[column]] = value
    return RespondentMatrix(
        tuple(ordered), tuple(customers[r] for r in ordered), tuple(columns), values
    )


def dimension_matrix(scorer: Scorer, dimensions: Sequence[str]) -> RespondentMatrix:
    """Each response's score (0-100) on each dimension: ``GROUP BY`` response, dimension."""
    q, r = scorer.q, scorer.r
    query = (
        select(r.c.id, r.c.customer_id, q.c.dimension, func.avg(scorer.norm()).label("x"))
        .select_from(scorer.answers_from())
        .where(
            *scorer.conditions(),
            scorer.index_question(),
            q.c.dimension.in_(list(dimensions)),
            scorer.a.c.rating.is_not(None),
        )
        .group_by(r.c.id, r.c.customer_id, q.c.dimension)
    )
    rows = [
        (int(row.id), _id(row.customer_id), str(row.dimension), float(row.x))
        for row in scorer.connection.execute(query)
    ]
    return _matrix(rows, dimensions)


def overall_scores(scorer: Scorer, overall: Mapping[int, str]) -> dict[int, float]:
    """Each response's overall answer (0-100); ``overall`` maps version id to question id."""
    if not overall:
        return {}
    q, r = scorer.q, scorer.r
    is_overall = or_(
        *(and_(q.c.survey_id == sid, q.c.key == key) for sid, key in sorted(overall.items()))
    )
    query = (
        select(r.c.id, func.avg(scorer.norm()).label("x"))
        .select_from(scorer.answers_from())
        .where(*scorer.conditions(), is_overall, scorer.a.c.rating.is_not(None))
        .group_by(r.c.id)
    )
    return {int(row.id): float(row.x) for row in scorer.connection.execute(query)}


@frozen
class RatingMatrix:
    """Raw ratings of some questions per response, and each question's scale."""

    matrix: RespondentMatrix
    scale_min: Array
    scale_max: Array


def rating_matrix(scorer: Scorer, questions: Sequence[str]) -> RatingMatrix:
    """Each response's rating of each question (by question id, every version in scope).

    Raises ValidationError when a question's scale differs between the versions.
    """
    q, r, a = scorer.q, scorer.r, scorer.a
    query = (
        select(r.c.id, r.c.customer_id, a.c.question_key, a.c.rating)
        .select_from(scorer.answers_from())
        .where(
            *scorer.conditions(),
            q.c.type == "rating",
            a.c.question_key.in_(list(questions)),
            a.c.rating.is_not(None),
        )
    )
    rows = [
        (int(row.id), _id(row.customer_id), str(row.question_key), float(row.rating))
        for row in scorer.connection.execute(query)
    ]
    scales = scorer.connection.execute(
        select(q.c.key, q.c.scale_min, q.c.scale_max)
        .distinct()
        .select_from(scorer.s.join(q, q.c.survey_id == scorer.s.c.id))
        .where(
            q.c.key.in_(list(questions)),
            q.c.survey_id.in_(
                select(r.c.survey_id)
                .select_from(scorer.responses_from())
                .where(*scorer.conditions())
            ),
        )
    ).all()
    found: dict[str, tuple[int, int]] = {}
    for key, low, high in scales:
        if key in found and found[key] != (low, high):
            raise ValidationError(
                f"mapping: question {key!r} has the scales {found[key][0]}-{found[key][1]} and "
                f"{low}-{high} in different versions; evaluate one version",
                field="mapping",
            )
        found[str(key)] = (int(low), int(high))
    return RatingMatrix(
        _matrix(rows, questions),
        np.array([found.get(k, (0, 1))[0] for k in questions], dtype=np.float64),
        np.array([found.get(k, (0, 1))[1] for k in questions], dtype=np.float64),
    )


def group_labels(grouped: Scorer) -> dict[int, list[str]]:
    """The group label(s) of each response in scope (a response is in several by tag)."""
    assert grouped.group is not None
    query = (
        select(grouped.r.c.id, grouped.group.label("grp"))
        .distinct()
        .select_from(grouped.responses_from())
        .where(*grouped.conditions())
    )
    labels: dict[int, list[str]] = {}
    for row in grouped.connection.execute(query):
        label = grouped.group_key(row)
        assert label is not None
        labels.setdefault(int(row.id), []).append(label)
    for values in labels.values():
        values.sort()
    return labels


def group_rows(grouped: Scorer, response_ids: Sequence[int]) -> dict[str, list[int]]:
    """Each group label's rows: positions in ``response_ids`` of the responses in that group."""
    labels = group_labels(grouped)
    members: dict[str, list[int]] = {}
    for r, rid in enumerate(response_ids):
        for label in labels.get(rid, []):
            members.setdefault(label, []).append(r)
    return members


def _id(value: object) -> int | None:
    return None if value is None else int(str(value))
