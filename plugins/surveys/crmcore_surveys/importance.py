"""Driver analysis beyond correlation: relative importance from a multiple regression, and IPA.

The data are the **complete responses** in scope: those answering the overall
question and every dimension. For response i, ``x_ij`` is its score on dimension
j (the mean of its answers to j's index questions, each on 0-100) and ``y_i`` its
overall answer on 0-100; SQL builds that matrix (one ``GROUP BY`` per response,
pivoted by conditional aggregation, :func:`driver_matrix`) and numpy does the rest:

* ``R`` is the Pearson correlation matrix of ``(x_1 .. x_k, y)`` (``R_xx`` among the
  dimensions, ``r_xy`` with the overall answer).
* **Standardised coefficients** ``beta``: the OLS fit of the z-scores of ``y`` on the
  z-scores of the x's (``numpy.linalg.lstsq``; z = (v - mean) / sample SD), equal
  to ``R_xx^-1 r_xy``. ``R^2 = sum_j beta_j r_jy``.
* **Relative weights** (Johnson 2000): with ``R_xx = V diag(lambda) V'`` and
  ``L = V diag(sqrt(lambda)) V'``, ``b = L^-1 r_xy`` and ``eps_j = sum_k L_jk^2 b_k^2``;
  ``sum_j eps_j = R^2``. The **importance** of j is its share ``100 eps_j / R^2`` (%).
* **Shapley decomposition of R^2** (LMG, general dominance), exact for up to
  :data:`MAX_SHAPLEY_DIMENSIONS` dimensions by enumerating every subset S:
  ``phi_j = sum_{S without j} |S|! (k - |S| - 1)! / k! (R^2(S + j) - R^2(S))`` with
  ``R^2(S) = r_S' R_SS^-1 r_S``; reported as the share ``100 phi_j / R^2``.
* **95% intervals**: percentile bootstrap: ``resamples`` resamples of the complete
  responses drawn with replacement by ``numpy.random.default_rng(seed)``, each
  refitted from its own correlation matrix; the interval is the 2.5th and 97.5th
  percentile (numpy's linear interpolation) of the resampled values.

A dimension that does not vary over the complete responses is left out of the model
(its figures are ``None``); in a resample, a constant column is uncorrelated with
everything. Inverses are Moore-Penrose pseudo-inverses, so collinear dimensions
share their importance instead of failing.

The **importance-performance grid** (:func:`ipa_grid`, Martilla and James 1977)
puts each dimension at (importance = relative-weight share %, performance = the
dimension's score 0-100 from the report's dimension table) and splits both axes at
the mean over the dimensions: ``importance >= mean`` is high, ``performance >=
mean`` is high.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import case, func, select

from crmcore_surveys.dimensions import OVERALL, response_scores
from crmcore_surveys.scorer import Scorer

#: Resamples of the percentile bootstrap unless told otherwise.
DEFAULT_RESAMPLES = 1000
#: Seed of the bootstrap's ``numpy.random.default_rng`` unless told otherwise.
DEFAULT_SEED = 0
#: The Shapley decomposition enumerates 2^k subsets: given for k up to this.
MAX_SHAPLEY_DIMENSIONS = 10
#: Quadrant names of the importance-performance grid by (importance high, performance high).
QUADRANTS: Mapping[tuple[bool, bool], str] = {
    (True, False): "concentrate here",
    (True, True): "keep up the good work",
    (False, False): "low priority",
    (False, True): "possible overkill",
}

_EPS = 1e-12

FloatArray = NDArray[np.float64]


def driver_matrix(
    scorer: Scorer, overall: Mapping[int, str], dimensions: Sequence[str]
) -> FloatArray:
    """The complete responses as an ``n x (k + 1)`` array: ``x_1 .. x_k`` then ``y`` (0-100).

    ``overall`` maps survey version id to its overall question; rows in response id order.
    """
    if not overall or not dimensions:
        return np.zeros((0, len(dimensions) + 1))
    per = response_scores(scorer, overall)
    names = [*dimensions, OVERALL]
    columns = [
        func.max(case((per.c.dim == name, per.c.x))).label(f"c{i}") for i, name in enumerate(names)
    ]
    pivot = select(per.c.rid, *columns).group_by(per.c.rid).subquery()
    query = (
        select(*(pivot.c[f"c{i}"] for i in range(len(names))))
        .where(*(pivot.c[f"c{i}"].is_not(None) for i in range(len(names))))
        .order_by(pivot.c.rid)
    )
    rows = scorer.connection.execute(query).all()
    if not rows:
        return np.zeros((0, len(names)))
    return np.asarray([[float(v) for v in row] for row in rows], dtype=np.float64)


def correlation_matrix(data: FloatArray) -> FloatArray:
    """Pearson correlations of the columns; a constant column correlates 0 (diagonal 1)."""
    centred = data - data.mean(axis=0)
    cov = centred.T @ centred
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    varying = sd > _EPS * max(1.0, float(sd.max(initial=0.0)))
    scale = np.where(varying, sd, 1.0)
    corr = cov / np.outer(scale, scale)
    corr[~varying, :] = 0.0
    corr[:, ~varying] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.asarray(np.clip(corr, -1.0, 1.0), dtype=np.float64)


def standardised_coefficients(data: FloatArray) -> FloatArray:
    """OLS coefficients of z(y) on z(x_1 .. x_k) by ``numpy.linalg.lstsq`` (no intercept needed)."""
    sd = data.std(axis=0, ddof=1)
    z = (data - data.mean(axis=0)) / np.where(sd > _EPS, sd, 1.0)
    beta, *_ = np.linalg.lstsq(z[:, :-1], z[:, -1], rcond=None)
    return np.asarray(beta, dtype=np.float64)


def _split(corr: FloatArray) -> tuple[FloatArray, FloatArray]:
    return corr[..., :-1, :-1], corr[..., :-1, -1]


def coefficients_from(corr: FloatArray) -> FloatArray:
    """``beta = R_xx^+ r_xy`` for one or a stack of correlation matrices (y last)."""
    rxx, rxy = _split(corr)
    return np.asarray(np.einsum("...ij,...j->...i", np.linalg.pinv(rxx), rxy), dtype=np.float64)


def relative_weights(corr: FloatArray) -> FloatArray:
    """Johnson's relative weights ``eps_j`` (summing to R^2), for one or a stack of matrices."""
    rxx, rxy = _split(corr)
    values, vectors = np.linalg.eigh(rxx)
    root = np.sqrt(np.clip(values, 0.0, None))
    lam = np.einsum("...ik,...k,...jk->...ij", vectors, root, vectors)
    b = np.einsum("...ij,...j->...i", np.linalg.pinv(lam), rxy)
    return np.asarray(np.einsum("...jk,...k->...j", lam * lam, b * b), dtype=np.float64)


