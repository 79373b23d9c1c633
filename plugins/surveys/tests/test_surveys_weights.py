"""AHP (principal eigenvector, consistency ratio) and entropy weights."""

from __future__ import annotations

import math

import pytest
from crmcore_surveys.weights import (
    RANDOM_INDEX,
    EntropyColumn,
    ahp,
    checked_ahp,
    entropy_weights,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import ValidationError

SAATY = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6, 1 / 7, 1 / 8, 1 / 9]


def test_consistent_matrix_has_exact_weights_and_zero_ratio() -> None:
    """Consistent matrix has exact weights and zero ratio."""
    w = [0.5, 0.3, 0.2]
    matrix = [[wi / wj for wj in w] for wi in w]
    result = ahp(matrix)
    assert all(abs(a - b) < 1e-12 for a, b in zip(result.weights, w, strict=True))
    assert abs(result.lambda_max - 3) < 1e-12
    assert abs(result.consistency_ratio) < 1e-12


def test_known_inconsistent_matrix() -> None:
    # Closed form for 3x3: lambda_max = 1 + t + 1/t with t = (a13 / (a12 a23)) ** (1/3).
    """Known inconsistent matrix."""
    a12, a13, a23 = 3.0, 5.0, 2.0
    matrix = [[1, a12, a13], [1 / a12, 1, a23], [1 / a13, 1 / a23, 1]]
    t = (a13 / (a12 * a23)) ** (1 / 3)
    expected = 1 + t + 1 / t
    result = ahp(matrix)
    assert abs(result.lambda_max - expected) < 1e-9
    assert abs(result.consistency_ratio - (expected - 3) / 2 / 0.58) < 1e-9


@st.composite
def reciprocal(draw: st.DrawFn) -> list[list[float]]:
    """Reciprocal."""
    n = draw(st.integers(min_value=1, max_value=10))
    m = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            v = draw(st.sampled_from(SAATY))
            m[i][j], m[j][i] = v, 1 / v
    return m


@settings(max_examples=50, deadline=None)
@given(reciprocal())
def test_weights_are_the_principal_eigenvector(matrix: list[list[float]]) -> None:
    """Weights are the principal eigenvector."""
    n = len(matrix)
    result = ahp(matrix)
    w = result.weights
    assert abs(sum(w) - 1) < 1e-12 and all(x > 0 for x in w)
    for i in range(n):
        aw = math.fsum(matrix[i][j] * w[j] for j in range(n))
        assert abs(aw - result.lambda_max * w[i]) < 1e-9 * max(1.0, result.lambda_max)
    assert result.lambda_max >= n - 1e-9
    if n > 2:
        ci = (result.lambda_max - n) / (n - 1)
        assert abs(result.consistency_ratio - ci / RANDOM_INDEX[n]) < 1e-12


def test_bad_matrices() -> None:
    """Bad matrices."""
    with pytest.raises(ValidationError, match=r"matrix\[0\]\[0\]: the diagonal must be 1"):
        ahp([[2, 1], [1, 1]])
    with pytest.raises(ValidationError, match=r"matrix\[1\]: has 1 entries, expected 2"):
        ahp([[1, 2], [0.5]])
    with pytest.raises(ValidationError, match=r"matrix\[0\]\[1\]: must be positive"):
        ahp([[1, -2], [0.5, 1]])
    with pytest.raises(ValidationError, match="11 criteria, at most 10"):
        ahp([[1.0] * 11 for _ in range(11)])
    with pytest.raises(ValidationError, match="consistency ratio"):
        checked_ahp([[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]])


def test_entropy_weights_match_the_textbook_steps() -> None:
    # Standardised columns y (m = 4 alternatives).
    """Entropy weights match the textbook steps."""
    columns = [[0.0, 0.5, 1.0, 0.25], [1.0, 1.0, 0.0, 1.0], [0.2, 0.4, 0.6, 0.8]]
    m = 4
    expected_d = []
    for col in columns:
        total = sum(col)
        e = -sum((y / total) * math.log(y / total) for y in col if y > 0) / math.log(m)
        expected_d.append(1 - e)
    expected = [d / sum(expected_d) for d in expected_d]
    aggregates = [EntropyColumn(sum(c), sum(y * math.log(y) for y in c if y > 0)) for c in columns]
    got = entropy_weights(aggregates, m)
    assert all(abs(a - b) < 1e-12 for a, b in zip(got, expected, strict=True))
    assert entropy_weights([EntropyColumn(0, 0), EntropyColumn(0, 0)], 5) == (0.5, 0.5)
