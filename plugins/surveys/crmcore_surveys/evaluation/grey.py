"""Grey relational analysis (Deng), pure numpy.

The data is a matrix with one column per *variable*; each column is normalised over
its observations (the rows):

* ``minmax`` (the default): ``x* = (x - min) / (max - min)``;
* ``mean``: ``x* = x / mean``.

A column without spread (min-max) or with mean 0 (mean) raises ValidationError.

Then, with a reference sequence ``x0(k)`` and comparison sequences ``x_i(k)``
(``k = 1..K``): ``D_i(k) = |x0(k) - x_i(k)|``, ``Dmin`` and ``Dmax`` the smallest and
largest ``D`` over every ``i`` and ``k``, the relational coefficient
``xi_i(k) = (Dmin + rho Dmax) / (D_i(k) + rho Dmax)`` (distinguishing coefficient
``0 < rho <= 1``, default 0.5; every ``xi`` is 1 when ``Dmax = 0``) and the relational
grade ``g_i = (1 / K) sum_k xi_i(k)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from crmcore.errors import ValidationError

Array = NDArray[np.float64]

#: Normalisations of each variable over its observations.
NORMALISATIONS = ("minmax", "mean")
#: The default distinguishing coefficient.
DEFAULT_RHO = 0.5


def check_rho(rho: object) -> float:
    """The distinguishing coefficient as a float in (0, 1]; ValidationError otherwise."""
    if isinstance(rho, bool) or not isinstance(rho, int | float) or not np.isfinite(rho):
        raise ValidationError(f"rho: expected a number in (0, 1], got {rho!r}", field="rho")
    if not 0 < rho <= 1:
        raise ValidationError(f"rho: must be in (0, 1], got {rho}", field="rho", value=rho)
    return float(rho)


def normalise(matrix: Array, method: str, names: Sequence[str] | None = None) -> Array:
    """Each column normalised over the rows (``minmax`` or ``mean``, see the module)."""
    x = np.asarray(matrix, dtype=np.float64)
    label = list(names) if names is not None else [str(j) for j in range(x.shape[1])]
    if method == "minmax":
        low, high = x.min(axis=0), x.max(axis=0)
        spread = high - low
        flat = np.flatnonzero(spread <= 1e-12)
        if flat.size:
            raise ValidationError(
                f"normalisation: {label[flat[0]]!r} has no variation "
                "(min-max normalisation divides by max - min)",
                field="normalisation",
            )
        result: Array = (x - low) / spread
        return result
    if method == "mean":
        mean = x.mean(axis=0)
        zero = np.flatnonzero(np.abs(mean) <= 1e-12)
        if zero.size:
            raise ValidationError(
                f"normalisation: {label[zero[0]]!r} has mean 0 (mean normalisation divides by it)",
                field="normalisation",
            )
        result = x / mean
        return result
    raise ValidationError(
        f"normalisation: {method!r} is not one of: {', '.join(NORMALISATIONS)}",
        field="normalisation",
    )


@frozen
class GreyOutcome:
    """Relational coefficients ``xi`` (K x m), grades (m), ``Dmin`` and ``Dmax``."""

    coefficients: Array
    grades: Array
    delta_min: float
    delta_max: float


def relational(reference: Array, comparisons: Array, rho: float = DEFAULT_RHO) -> GreyOutcome:
    """Coefficients and grades of the columns of ``comparisons`` (K x m) to ``reference`` (K)."""
    rho = check_rho(rho)
    x0 = np.asarray(reference, dtype=np.float64)
    xs = np.asarray(comparisons, dtype=np.float64)
    if xs.ndim != 2 or xs.shape[0] != x0.shape[0] or xs.shape[0] == 0:
        raise ValidationError(
            f"grey: comparison sequences of shape {xs.shape} do not fit a reference of "
            f"length {x0.shape[0]}"
        )
    delta = np.abs(xs - x0[:, None])
    dmin, dmax = float(delta.min()), float(delta.max())
    # Every sequence equals the reference: each coefficient is 1.
    xi = np.ones_like(delta) if dmax <= 0 else (dmin + rho * dmax) / (delta + rho * dmax)
    return GreyOutcome(coefficients=xi, grades=xi.mean(axis=0), delta_min=dmin, delta_max=dmax)


def ranks(grades: Array) -> list[int]:
    """1 for the highest grade, 2 for the next ...; ties keep their order of appearance."""
    order = sorted(range(len(grades)), key=lambda i: (-float(grades[i]), i))
    result = [0] * len(grades)
    for position, index in enumerate(order, 1):
        result[index] = position
    return result