def _quadratic(block: FloatArray, vector: FloatArray) -> FloatArray:
    """``v' B^+ v`` for stacks of symmetric blocks: LU solves, pseudo-inverse where they fail."""
    try:
        solved = np.linalg.solve(block, vector[..., None])[..., 0]
        r2 = np.einsum("...i,...i->...", vector, solved)
    except np.linalg.LinAlgError:
        r2 = np.full(block.shape[:-2], np.nan)
    bad = ~np.isfinite(r2) | (r2 < -1e-9) | (r2 > 1.0 + 1e-9)
    if bad.any():
        fixed = np.einsum("...ij,...j->...i", np.linalg.pinv(block[bad]), vector[bad])
        r2[bad] = np.einsum("...i,...i->...", vector[bad], fixed)
    return np.asarray(r2, dtype=np.float64)


def subset_r2(corr: FloatArray) -> dict[frozenset[int], FloatArray]:
    """``R^2(S)`` of every subset S of the predictors (the empty set: 0), stacked like ``corr``."""
    rxx, rxy = _split(corr)
    k = rxx.shape[-1]
    out: dict[frozenset[int], FloatArray] = {frozenset(): np.zeros(corr.shape[:-2])}
    for size in range(1, k + 1):
        subsets = list(combinations(range(k), size))
        index = np.asarray(subsets)
        block = rxx[..., index[:, :, None], index[:, None, :]]
        vector = rxy[..., index]
        r2 = _quadratic(block, vector)
        for position, subset in enumerate(subsets):
            out[frozenset(subset)] = r2[..., position]
    return out


def shapley_r2(corr: FloatArray) -> FloatArray:
    """The exact Shapley decomposition of R^2 over the predictors (summing to R^2)."""
    k = corr.shape[-1] - 1
    r2 = subset_r2(corr)
    total = np.zeros((*corr.shape[:-2], k))
    for j in range(k):
        others = [i for i in range(k) if i != j]
        for size in range(k):
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for subset in combinations(others, size):
                base = frozenset(subset)
                total[..., j] += weight * (r2[base | {j}] - r2[base])
    return total


