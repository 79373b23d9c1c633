"""BG/NBD (Fader, Hardie and Lee 2005): how many purchases a customer will make, and P(alive).

Per customer the model sees ``x`` (repeat purchase occasions: purchase days after the
first), ``t_x`` (time from the first to the last purchase day) and ``T`` (time from the
first purchase day to the end of the calibration period), all in one time unit.

Assumptions: while alive a customer buys as a Poisson process of rate ``lambda``, with
``lambda ~ Gamma(r, alpha)`` across customers; after each purchase they drop out with
probability ``p``, ``p ~ Beta(a, b)`` across customers; rates and drop-out are independent.

Log-likelihood of one customer (``B`` the beta function)::

    L = Gamma(r + x) alpha^r / (Gamma(r) (alpha + T)^(r + x)) * B(a, b + x) / B(a, b)
        + [x > 0] Gamma(r + x) alpha^r / (Gamma(r) (alpha + t_x)^(r + x))
          * B(a + 1, b + x - 1) / B(a, b)

computed in logs with ``logaddexp``. Maximised over ``log`` of the four parameters
(L-BFGS-B, numpy/scipy; a Nelder-Mead polish when it stops short), customers with
equal ``(x, t_x, T)`` counted once with a weight.
Standard errors are the square roots of the diagonal of the inverse Hessian of the
negative log-likelihood in the natural parameters (central finite differences).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from attrs import frozen
from numpy.typing import NDArray
from scipy.optimize import minimize  # type: ignore[import-untyped]
from scipy.special import betaln, digamma, gammaln, hyp2f1  # type: ignore[import-untyped]

from crmcore import ValidationError

Array = NDArray[np.float64]

#: Parameter names, in the order of :attr:`Fit.values`.
BGNBD_PARAMETERS = ("r", "alpha", "a", "b")


@frozen
class Fit:
    """A maximum-likelihood fit: parameter values, standard errors, log-likelihood."""

    names: tuple[str, ...]
    values: tuple[float, ...]
    standard_errors: tuple[float | None, ...]
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int

    def __getitem__(self, name: str) -> float:
        """The value of parameter ``name``."""
        return self.values[self.names.index(name)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``{"params": {...}, "standard_errors": {...}, ...}``."""
        return {
            "params": dict(zip(self.names, self.values, strict=True)),
            "standard_errors": dict(zip(self.names, self.standard_errors, strict=True)),
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "converged": self.converged,
            "iterations": self.iterations,
        }


def as_arrays(*columns: Any) -> tuple[Array, ...]:
    """Each column as a float64 array; ValidationError when lengths differ or values are bad."""
    arrays = tuple(np.asarray(c, dtype=np.float64) for c in columns)
    if len({a.shape for a in arrays}) > 1:
        raise ValidationError("summary: columns of different lengths", field="summary")
    for array in arrays:
        if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValidationError(
                "summary: values must be finite and non-negative", field="summary"
            )
    return arrays


def check_summary(x: Array, t_x: Array, T: Array) -> None:
    """ValidationError unless ``0 <= t_x <= T``, ``x`` whole, ``t_x = 0`` when ``x = 0``."""
    if x.size == 0:
        raise ValidationError("summary: no customers to fit", field="summary")
    if np.any(x != np.floor(x)):
        raise ValidationError("frequency: must be whole numbers", field="frequency")
    if np.any(t_x > T + 1e-9):
        raise ValidationError("recency: must not exceed the age T", field="recency")
    if np.any((x == 0) & (t_x > 0)):
        raise ValidationError("recency: must be 0 when frequency is 0", field="recency")


