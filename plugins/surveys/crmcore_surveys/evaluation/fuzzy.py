"""Fuzzy comprehensive evaluation, single- and two-level (pure numpy, no database).

* the factor set is the survey's dimensions ``i = 1..m``, the evaluation set its grades
  ``j = 1..g``;
* the membership matrix ``R`` (m x g) has ``r_ij``, the degree to which dimension ``i``
  is judged grade ``j``: by default the share of the dimension's answers at grade
  ``j`` (the rating scale's points are the grades; a dimension's answers to all its
  questions pooled), or, with membership functions, the mean over its answers of
  each answer's membership degrees (normalised to sum 1 per answer);
* ``B = W o R`` with a weight vector ``W`` (sum 1) and a composition operator:

  - ``weighted``, M(.,+): ``b_j = sum_i w_i r_ij`` (sums to 1 already: no normalisation);
  - ``maxmin``, M(^,v): ``b_j = max_i min(w_i, r_ij)``, then normalised to sum 1;

* the maximum-membership grade is ``argmax_j b_j`` (the first on a tie) and the score
  ``S = sum_j b_j v_j`` with ``v_j`` the grade's value on 0-100;
* two levels: dimensions grouped into criteria ``k``; each criterion's ``B_k`` from its
  dimensions' rows with the weights ``W`` restricted to it and renormalised, then
  ``B = A o [B_1; ...; B_K]`` with the criterion weights ``A``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from crmcore.errors import ValidationError

Array = NDArray[np.float64]

#: Composition operators: M(.,+) weighted average and M(^,v) max-min.
OPERATORS = ("weighted", "maxmin")


@frozen
class MembershipFunction:
    """A triangular ``(a, b, c)`` or trapezoidal ``(a, b, c, d)`` membership function.

    Defined on an answer's position on its scale, 0-100 (``100 (r - min) / (max - min)``):
    0 outside ``[a, d]``, rising linearly on ``(a, b)``, 1 on ``[b, c]``, falling
    linearly on ``(c, d)``; a triangle is the trapezoid with ``b = c``. ``a = b`` (or
    ``c = d``) makes a shoulder: ``(0, 0, 25)`` is 1 at 0, falling to 0 at 25.
    """

    points: tuple[float, ...]

    @classmethod
    def checked(cls, points: Any, field: str = "membership") -> MembershipFunction:
        """From 3 or 4 non-decreasing finite numbers; ValidationError naming ``field``."""
        if not isinstance(points, list | tuple) or len(points) not in (3, 4):
            raise ValidationError(
                f"{field}: expected 3 (triangular) or 4 (trapezoidal) points, got {points!r}",
                field=field,
            )
        values: list[float] = []
        for value in points:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{field}: {value!r} is not a number", field=field)
            if not np.isfinite(value):
                raise ValidationError(f"{field}: {value!r} is not finite", field=field)
            values.append(float(value))
        if any(b < a for a, b in itertools.pairwise(values)):
            raise ValidationError(f"{field}: points must not decrease, got {values}", field=field)
        return cls(tuple(values))

    @property
    def corners(self) -> tuple[float, float, float, float]:
        """``(a, b, c, d)``, a triangle's peak repeated."""
        p = self.points
        if len(p) == 3:
            return p[0], p[1], p[1], p[2]
        return p[0], p[1], p[2], p[3]

    @property
    def peak(self) -> float:
        """The middle of the plateau ``(b + c) / 2``: a grade's default value."""
        _, b, c, _ = self.corners
        return (b + c) / 2

    def __call__(self, x: Array) -> Array:
        """Membership degrees of the positions ``x`` (0-100)."""
        a, b, c, d = self.corners
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros_like(x)
        out[(x >= b) & (x <= c)] = 1.0
        if b > a:
            rising = (x > a) & (x < b)
            out[rising] = (x[rising] - a) / (b - a)
        if d > c:
            falling = (x > c) & (x < d)
            out[falling] = (d - x[falling]) / (d - c)
        return out


def membership_from_counts(counts: Array) -> Array:
    """``r_ij = n_ij / sum_j n_ij``: each row of answer counts at each grade as shares.

    A row without answers raises ValueError (the caller names the dimension).
    """
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1)
    if np.any(totals <= 0):
        raise ValueError(f"rows without answers: {np.flatnonzero(totals <= 0).tolist()}")
    result: Array = counts / totals[:, None]
    return result


def answer_memberships(positions: Array, functions: Sequence[MembershipFunction]) -> Array:
    """Each answer position's membership degrees in every grade, normalised to sum 1.

    Returns a (len(positions) x g) array. A position no function covers (all degrees 0)
    raises ValidationError.
    """
    positions = np.asarray(positions, dtype=np.float64)
    degrees = np.column_stack([f(positions) for f in functions]) if len(positions) else None
    if degrees is None:
        return np.zeros((0, len(functions)))
    totals = degrees.sum(axis=1)
    if np.any(totals <= 0):
        lost = positions[totals <= 0][0]
        raise ValidationError(
            f"grades: an answer at position {lost:g} (0-100) belongs to no grade; "
            "the membership functions must cover 0-100",
            field="grades",
        )
    result: Array = degrees / totals[:, None]
    return result


