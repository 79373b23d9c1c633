"""Fuzzy comprehensive evaluation of a survey: grades, membership matrix, weights, result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crmcore import ValidationError
from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.definitions import WEIGHTING_METHODS
from crmcore_surveys.evaluation import data, fuzzy
from crmcore_surveys.evaluation.common import (
    floats,
    index_dimensions,
    latest_version,
)
from crmcore_surveys.evaluation.results import (
    FuzzyCriterion,
    FuzzyDimension,
    FuzzyEvaluation,
    FuzzyResult,
    Grade,
    Header,
)
from crmcore_surveys.scorer import Scorer
from crmcore_surveys.weighting import question_weights
from crmcore_surveys.weights import checked_ahp


def _grades(
    versions: Sequence[SurveyVersion],
    counts: Sequence[data.GradeCount],
    spec: Any,
) -> tuple[list[Grade], list[fuzzy.MembershipFunction] | None, tuple[int, int] | None]:
    """The grades; membership functions (``None``: scale points) and the common scale."""
    if spec is not None:
        if not isinstance(spec, list | tuple) or len(spec) < 2:
            raise ValidationError("grades: expected a list of at least two grades", field="grades")
        grades, functions = [], []
        for i, item in enumerate(spec):
            where = f"grades[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise ValidationError(
                    f"{where}: expected an object with a name and points", field=where
                )
            extra = sorted(set(item) - {"name", "points", "value"})
            if extra:
                raise ValidationError(f"{where}: unknown field {extra[0]!r}", field=where)
            function = fuzzy.MembershipFunction.checked(item.get("points"), f"{where}.points")
            value = item.get("value", function.peak)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{where}.value: expected a number", field=f"{where}.value")
            functions.append(function)
            grades.append(
                Grade(
                    str(item["name"]), float(value), None, tuple(float(p) for p in function.points)
                )
            )
        if len({g.name for g in grades}) != len(grades):
            raise ValidationError("grades: grade names must be unique", field="grades")
        return grades, functions, None
    scales = sorted({(c.scale_min, c.scale_max) for c in counts})
    if len(scales) != 1:
        shown = ", ".join(f"{lo}-{hi}" for lo, hi in scales)
        raise ValidationError(
            f"grades: the index questions use several scales ({shown}); give membership "
            "functions (grades) over the 0-100 position to evaluate them together",
            field="grades",
        )
    low, high = scales[0]
    labels = _scale_labels(latest_version(versions), (low, high))
    points = range(low, high + 1)
    return (
        [Grade(str(k), 100.0 * (k - low) / (high - low), labels.get(str(k))) for k in points],
        None,
        (low, high),
    )


def _scale_labels(version: SurveyVersion, scale: tuple[int, int]) -> dict[str, str]:
    """The scale labels, when every index question of the version declares the same."""
    found: list[dict[str, str]] = []
    raw = {q["id"]: q for q in version.definition.data.get("questions", [])}
    for q in version.definition.index_questions:
        if (q.scale_min, q.scale_max) != scale:
            continue
        labels = raw.get(q.id, {}).get("scale", {}).get("labels") or {}
        found.append({str(k): str(v) for k, v in labels.items()})
    if found and all(f == found[0] for f in found):
        return found[0]
    return {}


def _membership(
    counts: Sequence[data.GradeCount],
    dimensions: Sequence[str],
    functions: Sequence[fuzzy.MembershipFunction] | None,
    scale: tuple[int, int] | None,
) -> tuple[np.ndarray[Any, Any], list[int]]:
    """``R`` over ``dimensions`` and each dimension's answer count."""
    row = {d: i for i, d in enumerate(dimensions)}
    answers = [0] * len(dimensions)
    for c in counts:
        answers[row[c.dimension]] += c.n
    missing = [d for d, n in zip(dimensions, answers, strict=True) if n == 0]
    if missing:
        raise ValidationError(
            f"responses: dimension {missing[0]!r} has no answers in scope", field="responses"
        )
    if functions is None:
        assert scale is not None
        low, high = scale
        matrix = np.zeros((len(dimensions), high - low + 1))
        for c in counts:
            matrix[row[c.dimension], c.rating - low] += c.n
        return fuzzy.membership_from_counts(matrix), answers
    positions = sorted({c.position for c in counts})
    column = {p: k for k, p in enumerate(positions)}
    matrix = np.zeros((len(dimensions), len(positions)))
    for c in counts:
        matrix[row[c.dimension], column[c.position]] += c.n
    return fuzzy.membership_from_functions(np.array(positions), matrix, functions), answers


