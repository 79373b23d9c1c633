"""Dimension weights: Saaty's AHP (principal eigenvector, consistency ratio) and entropy weights.

Both work on small inputs (a pairwise matrix of at most 10 dimensions; per-dimension
sums computed in SQL), so the arithmetic here is plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from attrs import frozen

from crmcore.errors import ValidationError

#: Saaty's random consistency index for n = 1..10.
RANDOM_INDEX: Mapping[int, float] = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
}

#: The largest consistency ratio accepted for an AHP matrix.
MAX_CONSISTENCY_RATIO = 0.1

#: Relative tolerance of the reciprocity check ``a[j][i] * a[i][j] == 1`` (1/3 written 0.333).
RECIPROCAL_TOLERANCE = 0.01

_POWER_TOLERANCE = 1e-12
_POWER_MAX_STEPS = 100_000


@frozen
class AHPResult:
    """Weights (summing to 1, one per row of the matrix) and the consistency figures."""

    weights: tuple[float, ...]
    lambda_max: float
    consistency_index: float
    consistency_ratio: float


def check_pairwise_matrix(matrix: Sequence[Sequence[float]], field: str = "matrix") -> int:
    """Check that ``matrix`` is a square, positive, reciprocal matrix with a unit diagonal.

    Returns its size n. Raises ValidationError naming the cell at fault
    (``matrix[1][0]: 0.5 is not the reciprocal of matrix[0][1] = 3``), or for n > 10
    (Saaty's random index table ends there).
    """
    n = len(matrix)
    if n == 0:
        raise ValidationError(f"{field}: must have at least one row", field=field)
    if n > len(RANDOM_INDEX):
        raise ValidationError(
            f"{field}: {n} criteria, at most {len(RANDOM_INDEX)} are supported", field=field
        )
    for i, row in enumerate(matrix):
        if len(row) != n:
            raise ValidationError(
                f"{field}[{i}]: has {len(row)} entries, expected {n} (square matrix)",
                field=f"{field}[{i}]",
            )
        for j, value in enumerate(row):
            cell = f"{field}[{i}][{j}]"
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{cell}: expected a number, got {value!r}", field=cell)
            if not math.isfinite(value) or value <= 0:
                raise ValidationError(f"{cell}: must be positive, got {value}", field=cell)
    for i in range(n):
        if abs(matrix[i][i] - 1.0) > 1e-12:
            cell = f"{field}[{i}][{i}]"
            raise ValidationError(f"{cell}: the diagonal must be 1, got {matrix[i][i]}", field=cell)
        for j in range(i + 1, n):
            if abs(matrix[i][j] * matrix[j][i] - 1.0) > RECIPROCAL_TOLERANCE:
                cell = f"{field}[{j}][{i}]"
                raise ValidationError(
                    f"{cell}: {matrix[j][i]} is not the reciprocal of "
                    f"{field}[{i}][{j}] = {matrix[i][j]}",
                    field=cell,
                )
    return n


def ahp(matrix: Sequence[Sequence[float]], field: str = "matrix") -> AHPResult:
    """Principal-eigenvector weights and consistency of a pairwise comparison matrix.

    Power iteration from the uniform vector, normalising to sum 1 each step, until no
    weight moves by more than 1e-12. ``lambda_max = sum_i (A w)_i`` for the converged
    ``w`` (which sums to 1), ``CI = (lambda_max - n) / (n - 1)``, ``CR = CI / RI(n)``
    with Saaty's RI; CI and CR are 0 for n <= 2. Raises ValidationError for a matrix
    :func:`check_pairwise_matrix` refuses. Does not judge the CR: see :func:`checked_ahp`.
    """
    n = check_pairwise_matrix(matrix, field)
    a = [[float(v) for v in row] for row in matrix]
    w = [1.0 / n] * n
    for _ in range(_POWER_MAX_STEPS):
        product = [math.fsum(a[i][j] * w[j] for j in range(n)) for i in range(n)]
        total = math.fsum(product)
        new = [p / total for p in product]
        delta = max(abs(x - y) for x, y in zip(new, w, strict=True))
        w = new
        if delta <= _POWER_TOLERANCE:
            break
    lambda_max = math.fsum(math.fsum(a[i][j] * w[j] for j in range(n)) for i in range(n))
    if n <= 2:
        ci = cr = 0.0
    else:
        ci = (lambda_max - n) / (n - 1)
        cr = ci / RANDOM_INDEX[n]
    return AHPResult(
        weights=tuple(w), lambda_max=lambda_max, consistency_index=ci, consistency_ratio=cr
    )


def checked_ahp(matrix: Sequence[Sequence[float]], field: str = "matrix") -> AHPResult:
    """:func:`ahp`, refusing a consistency ratio above 0.1 with a ValidationError giving it."""
    result = ahp(matrix, field)
    if result.consistency_ratio > MAX_CONSISTENCY_RATIO:
        raise ValidationError(
            f"{field}: consistency ratio {result.consistency_ratio:.4f} exceeds "
            f"{MAX_CONSISTENCY_RATIO} (CI {result.consistency_index:.4f}, "
            f"lambda_max {result.lambda_max:.4f}); revise the pairwise comparisons",
            field=field,
            value=result.consistency_ratio,
        )
    return result


@frozen
class EntropyColumn:
    """SQL aggregates of one criterion's standardised values ``y`` over the m alternatives.

    ``total`` is ``sum(y)`` and ``y_log_y`` is ``sum(y * ln y)`` (terms with y = 0 left out).
    """

    total: float
    y_log_y: float


def entropy_weights(columns: Sequence[EntropyColumn], m: int) -> tuple[float, ...]:
    """Entropy weights of n criteria from per-criterion aggregates over m alternatives.

    With ``p_ij = y_ij / sum_i y_ij``: ``sum_i p ln p = y_log_y / total - ln(total)``,
    ``e_j = -(1 / ln m) * sum_i p ln p``, ``d_j = 1 - e_j``, ``w_j = d_j / sum d``.
    A criterion without variation (``total == 0``) has ``e_j = 1``. When no criterion
    carries information (all ``d_j == 0``, or m < 2) the weights are equal.
    """
    n = len(columns)
    if n == 0:
        return ()
    if m < 2:
        return tuple([1.0 / n] * n)
    k = 1.0 / math.log(m)
    divergence = []
    for column in columns:
        if column.total <= 0:
            divergence.append(0.0)
            continue
        sum_p_log_p = column.y_log_y / column.total - math.log(column.total)
        entropy = -k * sum_p_log_p
        divergence.append(max(0.0, 1.0 - entropy))
    total = math.fsum(divergence)
    if total <= 0:
        return tuple([1.0 / n] * n)
    return tuple(d / total for d in divergence)