def membership_from_functions(
    positions: Array, counts: Array, functions: Sequence[MembershipFunction]
) -> Array:
    """``r_ij = sum_k n_ik mu_j(x_k) / sum_k n_ik`` for answer positions ``x_k``.

    ``counts`` is (m x len(positions)): how many answers of dimension ``i`` are at
    position ``x_k``; ``mu`` are the per-answer normalised degrees
    (:func:`answer_memberships`).
    """
    mu = answer_memberships(positions, functions)
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1)
    if np.any(totals <= 0):
        raise ValueError(f"rows without answers: {np.flatnonzero(totals <= 0).tolist()}")
    result: Array = (counts @ mu) / totals[:, None]
    return result


def check_weights(weights: Array, m: int) -> Array:
    """``weights`` as a float vector of length m, non-negative, rescaled to sum 1."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,):
        raise ValidationError(f"weights: expected {m} weights, got {w.shape}", field="weights")
    if np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValidationError(
            f"weights: must be non-negative with a positive sum, got {w.tolist()}", field="weights"
        )
    result: Array = w / w.sum()
    return result


def compose(weights: Array, membership: Array, operator: str) -> tuple[Array, Array]:
    """``(raw, B)``: the composition ``W o R`` before and after normalisation.

    ``weighted``: ``b_j = sum_i w_i r_ij`` (``B = raw``: with W and the rows of R summing
    to 1, B sums to 1). ``maxmin``: ``b_j = max_i min(w_i, r_ij)``, ``B = raw / sum(raw)``.
    """
    r = np.asarray(membership, dtype=np.float64)
    w = check_weights(weights, r.shape[0])
    if operator == "weighted":
        raw: Array = w @ r
        return raw, raw
    if operator == "maxmin":
        raw = np.max(np.minimum(w[:, None], r), axis=0)
        total = raw.sum()
        return raw, raw / total if total > 0 else raw
    raise ValidationError(
        f"operator: {operator!r} is not one of: {', '.join(OPERATORS)}", field="operator"
    )


@frozen
class FuzzyOutcome:
    """The result of one composition: ``B`` (and before normalisation), grade, score."""

    raw: Array
    vector: Array
    grade: int
    score: float


def grade_values_of_scale(points: int) -> Array:
    """The 0-100 values of ``points`` equally spaced scale points: ``100 (k - 1) / (g - 1)``."""
    return np.linspace(0.0, 100.0, points)


def outcome(raw: Array, vector: Array, values: Array) -> FuzzyOutcome:
    """Maximum-membership grade (the first maximum) and ``S = sum_j b_j v_j``."""
    return FuzzyOutcome(
        raw=raw,
        vector=vector,
        grade=int(np.argmax(vector)),
        score=float(np.dot(vector, values)),
    )


def evaluate(weights: Array, membership: Array, values: Array, operator: str) -> FuzzyOutcome:
    """Single-level fuzzy comprehensive evaluation ``B = W o R`` with its grade and score."""
    raw, vector = compose(weights, membership, operator)
    return outcome(raw, vector, np.asarray(values, dtype=np.float64))


@frozen
class TwoLevelOutcome:
    """Each criterion's outcome and weights within it, the criterion weights, the total."""

    criteria: tuple[FuzzyOutcome, ...]
    within: tuple[Array, ...]
    criterion_weights: Array
    total: FuzzyOutcome


def within_weights(weights: Array, members: Sequence[int]) -> Array:
    """The weights of a criterion's dimensions, ``w_i / sum of w over the criterion``.

    Equal weights when they all are 0 (e.g. entropy weights of constant dimensions).
    """
    part = np.asarray(weights, dtype=np.float64)[list(members)]
    total = part.sum()
    if total <= 0:
        return np.full(len(members), 1.0 / len(members))
    result: Array = part / total
    return result


def evaluate_two_level(
    weights: Array,
    membership: Array,
    values: Array,
    operator: str,
    criteria: Sequence[Sequence[int]],
    criterion_weights: Array | None = None,
) -> TwoLevelOutcome:
    """Two-level evaluation: each criterion's ``B_k``, then ``B = A o [B_1; ...; B_K]``.

    ``criteria`` lists each criterion's dimension rows (every row in exactly one);
    ``criterion_weights`` ``A`` default ``a_k = sum of W over criterion k`` (with the
    weighted operator the total then equals the single-level ``W o R``).
    """
    r = np.asarray(membership, dtype=np.float64)
    w = check_weights(weights, r.shape[0])
    seen = sorted(i for members in criteria for i in members)
    if seen != list(range(r.shape[0])):
        raise ValidationError(
            "criteria: every dimension must belong to exactly one criterion", field="criteria"
        )
    v = np.asarray(values, dtype=np.float64)
    outcomes: list[FuzzyOutcome] = []
    within: list[Array] = []
    for members in criteria:
        part = within_weights(w, members)
        within.append(part)
        outcomes.append(evaluate(part, r[list(members)], v, operator))
    if criterion_weights is None:
        a = np.array([w[list(members)].sum() for members in criteria])
    else:
        a = np.asarray(criterion_weights, dtype=np.float64)
    a = check_weights(a, len(criteria))
    second = np.vstack([o.vector for o in outcomes])
    return TwoLevelOutcome(
        criteria=tuple(outcomes),
        within=tuple(within),
        criterion_weights=a,
        total=evaluate(a, second, v, operator),
    )
