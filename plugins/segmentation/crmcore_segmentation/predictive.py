"""Probabilistic lifetime value: fit BG/NBD and Gamma-Gamma in place, store them, score customers.

* :func:`fit_models` (``crm segments fit``): summarises every customer in SQL
  (:mod:`.predictive_summary`), fits both models (:mod:`.bgnbd`, :mod:`.gamma_gamma`),
  stores the parameters with their standard errors, fit date and data window
  (``segmentation_model_fits``), and the scores of every customer as of the fit
  (``segmentation_predictions``), all in one unit of work.
* :func:`predict` scores customers live from the latest stored fit and a fresh summary.

**Discounted CLV** of a customer over ``years`` (settings ``expected_lifetime_years``,
``margin``, ``discount_rate``)::

    CLV = margin * E[M] * sum_{k=1..12 years} (E[X(k s)] - E[X((k - 1) s)]) / (1 + d_m)^k

with ``s`` one month (365.25 / 12 days) in the fit's time unit, ``E[X(t)]`` the
BG/NBD conditional expectation, ``E[M]`` the Gamma-Gamma expected spend and
``d_m = (1 + discount_rate)^(1/12) - 1`` the monthly rate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from attrs import frozen
from sqlalchemy import delete, insert, select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation import bgnbd, gamma_gamma
from crmcore_segmentation.bgnbd import Array, Fit
from crmcore_segmentation.predictive_summary import Summary, customer_summaries
from crmcore_segmentation.settings import Settings, settings_of
from crmcore_segmentation.tables import MODEL_FITS, PREDICTIONS, table

BGNBD = "bgnbd"
GAMMA_GAMMA = "gamma_gamma"
MODELS = (BGNBD, GAMMA_GAMMA)
_PARAMETERS = {BGNBD: bgnbd.BGNBD_PARAMETERS, GAMMA_GAMMA: gamma_gamma.GAMMA_GAMMA_PARAMETERS}
#: Days in a month of the CLV sum.
MONTH_DAYS = 365.25 / 12
#: Default horizon of the stored expected purchases, in days.
DEFAULT_HORIZON_DAYS = 365
_BATCH = 1000
_CENT = Decimal("0.01")


@frozen
class StoredFit:
    """A fit as stored: the model, the :class:`~.bgnbd.Fit`, its window and date."""

    id: int
    model: str
    fit: Fit
    time_unit_days: int
    calibration_start: date | None
    calibration_end: date
    currency: str | None
    fitted_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "id": self.id,
            "model": self.model,
            **self.fit.as_dict(),
            "time_unit_days": self.time_unit_days,
            "calibration_start": None
            if self.calibration_start is None
            else self.calibration_start.isoformat(),
            "calibration_end": self.calibration_end.isoformat(),
            "currency": self.currency,
            "fitted_at": self.fitted_at.isoformat(),
        }


@frozen
class Prediction:
    """One customer's scores under a fit."""

    customer_id: int
    p_alive: float
    expected_purchases: float
    expected_spend: Decimal | None
    clv: Decimal | None
    horizon_days: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (money as strings)."""
        return {
            "customer_id": self.customer_id,
            "p_alive": round(self.p_alive, 6),
            "expected_purchases": round(self.expected_purchases, 6),
            "expected_spend": None if self.expected_spend is None else str(self.expected_spend),
            "clv": None if self.clv is None else str(self.clv),
            "horizon_days": self.horizon_days,
        }


def check_horizon(horizon_days: Any) -> int:
    """A horizon in whole days, 1..36525; ValidationError naming ``horizon`` otherwise."""
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int):
        raise ValidationError(
            f"horizon: must be a whole number of days, got {horizon_days!r}",
            field="horizon",
            value=horizon_days,
        )
    if not 1 <= horizon_days <= 36525:
        raise ValidationError(
            f"horizon: must be 1 to 36525 days, got {horizon_days}",
            field="horizon",
            value=horizon_days,
        )
    return horizon_days


def discounted_clv(purchases: Fit, spend: Array, summary: Summary, settings: Settings) -> Array:
    """The discounted CLV (module docstring) per customer of ``summary``, in currency units."""
    unit = summary.time_unit_days
    months = settings.expected_lifetime_years * 12
    monthly = (1.0 + float(settings.discount_rate)) ** (1.0 / 12.0) - 1.0
    x, t_x, T = summary.frequency, summary.recency, summary.age
    total = np.zeros(len(summary))
    previous = np.zeros(len(summary))
    for k in range(1, months + 1):
        cumulative = bgnbd.expected_purchases(purchases, k * MONTH_DAYS / unit, x, t_x, T)
        total += (cumulative - previous) / (1.0 + monthly) ** k
        previous = cumulative
    return np.asarray(float(settings.margin) * spend * total, dtype=np.float64)


def _cents(stored: Any) -> Decimal | None:
    return None if stored is None else Decimal(stored).quantize(_CENT)


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(_CENT, rounding=ROUND_HALF_UP)


def score(
    summary: Summary,
    purchases: Fit,
    spend: Fit | None,
    horizon_days: int,
    settings: Settings,
) -> list[Prediction]:
    """Scores of every customer of ``summary`` under the fits (no database access).

    Raises ValidationError when the fit is degenerate (a score is not finite, as
    with too few customers); a Gamma-Gamma fit with ``q <= 1`` or
    non-finite values leaves expected spend and CLV out (``None``).
    """
    unit = summary.time_unit_days
    x, t_x, T = summary.frequency, summary.recency, summary.age
    with np.errstate(all="ignore"):
        alive = bgnbd.probability_alive(purchases, x, t_x, T)
        expected = bgnbd.expected_purchases(purchases, horizon_days / unit, x, t_x, T)
        values: Array | None = None
        clv: Array | None = None
        if spend is not None and spend["q"] > 1:
            values = gamma_gamma.expected_spend(spend, x, summary.mean_value)
            clv = discounted_clv(purchases, values, summary, settings)
    if not (np.all(np.isfinite(alive)) and np.all(np.isfinite(expected))):
        raise ValidationError(
            f"model: the BG/NBD fit is degenerate ({purchases.customers} customers, "
            f"a = {purchases['a']:.3g}); more purchase history is needed",
            field="model",
        )
    if values is not None and clv is not None and not np.all(np.isfinite(values + clv)):
        values = clv = None
    return [
        Prediction(
            customer_id=int(summary.customer_id[i]),
            p_alive=float(alive[i]),
            expected_purchases=float(expected[i]),
            expected_spend=None if values is None else _money(values[i]),
            clv=None if clv is None else _money(clv[i]),
            horizon_days=horizon_days,
        )
        for i in range(len(summary))
    ]


@frozen
class ModelFits:
    """What :func:`fit_models` stored: both fits and how many customers were scored."""

    purchases: StoredFit
    spend: StoredFit | None
    scored: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            BGNBD: self.purchases.as_dict(),
            GAMMA_GAMMA: None if self.spend is None else self.spend.as_dict(),
            "scored": self.scored,
        }


def _insert_fit(uow: UnitOfWork, model: str, fit: Fit, summary: Summary) -> StoredFit:
    fits = table(uow.crm.metadata, MODEL_FITS)
    currency = settings_of(uow.crm).currency
    data = fit.as_dict()
    row = {
        "model": model,
        "params": data["params"],
        "standard_errors": data["standard_errors"],
        "log_likelihood": fit.log_likelihood,
        "customers": fit.customers,
        "converged": fit.converged,
        "time_unit_days": summary.time_unit_days,
        "calibration_start": summary.since,
        "calibration_end": summary.end,
        "currency": currency,
        "fitted_at": uow.now,
    }
    new_id = uow.connection.execute(insert(fits).values(**row).returning(fits.c.id)).scalar_one()
    return StoredFit(
        int(new_id),
        model,
        fit,
        summary.time_unit_days,
        summary.since,
        summary.end,
        currency,
        uow.now,
    )


@requires(Action.REPORT)  # fits on every customer's purchases
def fit_models(
    crm: CRM,
    *,
    calibration_end: date | datetime | None = None,
    since: date | datetime | None = None,
    time_unit_days: int = 7,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> ModelFits:
    """Fit BG/NBD and Gamma-Gamma on the window, store them and every customer's scores.

    The stored scores (``segmentation_predictions``, replaced whole) give P(alive),
    expected purchases over ``horizon_days``, expected spend and discounted CLV as
    of the fit. The Gamma-Gamma fit is skipped (``spend`` None) when no customer has
    a repeat purchase of positive value. Raises ValidationError for bad arguments or
    when no customer has a purchase in the window.
    """
    horizon = check_horizon(horizon_days)
    summary = customer_summaries(
        crm, calibration_end=calibration_end, since=since, time_unit_days=time_unit_days
    )
    if not len(summary):
        raise ValidationError(
            "calibration_end: no purchase in the calibration window", field="calibration_end"
        )
    purchases = bgnbd.fit_bgnbd(summary.frequency, summary.recency, summary.age)
    spend: Fit | None = None
    if np.any((summary.frequency > 0) & (summary.mean_value > 0)):
        spend = gamma_gamma.fit_gamma_gamma(summary.frequency, summary.mean_value)
    predictions = score(summary, purchases, spend, horizon, settings_of(crm))
    scores = table(crm.metadata, PREDICTIONS)
    with crm.unit_of_work(actor, ctx) as uow:
        stored = _insert_fit(uow, BGNBD, purchases, summary)
        stored_spend = None if spend is None else _insert_fit(uow, GAMMA_GAMMA, spend, summary)
        uow.connection.execute(delete(scores))
        for at in range(0, len(predictions), _BATCH):
            rows = [
                {
                    "customer_id": p.customer_id,
                    "p_alive": p.p_alive,
                    "expected_purchases": p.expected_purchases,
                    "expected_spend": p.expected_spend,
                    "clv": p.clv,
                    "horizon_days": horizon,
                    "at": uow.now,
                }
                for p in predictions[at : at + _BATCH]
            ]
            uow.connection.execute(insert(scores), rows)
        uow.crm.audit.record(
            uow,
            [
                AuditEntry(
                    "segmentation.fit",
                    "model_fits",
                    stored.id,
                    None,
                    {"customers": len(summary), "calibration_end": summary.end.isoformat()},
                )
            ],
        )
    return ModelFits(stored, stored_spend, len(predictions))


def _stored(row: Any) -> StoredFit:
    # JSONB does not keep key order: the names come in the model's own order.
    names = _PARAMETERS[str(row.model)]
    fit = Fit(
        names=names,
        values=tuple(float(row.params[n]) for n in names),
        standard_errors=tuple(
            None if row.standard_errors.get(n) is None else float(row.standard_errors[n])
            for n in names
        ),
        log_likelihood=float(row.log_likelihood),
        customers=int(row.customers),
        converged=bool(row.converged),
        iterations=0,
    )
    return StoredFit(
        int(row.id),
        str(row.model),
        fit,
        int(row.time_unit_days),
        row.calibration_start,
        row.calibration_end,
        row.currency,
        row.fitted_at,
    )


@requires(Action.READ, scoped=True)  # model parameters only: no customer's data
def latest_fit(crm: CRM, model: str = BGNBD, *, ctx: UnitOfWork | None = None) -> StoredFit | None:
    """The most recent stored fit of ``model`` (bgnbd or gamma_gamma), or ``None``."""
    if model not in MODELS:
        raise ValidationError(
            f"model: {model!r} is not one of: {', '.join(MODELS)}", field="model", value=model
        )
    fits = table(crm.metadata, MODEL_FITS)
    query = (
        select(fits)
        .where(fits.c.model == model)
        .order_by(fits.c.fitted_at.desc(), fits.c.id.desc())
        .limit(1)
    )
    with crm.reading(ctx) as uow:
        row = uow.connection.execute(query).first()
    return None if row is None else _stored(row)


@requires(Action.READ, scoped=True)  # scores only of customers the principal may read
def predict(
    crm: CRM,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    as_of: date | datetime | None = None,
    customer_ids: Sequence[int] | None = None,
    ctx: UnitOfWork | None = None,
) -> list[Prediction]:
    """Score customers now (or ``as_of``) with the latest stored fits, by customer id.

    The summary is recomputed in SQL up to ``as_of`` in the fit's time unit. Raises
    ValidationError when nothing has been fitted yet (run ``crm segments fit``).
    """
    horizon = check_horizon(horizon_days)
    purchases = latest_fit(crm, BGNBD, ctx=ctx)
    if purchases is None:
        raise ValidationError(
            "model: no BG/NBD fit stored yet; run `crm segments fit`", field="model"
        )
    spend = latest_fit(crm, GAMMA_GAMMA, ctx=ctx)
    summary = customer_summaries(
        crm,
        calibration_end=as_of,
        time_unit_days=purchases.time_unit_days,
        customer_ids=customer_ids,
        ctx=ctx,
    )
    return score(
        summary, purchases.fit, None if spend is None else spend.fit, horizon, settings_of(crm)
    )


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_stored_predictions(
    crm: CRM,
    *,
    customer_ids: Sequence[int] | None = None,
    limit: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Iterator[Prediction]:
    """The scores stored by the latest :func:`fit_models`, highest CLV first, then by id."""
    scores = table(crm.metadata, PREDICTIONS)
    query = (
        select(scores)
        .where(crm.access.where(scores.c.customer_id, ctx=ctx))
        .order_by(scores.c.clv.desc(), scores.c.customer_id)
        .limit(limit)
    )
    chunks: list[Any] = [query.execution_options(yield_per=_BATCH)]
    if customer_ids is not None:
        wanted = sorted(set(customer_ids))
        chunks = [
            query.where(scores.c.customer_id.in_(wanted[at : at + _BATCH]))
            for at in range(0, len(wanted), _BATCH)
        ]
    with crm.reading(ctx) as uow:
        for row in (r for chunk in chunks for r in uow.connection.execute(chunk)):
            yield Prediction(
                customer_id=int(row.customer_id),
                p_alive=float(row.p_alive),
                expected_purchases=float(row.expected_purchases),
                expected_spend=_cents(row.expected_spend),
                clv=_cents(row.clv),
                horizon_days=int(row.horizon_days),
            )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
