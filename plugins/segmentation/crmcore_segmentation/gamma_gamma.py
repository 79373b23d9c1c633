"""Gamma-Gamma (Fader, Hardie and Lee 2005; Colombo and Jiang 1999): spend per purchase.

Per customer with ``x >= 1`` repeat purchase occasions of mean value ``m_x > 0``.

Assumptions: a customer's purchase values are i.i.d. ``Gamma(p, nu)``, the scale ``nu ~
Gamma(q, gamma)`` across customers, and spend is independent of the purchase process
(check: the correlation of ``x`` and ``m_x`` should be weak).

Log-likelihood of one customer::

    log f(m_x | x) = log Gamma(p x + q) - log Gamma(p x) - log Gamma(q) + q log gamma
                     + (p x - 1) log m_x + p x log x - (p x + q) log(gamma + x m_x)

Expected spend per purchase (the posterior mean of ``p / nu``)::

    E[M | x, m_x] = p (gamma + x m_x) / (p x + q - 1)      (population mean p gamma / (q - 1))
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, gammaln  # type: ignore[import-untyped]

from crmcore import ValidationError
from crmcore_segmentation.bgnbd import Array, Fit, as_arrays, compress, maximise

#: Parameter names, in the order of :attr:`~crmcore_segmentation.bgnbd.Fit.values`.
GAMMA_GAMMA_PARAMETERS = ("p", "q", "gamma")


def log_likelihood(params: Array, x: Array, m: Array) -> Array:
    """Per-customer Gamma-Gamma log-likelihood at ``params = (p, q, gamma)``."""
    p, q, g = (float(v) for v in params)
    px = p * x
    value = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(g + x * m)
    )
    return np.asarray(value, dtype=np.float64)


def gradient(params: Array, x: Array, m: Array, weights: Array) -> Array:
    """Gradient of the weighted Gamma-Gamma log-likelihood in ``(p, q, gamma)`` (analytic)."""
    p, q, g = (float(v) for v in params)
    px = p * x
    total = g + x * m
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(total))
    d_q = digamma(px + q) - digamma(q) + np.log(g) - np.log(total)
    d_g = q / g - (px + q) / total
    return np.array([float(np.sum(weights * d)) for d in (d_p, d_q, d_g)])


def fit_gamma_gamma(frequency: Any, mean_value: Any) -> Fit:
    """Maximum-likelihood Gamma-Gamma fit on customers with ``x >= 1`` and ``m_x > 0``.

    Customers without a repeat purchase, or whose repeat purchases are all worth 0,
    are left out (the model needs a positive mean). Raises ValidationError when
    none is left.
    """
    x, m = as_arrays(frequency, mean_value)
    keep = (x > 0) & (m > 0)
    if not keep.any():
        raise ValidationError(
            "summary: no customer with a repeat purchase of positive value", field="summary"
        )
    (ux, um), weights = compress(x[keep], m[keep])

    def negative_ll(params: Array) -> float:
        return -float(np.sum(weights * log_likelihood(params, ux, um)))

    def negative_gradient(params: Array) -> Array:
        return -gradient(params, ux, um, weights)

    start = np.array([1.0, 1.0, float(np.mean(m[keep]))])
    return maximise(GAMMA_GAMMA_PARAMETERS, negative_ll, start, int(keep.sum()), negative_gradient)


def expected_spend(fit: Fit, frequency: Any, mean_value: Any) -> Array:
    """``E[M | x, m_x]`` per customer; the population mean ``p gamma / (q - 1)`` for ``x = 0``.

    Raises ValidationError when ``q <= 1`` (the population mean does not exist).
    """
    x, m = as_arrays(frequency, mean_value)
    p, q, g = fit["p"], fit["q"], fit["gamma"]
    if q <= 1:
        raise ValidationError(f"gamma_gamma: q = {q} <= 1 has no mean spend", field="q")
    value = p * (g + x * m) / (p * x + q - 1)
    return np.asarray(value, dtype=np.float64)


def simulate(params: tuple[float, float, float], frequency: Any, seed: int = 0) -> Array:
    """Mean spend ``m_x`` per customer drawn from the Gamma-Gamma with ``params`` (tests).

    ``nu ~ Gamma(q, 1/gamma)``; the mean of ``x`` values ``Gamma(p, 1/nu)`` is
    ``Gamma(p x, 1/(nu x))``. Customers with ``x = 0`` get 0.
    """
    p, q, g = params
    x = np.asarray(frequency, dtype=np.float64)
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / g, x.size)
    out = np.zeros(x.size)
    repeat = x > 0
    out[repeat] = rng.gamma(p * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    return out