def _shares(parts: FloatArray, r2: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = 100.0 * parts / r2[..., None]
    return np.asarray(np.where(r2[..., None] > _EPS, shares, np.nan), dtype=np.float64)


def _interval(samples: FloatArray) -> tuple[list[float | None], list[float | None]]:
    if samples.shape[0] == 0:
        return [None] * samples.shape[1], [None] * samples.shape[1]
    low: list[float | None] = []
    high: list[float | None] = []
    for column in samples.T:
        finite = column[np.isfinite(column)]
        if finite.size == 0:
            low.append(None)
            high.append(None)
            continue
        lo, hi = np.percentile(finite, [2.5, 97.5])
        low.append(float(lo))
        high.append(float(hi))
    return low, high


def _value(number: float) -> float | None:
    return float(number) if math.isfinite(number) else None


def relative_importance(
    data: FloatArray,
    dimensions: Sequence[str],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Standardised coefficients, relative weights and Shapley shares with bootstrap intervals.

    ``data`` is :func:`driver_matrix`'s array. Needs at least ``k + 2`` complete
    responses over the dimensions that vary and a varying overall answer; otherwise
    ``r2`` is ``None`` and every item's figures are ``None``.
    """
    n = int(data.shape[0])
    sd = data.std(axis=0, ddof=1) if n >= 2 else np.zeros(data.shape[1])
    used = [j for j in range(len(dimensions)) if sd[j] > _EPS]
    k = len(used)
    result: dict[str, Any] = {
        "n": n,
        "r2": None,
        "r2_ci_low": None,
        "r2_ci_high": None,
        "resamples": resamples,
        "seed": seed,
        "shapley": k <= MAX_SHAPLEY_DIMENSIONS,
        "items": [
            {
                "dimension": d,
                "beta": None,
                "beta_ci_low": None,
                "beta_ci_high": None,
                "raw_weight": None,
                "importance": None,
                "importance_ci_low": None,
                "importance_ci_high": None,
                "shapley": None,
                "shapley_ci_low": None,
                "shapley_ci_high": None,
            }
            for d in dimensions
        ],
    }
    if k == 0 or n < k + 2 or sd[-1] <= _EPS:
        return result
    model = data[:, [*used, data.shape[1] - 1]]
    corr = correlation_matrix(model)
    beta = standardised_coefficients(model)
    raw = relative_weights(corr)
    r2 = float(np.dot(beta, corr[:-1, -1]))
    importance = _shares(raw, np.asarray(r2))
    shapley = _shares(shapley_r2(corr), np.asarray(r2)) if result["shapley"] else None
    rng = np.random.default_rng(seed)
    stack = (
        np.stack([correlation_matrix(model[rng.integers(0, n, size=n)]) for _ in range(resamples)])
        if resamples > 0
        else np.zeros((0, k + 1, k + 1))
    )
    boot_beta = coefficients_from(stack)
    boot_raw = relative_weights(stack)
    boot_r2 = np.einsum("bj,bj->b", boot_beta, stack[:, :-1, -1])
    beta_low, beta_high = _interval(boot_beta)
    imp_low, imp_high = _interval(_shares(boot_raw, boot_r2))
    if shapley is not None:
        shap_low, shap_high = _interval(_shares(shapley_r2(stack), boot_r2))
    r2_low, r2_high = _interval(boot_r2[:, None])
    result.update(r2=r2, r2_ci_low=r2_low[0], r2_ci_high=r2_high[0])
    for position, j in enumerate(used):
        item = result["items"][j]
        item.update(
            beta=float(beta[position]),
            beta_ci_low=beta_low[position],
            beta_ci_high=beta_high[position],
            raw_weight=float(raw[position]),
            importance=_value(float(importance[position])),
            importance_ci_low=imp_low[position],
            importance_ci_high=imp_high[position],
        )
        if shapley is not None:
            item.update(
                shapley=_value(float(shapley[position])),
                shapley_ci_low=shap_low[position],
                shapley_ci_high=shap_high[position],
            )
    return result


def ipa_grid(
    importance: Mapping[str, float | None], performance: Mapping[str, float | None]
) -> dict[str, Any]:
    """The importance-performance grid of the dimensions having both figures.

    Splits at the mean importance and the mean performance over those dimensions;
    each item gets its quadrant (:data:`QUADRANTS`). Items sorted by importance,
    highest first, then by name.
    """
    both = {
        d: (float(i), float(p))
        for d, i in importance.items()
        if i is not None and (p := performance.get(d)) is not None
    }
    if not both:
        return {"importance_split": None, "performance_split": None, "items": []}
    importance_split = sum(i for i, _ in both.values()) / len(both)
    performance_split = sum(p for _, p in both.values()) / len(both)
    ordered = sorted(both.items(), key=lambda entry: (-entry[1][0], entry[0]))
    items = [
        {
            "dimension": d,
            "importance": i,
            "performance": p,
            "quadrant": QUADRANTS[(i >= importance_split, p >= performance_split)],
        }
        for d, (i, p) in ordered
    ]
    return {
        "importance_split": importance_split,
        "performance_split": performance_split,
        "items": items,
    }
