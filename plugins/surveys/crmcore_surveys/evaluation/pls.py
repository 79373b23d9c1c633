"""PLS path modelling (Wold's algorithm, Lohmoeller's steps), pure numpy.

A model has latent variables ``j = 1..q``, each measured by a block of indicators
(reflective, mode A), and a path matrix ``D`` with ``D[t, s] = 1`` when ``s -> t``
(acyclic; every latent variable has at least one path). The estimation, as R's and
Python's ``plspm`` do it:

1. indicators standardised with the population SD: ``x = (raw - mean) / sd``, ``sd`` with
   divisor n (a constant indicator raises ValidationError);
2. outer weights start at 1; repeat:

   a. outer estimate ``Y_j = X_j w_j``, scaled to mean 0 and population variance 1;
   b. inner weights ``e_ij`` between adjacent ``i``, ``j`` (0 elsewhere): centroid (the
      default, as in plspm) ``sign(cor(Y_i, Y_j))``; factorial ``cor(Y_i, Y_j)``; path:
      for a predecessor ``i`` of ``j`` the coefficient of ``Y_i`` in the least-squares
      regression of ``Y_j`` on all of ``j``'s predecessors, for a successor ``cor(Y_i, Y_j)``;
   c. inner estimate ``Z_j = sum_i e_ij Y_i``;
   d. mode A: ``w_hj = (1/n) sum_r x_rh Z_rj`` (the covariance of indicator and ``Z_j``),
      rescaled so that ``X_j w_j`` has population variance 1;

   until no weight changes by more than the tolerance ``1e-10`` in absolute value
   (``max_h | |w_h new| - |w_h old| |``), at most 1000 rounds (then ValidationError);
3. scores ``Y_j = X_j w_j`` (mean 0, population variance 1); a block whose loadings are
   mostly negative (``sum_h sign(loading) < 0``) has its weights and score negated;
4. loadings ``cor(x_h, Y_j)``; path coefficients: for each endogenous ``j`` the
   least-squares regression of ``Y_j`` on its predecessors (with an intercept, which is
   0), ``R^2 = 1 - SSE / SST``; total effects ``sum_{k>=1} B^k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from attrs import frozen
from numpy.typing import NDArray

from crmcore.errors import ValidationError

Array = NDArray[np.float64]

#: Inner weighting schemes; ``centroid`` is the default (plspm's and R plspm's default).
SCHEMES = ("centroid", "factorial", "path")
DEFAULT_SCHEME = "centroid"
#: Convergence: the largest change of an outer weight (absolute values) in one round.
TOLERANCE = 1e-10
MAX_ITERATIONS = 1000


@frozen
class PathModel:
    """Latent variables, their indicator columns and the paths ``paths[t, s] = 1: s -> t``."""

    names: tuple[str, ...]
    blocks: tuple[tuple[int, ...], ...]
    paths: Array

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        blocks: Sequence[Sequence[int]],
        edges: Sequence[tuple[str, str]],
    ) -> PathModel:
        """A checked model: disjoint non-empty blocks, known names, acyclic, connected LVs."""
        names = tuple(names)
        if len(set(names)) != len(names) or len(blocks) != len(names):
            raise ValidationError("model: one block per latent variable, names unique")
        used: set[int] = set()
        for name, block in zip(names, blocks, strict=True):
            if not block:
                raise ValidationError(f"model: latent variable {name!r} has no indicator")
            if used & set(block):
                raise ValidationError(f"model: an indicator of {name!r} is in two blocks")
            used |= set(block)
        index = {name: i for i, name in enumerate(names)}
        paths = np.zeros((len(names), len(names)))
        for source, target in edges:
            if source not in index or target not in index or source == target:
                raise ValidationError(f"model: bad path {source!r} -> {target!r}")
            paths[index[target], index[source]] = 1.0
        remaining = set(range(len(names)))
        while remaining:
            roots = [j for j in remaining if not any(paths[j, s] for s in remaining)]
            if not roots:
                raise ValidationError("model: the paths form a cycle")
            remaining -= set(roots)
        for j, name in enumerate(names):
            if not paths[j].any() and not paths[:, j].any():
                raise ValidationError(f"model: latent variable {name!r} has no path")
        return cls(names, tuple(tuple(int(h) for h in b) for b in blocks), paths)

    def predecessors(self, j: int) -> list[int]:
        """The latent variables with a path into ``j``."""
        return [int(s) for s in np.flatnonzero(self.paths[j])]

    def successors(self, j: int) -> list[int]:
        """The latent variables ``j`` has a path into."""
        return [int(t) for t in np.flatnonzero(self.paths[:, j])]

    @property
    def endogenous(self) -> list[int]:
        """Latent variables with at least one predecessor."""
        return [j for j in range(len(self.names)) if self.paths[j].any()]


@frozen
class PLSOutcome:
    """Estimates; indicator arrays are in column order, latent ones in model order.

    ``weights`` are the outer weights on the standardised indicators, ``paths[t, s]``
    the coefficient of ``s -> t``, ``r2`` is 0 for exogenous latent variables.
    """

    means: Array
    sds: Array
    weights: Array
    loadings: Array
    scores: Array
    paths: Array
    r2: Array
    total_effects: Array
    iterations: int


def standardise(x: Array, names: Sequence[str] | None = None) -> tuple[Array, Array, Array]:
    """``(z, means, sds)``: each column centred and divided by its population SD."""
    data = np.asarray(x, dtype=np.float64)
    means = data.mean(axis=0)
    sds = data.std(axis=0)
    flat = np.flatnonzero(sds <= 1e-12)
    if flat.size:
        label = names[flat[0]] if names is not None else str(flat[0])
        raise ValidationError(
            f"acsi: indicator {label!r} has no variation (it cannot be standardised)",
            field="responses",
        )
    return (data - means) / sds, means, sds


def _unit(y: Array) -> Array:
    centred = y - y.mean(axis=0)
    sd = centred.std(axis=0)
    if np.any(sd <= 1e-15):
        raise ValidationError("acsi: a latent variable's estimate has no variation")
    result: Array = centred / sd
    return result


def inner_weights(model: PathModel, scores: Array, scheme: str) -> Array:
    """The inner weight matrix ``E`` (``E[i, j]``: weight of ``Y_i`` in ``Z_j``)."""
    n = scores.shape[0]
    correlation = (scores.T @ scores) / n
    adjacency = model.paths + model.paths.T
    if scheme == "centroid":
        result: Array = np.sign(correlation) * adjacency
        return result
    if scheme == "factorial":
        result = correlation * adjacency
        return result
    if scheme == "path":
        e = np.zeros_like(adjacency)
        for j in range(len(model.names)):
            before = model.predecessors(j)
            if before:
                coefficients, *_ = np.linalg.lstsq(scores[:, before], scores[:, j], rcond=None)
                e[before, j] = coefficients
            after = model.successors(j)
            if after:
                e[after, j] = correlation[after, j]
        return e
    raise ValidationError(f"scheme: {scheme!r} is not one of: {', '.join(SCHEMES)}", field="scheme")


def _normalised(z: Array, w: Array) -> Array:
    sd = (z @ w).std(axis=0)
    if np.any(sd <= 1e-15):
        raise ValidationError("acsi: a latent variable's estimate has no variation")
    result: Array = w / sd
    return result


def estimate(
    x: Array,
    model: PathModel,
    scheme: str = DEFAULT_SCHEME,
    *,
    tolerance: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
    names: Sequence[str] | None = None,
) -> PLSOutcome:
    """Estimate ``model`` on the raw indicator matrix ``x`` (n x p); see the module."""
    if scheme not in SCHEMES:
        raise ValidationError(
            f"scheme: {scheme!r} is not one of: {', '.join(SCHEMES)}", field="scheme"
        )
    z, means, sds = standardise(x, names)
    n, p = z.shape
    q = len(model.names)
    outer = np.zeros((p, q))
    for j, block in enumerate(model.blocks):
        outer[list(block), j] = 1.0
    outer = _normalised(z, outer)
    previous = outer.sum(axis=1)
    iterations = 0
    while True:
        iterations += 1
        y = z @ outer
        inner = inner_weights(model, y, scheme)
        proxy = y @ inner
        fresh = np.zeros_like(outer)
        for j, block in enumerate(model.blocks):
            rows = list(block)
            fresh[rows, j] = z[:, rows].T @ proxy[:, j] / n
        outer = _normalised(z, fresh)
        current = outer.sum(axis=1)
        change = float(np.max(np.abs(np.abs(current) - np.abs(previous))))
        previous = current
        if change < tolerance:
            break
        if iterations >= max_iterations:
            raise ValidationError(
                f"acsi: PLS did not converge in {max_iterations} iterations "
                f"(last change {change:.3g})",
                field="responses",
            )
    scores = _unit(z @ outer)
    loadings = np.zeros(p)
    for j, block in enumerate(model.blocks):
        rows = list(block)
        block_loadings = z[:, rows].T @ scores[:, j] / n
        if np.sum(np.sign(block_loadings)) < 0:
            outer[:, j] = -outer[:, j]
            scores[:, j] = -scores[:, j]
            block_loadings = -block_loadings
        loadings[rows] = block_loadings
    paths = np.zeros((q, q))
    r2 = np.zeros(q)
    for j in model.endogenous:
        before = model.predecessors(j)
        design = np.column_stack([np.ones(n), scores[:, before]])
        coefficients, *_ = np.linalg.lstsq(design, scores[:, j], rcond=None)
        paths[j, before] = coefficients[1:]
        residual = scores[:, j] - design @ coefficients
        total = scores[:, j] - scores[:, j].mean()
        r2[j] = 1.0 - float(residual @ residual) / float(total @ total)
    total_effects = np.zeros_like(paths)
    power = np.eye(q)
    for _ in range(q):
        power = power @ paths
        total_effects += power
    return PLSOutcome(
        means=means,
        sds=sds,
        weights=outer.sum(axis=1),
        loadings=loadings,
        scores=scores,
        paths=paths,
        r2=r2,
        total_effects=total_effects,
        iterations=iterations,
    )


Statistic = Callable[[Array, PLSOutcome], Array]


@frozen
class BootstrapOutcome:
    """The statistic over the successful resamples (rows), and how many failed."""

    samples: Array
    failed: int

    def interval(self, level: float = 0.95) -> tuple[Array, Array]:
        """Percentile interval: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles.

        numpy's default (linear) interpolation between order statistics.
        """
        low = 100 * (1 - level) / 2
        bounds = np.percentile(self.samples, [low, 100 - low], axis=0)
        return bounds[0], bounds[1]

    def standard_error(self) -> Array:
        """The SD of the statistic over the resamples (divisor B - 1)."""
        result: Array = self.samples.std(axis=0, ddof=1)
        return result


def bootstrap(
    x: Array,
    model: PathModel,
    statistic: Statistic,
    draws: int,
    rng: np.random.Generator,
    scheme: str = DEFAULT_SCHEME,
) -> BootstrapOutcome:
    """Re-estimate on ``draws`` resamples of the rows (with replacement, ``rng.integers``).

    A resample the model cannot be estimated on (an indicator without variation, no
    convergence) is skipped and counted in ``failed``.
    """
    data = np.asarray(x, dtype=np.float64)
    n = data.shape[0]
    rows: list[Array] = []
    failed = 0
    for _ in range(draws):
        picked = data[rng.integers(0, n, size=n)]
        try:
            rows.append(statistic(picked, estimate(picked, model, scheme)))
        except ValidationError:
            failed += 1
    samples = np.vstack(rows) if rows else np.zeros((0, 0))
    return BootstrapOutcome(samples=samples, failed=failed)