def _criteria(spec: Any, dimensions: Sequence[str]) -> tuple[list[str], list[list[int]]] | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or not spec:
        raise ValidationError(
            "criteria: expected an object of criterion -> list of dimensions", field="criteria"
        )
    names, members = [], []
    seen: dict[str, str] = {}
    for name, dims in spec.items():
        if not isinstance(dims, list | tuple) or not dims:
            raise ValidationError(
                f"criteria.{name}: expected a non-empty list of dimensions",
                field=f"criteria.{name}",
            )
        rows = []
        for d in dims:
            if d not in dimensions:
                raise ValidationError(
                    f"criteria.{name}: {d!r} is not a dimension of the survey "
                    f"({', '.join(dimensions)})",
                    field=f"criteria.{name}",
                )
            if d in seen:
                raise ValidationError(
                    f"criteria.{name}: {d!r} is already in criterion {seen[d]!r}",
                    field=f"criteria.{name}",
                )
            seen[d] = str(name)
            rows.append(dimensions.index(d))
        names.append(str(name))
        members.append(rows)
    left = [d for d in dimensions if d not in seen]
    if left:
        raise ValidationError(
            f"criteria: dimension {left[0]!r} is in no criterion", field="criteria"
        )
    return names, members


def _criteria_weights(spec: Any, names: Sequence[str]) -> np.ndarray[Any, Any] | None:
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        if sorted(spec) != sorted(names):
            raise ValidationError(
                f"criteria_weights: expected a weight for each criterion: {', '.join(names)}",
                field="criteria_weights",
            )
        values = [spec[n] for n in names]
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise ValidationError(
                "criteria_weights: weights must be numbers", field="criteria_weights"
            )
        return np.array(values, dtype=np.float64)
    if isinstance(spec, list | tuple):
        result = checked_ahp(spec, field="criteria_weights")
        if len(result.weights) != len(names):
            raise ValidationError(
                f"criteria_weights: {len(result.weights)} rows for {len(names)} criteria",
                field="criteria_weights",
            )
        return np.array(result.weights)
    raise ValidationError(
        "criteria_weights: expected criterion -> weight, or an AHP matrix",
        field="criteria_weights",
    )


def _fuzzy_evaluation(
    counts: Sequence[data.GradeCount],
    dimensions: Sequence[str],
    weights: np.ndarray[Any, Any],
    grades: Sequence[Grade],
    functions: Sequence[fuzzy.MembershipFunction] | None,
    scale: tuple[int, int] | None,
    operator: str,
    criteria: tuple[list[str], list[list[int]]] | None,
    criterion_weights: np.ndarray[Any, Any] | None,
) -> FuzzyEvaluation:
    r, answers = _membership(counts, dimensions, functions, scale)
    values = np.array([g.value for g in grades])
    names = [g.name for g in grades]
    w = fuzzy.check_weights(weights, len(dimensions))
    criterion_of: dict[int, str] = {}
    parts: tuple[FuzzyCriterion, ...] = ()
    if criteria is None:
        total = fuzzy.evaluate(w, r, values, operator)
    else:
        labels, members = criteria
        two = fuzzy.evaluate_two_level(w, r, values, operator, members, criterion_weights)
        total = two.total
        parts = tuple(
            FuzzyCriterion(
                name=label,
                weight=float(two.criterion_weights[k]),
                dimensions=tuple(dimensions[i] for i in members[k]),
                within_weights=floats(two.within[k]),
                vector=floats(two.criteria[k].vector),
                grade=names[two.criteria[k].grade],
                score=two.criteria[k].score,
            )
            for k, label in enumerate(labels)
        )
        criterion_of = {i: labels[k] for k, rows in enumerate(members) for i in rows}
    return FuzzyEvaluation(
        answers=sum(answers),
        vector=floats(total.vector),
        raw=floats(total.raw),
        grade=names[total.grade],
        score=total.score,
        dimensions=tuple(
            FuzzyDimension(d, answers[i], float(w[i]), floats(r[i]), criterion_of.get(i))
            for i, d in enumerate(dimensions)
        ),
        criteria=parts,
    )


