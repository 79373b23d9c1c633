"""Principal component analysis of the dimension scores, and the weights derived from it.

On the correlation matrix of the n x p matrix ``X`` (respondents x dimensions):

* ``z_ri = (x_ri - mean_i) / s_i`` with the sample SD ``s_i`` (divisor n - 1);
  ``R = Z'Z / (n - 1)``; a dimension without variation raises ValidationError;
* eigenvalues ``l_1 >= ... >= l_p`` and unit eigenvectors ``u_j`` of ``R``; each ``u_j``
  signed so that ``sum_i u_ij > 0`` (when that sum is 0, so that its largest ``|u_ij|``,
  the first of equals, is positive);
* explained variance ``l_j / p``; retained: the components with ``l_j > 1`` (Kaiser, the
  default; at least the first), or the fewest whose cumulative share reaches a given
  fraction;
* loadings ``a_ij = u_ij sqrt(l_j)`` (the correlation of dimension ``i`` with component ``j``);
* component scores ``F_rj = sum_i u_ij z_ri``, the composite
  ``F_r = sum_{j<=m} (l_j / L) F_rj`` with ``L = sum_{j<=m} l_j``;
* coefficients ``c_i = sum_{j<=m} (l_j / L) u_ij`` (so ``F_r = sum_i c_i z_ri``) and the
  weights ``w_i = c_i / sum_k c_k``; the 0-100 score of a respondent ``S_r = sum_i w_i x_ri``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from crmcore.errors import ValidationError

Array = NDArray[np.float64]

#: The Kaiser criterion's name: retain components with eigenvalue > 1.
KAISER = "kaiser"
#: Fewest respondents PCA accepts.
MIN_RESPONDENTS = 3


def check_retain(retain: object) -> str | float:
    """``"kaiser"`` or a cumulative share in (0, 1]; ValidationError otherwise."""
    if retain == KAISER:
        return KAISER
    if isinstance(retain, str):
        try:
            retain = float(retain)
        except ValueError:
            raise ValidationError(
                f"retain: expected 'kaiser' or a share in (0, 1], got {retain!r}", field="retain"
            ) from None
    if isinstance(retain, bool) or not isinstance(retain, int | float):
        raise ValidationError(
            f"retain: expected 'kaiser' or a share in (0, 1], got {retain!r}", field="retain"
        )
    if not 0 < retain <= 1:
        raise ValidationError(f"retain: a share must be in (0, 1], got {retain}", field="retain")
    return float(retain)


@frozen
class PCAOutcome:
    """Everything PCA gives; arrays indexed by dimension ``i`` and component ``j``."""

    means: Array
    sds: Array
    correlation: Array
    eigenvalues: Array
    vectors: Array
    explained: Array
    cumulative: Array
    retained: int
    loadings: Array
    coefficients: Array
    weights: Array
    composite: Array
    scores: Array


def signed(vectors: Array) -> Array:
    """Eigenvectors (columns) signed as the module says: column sum > 0, else top entry > 0."""
    out = np.array(vectors, dtype=np.float64, copy=True)
    for j in range(out.shape[1]):
        total = out[:, j].sum()
        if abs(total) > 1e-12:
            sign = 1.0 if total > 0 else -1.0
        else:
            top = int(np.argmax(np.abs(out[:, j])))
            sign = 1.0 if out[top, j] >= 0 else -1.0
        out[:, j] *= sign
    return out


def retained_count(eigenvalues: Array, retain: str | float) -> int:
    """How many components ``retain`` keeps (at least one)."""
    if retain == KAISER:
        return max(1, int(np.sum(eigenvalues > 1.0)))
    share = float(retain)
    cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
    return int(np.searchsorted(cumulative, share - 1e-12) + 1)


def pca(x: Array, retain: str | float = KAISER, names: Sequence[str] | None = None) -> PCAOutcome:
    """PCA of the columns of ``x`` (n x p) on their correlation matrix (see the module)."""
    data = np.asarray(x, dtype=np.float64)
    n, p = data.shape
    label = list(names) if names is not None else [str(i) for i in range(p)]
    if p < 2:
        raise ValidationError("pca: needs at least two dimensions", field="method")
    if n < MIN_RESPONDENTS:
        raise ValidationError(
            f"pca: needs at least {MIN_RESPONDENTS} respondents who answered every dimension, "
            f"got {n}",
            field="responses",
        )
    retain = check_retain(retain)
    means = data.mean(axis=0)
    sds = data.std(axis=0, ddof=1)
    flat = np.flatnonzero(sds <= 1e-12)
    if flat.size:
        raise ValidationError(
            f"pca: dimension {label[flat[0]]!r} has no variation (its correlations are undefined)",
            field="responses",
        )
    z = (data - means) / sds
    correlation = (z.T @ z) / (n - 1)
    values, vectors = np.linalg.eigh(correlation)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    vectors = signed(vectors[:, order])
    m = retained_count(values, retain)
    explained = values / p
    share = values[:m] / values[:m].sum()
    coefficients = vectors[:, :m] @ share
    if abs(coefficients.sum()) <= 1e-12:
        raise ValidationError(
            "pca: the coefficients sum to 0, so the weights c_i / sum c are undefined",
            field="responses",
        )
    weights = coefficients / coefficients.sum()
    loadings = vectors[:, :m] * np.sqrt(values[:m])
    return PCAOutcome(
        means=means,
        sds=sds,
        correlation=correlation,
        eigenvalues=values,
        vectors=vectors,
        explained=explained,
        cumulative=np.cumsum(explained),
        retained=m,
        loadings=loadings,
        coefficients=coefficients,
        weights=weights,
        composite=z @ coefficients,
        scores=data @ weights,
    )