def log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    """Per-customer BG/NBD log-likelihood at ``params = (r, alpha, a, b)``."""
    r, alpha, a, b = (float(v) for v in params)
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dead = np.full_like(x, -np.inf)
    xr = x[repeat]
    dead[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return np.asarray(base + np.logaddexp(alive, dead), dtype=np.float64)


def gradient(params: Array, x: Array, t_x: Array, T: Array, weights: Array) -> Array:
    """Gradient of the weighted BG/NBD log-likelihood in ``(r, alpha, a, b)`` (analytic).

    With ``LL = A + log(exp(B) + exp(C))`` (``C`` the term of customers with ``x > 0``)
    and ``w = exp(C) / (exp(B) + exp(C))``: ``dLL = dA + (1 - w) dB + w dC``.
    """
    r, alpha, a, b = (float(v) for v in params)
    alive = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dead = np.full_like(x, -np.inf)
    dead[repeat] = (
        np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    w = np.exp(dead - np.logaddexp(alive, dead))
    safe = np.where(repeat, b + x - 1, 1.0)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha)
    d_r += (1 - w) * -np.log(alpha + T) + w * -np.log(alpha + t_x)
    d_alpha = r / alpha - (1 - w) * (r + x) / (alpha + T) - w * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w / a
    d_b = digamma(b + x) - digamma(a + b + x) - digamma(b) + digamma(a + b) - w / safe
    return np.array([float(np.sum(weights * d)) for d in (d_r, d_alpha, d_a, d_b)])


def compress(*columns: Array) -> tuple[tuple[Array, ...], Array]:
    """Distinct rows of the columns and how often each occurs (the fit's weights)."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return tuple(unique[:, i] for i in range(unique.shape[1])), counts.astype(np.float64)


def hessian(fun: Callable[[Array], float], at: Array) -> Array:
    """Central finite-difference Hessian of ``fun`` at ``at`` (relative steps)."""
    n = at.size
    steps = 1e-4 * np.maximum(np.abs(at), 1e-3)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = steps[i]
            ej[j] = steps[j]
            value = (
                fun(at + ei + ej) - fun(at + ei - ej) - fun(at - ei + ej) + fun(at - ei - ej)
            ) / (4 * steps[i] * steps[j])
            out[i, j] = out[j, i] = value
    return out


def hessian_from_gradient(gradient: Callable[[Array], Array], at: Array) -> Array:
    """Central differences of an analytic gradient (``2 n`` evaluations), symmetrised."""
    n = at.size
    steps = 1e-5 * np.maximum(np.abs(at), 1e-3)
    out = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = steps[i]
        out[:, i] = (gradient(at + e) - gradient(at - e)) / (2 * steps[i])
    return (out + out.T) / 2


def standard_errors(
    negative_ll: Callable[[Array], float],
    at: Array,
    negative_gradient: Callable[[Array], Array] | None = None,
) -> tuple[float | None, ...]:
    """Square roots of the inverse Hessian's diagonal (``None`` where it is not positive).

    The Hessian comes from the gradient when one is given, else from ``negative_ll``.
    """
    if negative_gradient is not None:
        curvature = hessian_from_gradient(negative_gradient, at)
    else:
        curvature = hessian(negative_ll, at)
    try:
        covariance = np.linalg.inv(curvature)
    except np.linalg.LinAlgError:
        return tuple(None for _ in at)
    diagonal = np.diag(covariance)
    return tuple(float(np.sqrt(v)) if v > 0 and np.isfinite(v) else None for v in diagonal)


def maximise(
    names: tuple[str, ...],
    negative_ll: Callable[[Array], float],
    start: Array,
    customers: int,
    negative_gradient: Callable[[Array], Array] | None = None,
) -> Fit:
    """Minimise ``negative_ll`` over the logs of positive parameters; a :class:`Fit`.

    ``negative_gradient`` (in the natural parameters), when given, is used by
    L-BFGS-B through the chain rule ``d/d log(theta) = theta d/d theta``.
    """

    def in_logs(theta: Array) -> float:
        value = negative_ll(np.exp(np.clip(theta, -30.0, 30.0)))
        return value if np.isfinite(value) else 1e300

    jacobian: Callable[[Array], Array] | None = None
    if negative_gradient is not None:
        given = negative_gradient

        def jacobian(theta: Array) -> Array:
            natural = np.exp(np.clip(theta, -30.0, 30.0))
            slope = given(natural) * natural
            return np.asarray(np.where(np.isfinite(slope), slope, 0.0), dtype=np.float64)

    with np.errstate(all="ignore"):
        result = minimize(
            in_logs,
            np.log(start),
            jac=jacobian,
            method="L-BFGS-B",
            options={"maxiter": 5000, "ftol": 1e-13, "gtol": 1e-9},
        )
        best, iterations, converged = result, int(result.nit), bool(result.success)
        if not result.success:
            # Polish from where it stopped, derivative-free (flat or rough directions).
            polished = minimize(
                in_logs,
                result.x,
                method="Nelder-Mead",
                options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 4000},
            )
            iterations += int(polished.nit)
            converged = bool(polished.success)
            if polished.fun <= result.fun:
                best = polished
        values = np.exp(np.clip(best.x, -30.0, 30.0))
        errors = standard_errors(negative_ll, values, negative_gradient)
    return Fit(
        names=names,
        values=tuple(float(v) for v in values),
        standard_errors=errors,
        log_likelihood=-float(best.fun),
        customers=customers,
        converged=converged,
        iterations=iterations,
    )


def fit_bgnbd(frequency: Any, recency: Any, age: Any) -> Fit:
    """Maximum-likelihood BG/NBD fit on per-customer ``x``, ``t_x`` and ``T`` (one time unit).

    Raises ValidationError for an empty or inconsistent summary.
    """
    x, t_x, T = as_arrays(frequency, recency, age)
    check_summary(x, t_x, T)
    (ux, ut, uT), weights = compress(x, t_x, T)
    scale = float(np.mean(T)) or 1.0

    def negative_ll(params: Array) -> float:
        return -float(np.sum(weights * log_likelihood(params, ux, ut, uT)))

    def negative_gradient(params: Array) -> Array:
        return -gradient(params, ux, ut, uT, weights)

    start = np.array([1.0, scale, 1.0, 1.0])
    return maximise(BGNBD_PARAMETERS, negative_ll, start, int(x.size), negative_gradient)


def _params(fit: Fit) -> tuple[float, float, float, float]:
    return fit["r"], fit["alpha"], fit["a"], fit["b"]


def _dead_odds(fit: Fit, x: Array, t_x: Array, T: Array) -> Array:
    """``[x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)``."""
    r, alpha, a, b = _params(fit)
    odds = np.zeros_like(x)
    repeat = x > 0
    xr = x[repeat]
    odds[repeat] = np.exp(
        np.log(a)
        - np.log(b + xr - 1)
        + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return odds


def probability_alive(fit: Fit, frequency: Any, recency: Any, age: Any) -> Array:
    """``P(alive | x, t_x, T)``: ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``."""
    x, t_x, T = as_arrays(frequency, recency, age)
    return np.asarray(1.0 / (1.0 + _dead_odds(fit, x, t_x, T)), dtype=np.float64)


def expected_purchases(fit: Fit, t: float, frequency: Any, recency: Any, age: Any) -> Array:
    """Conditional expectation ``E[X(t) | x, t_x, T]`` of purchases in the next ``t`` units.

    ``(a + b + x - 1) / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(r + x)
    * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))] / (1 + dead odds)``.
    """
    if not t >= 0:
        raise ValidationError(f"horizon: must be >= 0, got {t}", field="horizon")
    x, t_x, T = as_arrays(frequency, recency, age)
    r, alpha, a, b = _params(fit)
    z = t / (alpha + T + t)
    bracket = 1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    value = (a + b + x - 1) / (a - 1) * bracket / (1.0 + _dead_odds(fit, x, t_x, T))
    return np.asarray(value, dtype=np.float64)


def expected_purchases_new(fit: Fit, t: float) -> float:
    """Unconditional ``E[X(t)]`` of a customer just acquired (time 0 = first purchase).

    ``(a + b - 1) / (a - 1) * [1 - (alpha / (alpha + t))^r 2F1(r, b; a + b - 1; t / (alpha + t))]``.
    """
    r, alpha, a, b = _params(fit)
    factor = 1.0 - (alpha / (alpha + t)) ** r * float(hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    return float((a + b - 1) / (a - 1) * factor)


def simulate(
    params: tuple[float, float, float, float], T: Any, seed: int = 0
) -> tuple[Array, Array, Array]:
    """Summaries ``(x, t_x, T)`` drawn from the BG/NBD with ``params`` (for tests, benchmarks).

    Each customer: ``lambda ~ Gamma(r, 1/alpha)``, ``p ~ Beta(a, b)``; purchases at
    exponential gaps of rate ``lambda`` until ``T``, dropping out after each with
    probability ``p``. Continuous time.
    """
    r, alpha, a, b = params
    ages = np.asarray(T, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = ages.size
    rate = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    x = np.zeros(n)
    last = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / rate[idx])
        inside = clock[idx] < ages[idx]
        buyers = idx[inside]
        x[buyers] += 1
        last[buyers] = clock[buyers]
        survives = rng.random(buyers.size) >= drop[buyers]
        active[:] = False
        active[buyers[survives]] = True
    return x, last, ages