def evaluate_fuzzy(
    scorer: Scorer,
    grouped: Scorer | None,
    versions: Sequence[SurveyVersion],
    header: Header,
    *,
    weights: str | None = None,
    ahp_matrix: Sequence[Sequence[float]] | None = None,
    operator: str = "weighted",
    grades: Any = None,
    criteria: Any = None,
    criteria_weights: Any = None,
) -> FuzzyResult:
    """Fuzzy comprehensive evaluation over the dimensions (see :func:`.service.evaluate`)."""
    if operator not in fuzzy.OPERATORS:
        raise ValidationError(
            f"operator: {operator!r} is not one of: {', '.join(fuzzy.OPERATORS)}",
            field="operator",
        )
    if weights is not None and weights not in WEIGHTING_METHODS:
        raise ValidationError(
            f"weights: {weights!r} is not one of: {', '.join(WEIGHTING_METHODS)}",
            field="weights",
        )
    if ahp_matrix is not None and weights not in (None, "ahp"):
        raise ValidationError("ahp_matrix: only with the ahp weights", field="ahp_matrix")
    if criteria_weights is not None and criteria is None:
        raise ValidationError(
            "criteria_weights: only with criteria (the two-level evaluation)",
            field="criteria_weights",
        )
    dimensions = index_dimensions(versions)
    method = weights or ("ahp" if ahp_matrix is not None else None)
    method = method or latest_version(versions).definition.weighting.method
    _, info = question_weights(scorer, versions, method, ahp_matrix)
    found = info["weights"]
    absent = [d for d in dimensions if d not in found]
    if absent:
        raise ValidationError(
            f"weights: no {method} weight for dimension {absent[0]!r} (evaluate one version)",
            field="weights",
        )
    w = np.array([float(found[d]) for d in dimensions])
    counts = data.grade_counts(scorer)
    grade_list, functions, scale = _grades(versions, counts, grades)
    tree = _criteria(criteria, dimensions)
    a = _criteria_weights(criteria_weights, tree[0]) if tree is not None else None
    overall = _fuzzy_evaluation(
        counts, dimensions, w, grade_list, functions, scale, operator, tree, a
    )
    groups: dict[str, FuzzyEvaluation] = {}
    incomplete: list[str] = []
    if grouped is not None:
        by_group: dict[str, list[data.GradeCount]] = {}
        for c in data.grade_counts(grouped):
            by_group.setdefault(str(c.group), []).append(c)
        for label in sorted(by_group):
            rows = by_group[label]
            if {c.dimension for c in rows} != set(dimensions):
                incomplete.append(label)
                continue
            groups[label] = _fuzzy_evaluation(
                rows, dimensions, w, grade_list, functions, scale, operator, tree, a
            )
    weighting = {**info, "method": method, "weights": {d: float(found[d]) for d in dimensions}}
    return FuzzyResult(
        header=header,
        operator=operator,
        weighting=weighting,
        grades=tuple(grade_list),
        overall=overall,
        groups=groups,
        incomplete_groups=tuple(incomplete),
    )
