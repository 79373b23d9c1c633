"""Holdout validation: fit on a calibration period, compare with what happened after it.

:func:`validate_models` (``crm segments validate --calibration-end DATE --horizon 39w``):

* **calibration**: purchases up to and including UTC day ``calibration_end``; the customers
  are those with a purchase in it (the summary of :mod:`.predictive_summary`).
* **holdout**: the ``horizon_days`` days after it, ``(end, end + horizon]``. A customer's
  **actual** purchases are their purchase days (occasions, zero-value ones included) in it.
* **BG/NBD** prediction: ``E[X(horizon) | x, t_x, T]`` of the model fitted on the calibration.
* **formula** prediction (:mod:`.lifetime`): the annual purchase rate as of the calibration
  end, ``purchases * 365 / max(tenure_days, min_tenure_days)``, times ``horizon_days / 365``.

For each: predicted total against the actual total, the per-customer mean absolute
error, and the calibration plot data: customers grouped by calibration frequency
``x`` (``0 .. buckets - 1`` and ``buckets+``), the mean actual and mean predicted
holdout purchases of each group.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from attrs import frozen
from sqlalchemy import func, select

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation import bgnbd
from crmcore_segmentation.bgnbd import Array
from crmcore_segmentation.calendar_sql import day_number
from crmcore_segmentation.lifetime import predictive_clv
from crmcore_segmentation.predictive import check_horizon
from crmcore_segmentation.predictive_summary import (
    calibration_day,
    check_day,
    customer_summaries,
    day_start,
)
from crmcore_segmentation.purchases import counted_purchases, raw_sum, to_money
from crmcore_segmentation.settings import settings_of


@frozen
class Validation:
    """The figures of one holdout validation (see the module docstring)."""

    calibration_end: date
    horizon_days: int
    customers: int
    actual_total: float
    models: dict[str, dict[str, float]]
    calibration_plot: list[dict[str, Any]]
    fit: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "calibration_end": self.calibration_end.isoformat(),
            "horizon_days": self.horizon_days,
            "customers": self.customers,
            "actual_total": self.actual_total,
            "models": self.models,
            "calibration_plot": self.calibration_plot,
            "fit": self.fit,
        }


def _holdout(crm: CRM, uow: UnitOfWork, end: date, horizon: int) -> dict[int, int]:
    """Purchase days per customer in ``(end, end + horizon]``."""
    start = day_start(end) + timedelta(days=1)
    purchases = counted_purchases(
        crm,
        start + timedelta(days=horizon),
        since=start,
        currency=settings_of(crm).currency,
        include_zero=True,
    ).subquery("holdout")
    query = select(
        purchases.c.customer_id, func.count(func.distinct(purchases.c.day)).label("n")
    ).group_by(purchases.c.customer_id)
    return {int(r.customer_id): int(r.n) for r in uow.connection.execute(query)}


def _formula_rates(crm: CRM, uow: UnitOfWork, end: date) -> dict[int, Decimal]:
    """The formula's annual purchase rate per customer as of the end of day ``end``."""
    upper = day_start(end) + timedelta(days=1)
    settings = settings_of(crm)
    purchases = counted_purchases(crm, upper, currency=settings.currency).subquery("formula")
    query = select(
        purchases.c.customer_id,
        func.count().label("n"),
        raw_sum(purchases.c.net).label("revenue"),
        func.min(purchases.c.day).label("first_day"),
    ).group_by(purchases.c.customer_id)
    today = day_number(upper)
    rates = {}
    for row in uow.connection.execute(query):
        tenure = today - int(row.first_day)
        _, rate, _ = predictive_clv(to_money(row.revenue), int(row.n), tenure, settings)
        rates[int(row.customer_id)] = rate
    return rates


def _figures(predicted: Array, actual: Array) -> dict[str, float]:
    return {
        "predicted_total": round(float(predicted.sum()), 3),
        "mae": round(float(np.mean(np.abs(predicted - actual))), 4),
        "rmse": round(float(np.sqrt(np.mean((predicted - actual) ** 2))), 4),
    }


def check_buckets(buckets: Any) -> int:
    """Calibration-plot groups, 1..100; ValidationError naming ``buckets`` otherwise."""
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= 100:
        raise ValidationError(
            f"buckets: must be an integer from 1 to 100, got {buckets!r}",
            field="buckets",
            value=buckets,
        )
    return buckets


@requires(Action.REPORT)  # fits and compares on every customer's purchases
def validate_models(
    crm: CRM,
    *,
    calibration_end: date | datetime,
    horizon_days: int,
    since: date | datetime | None = None,
    time_unit_days: int = 7,
    buckets: int = 8,
    ctx: UnitOfWork | None = None,
) -> Validation:
    """Fit BG/NBD on the calibration period and score it and the formula on the holdout.

    Stores nothing. Raises ValidationError for bad arguments, a holdout reaching
    past the CRM clock's today, or a calibration period without purchases.
    """
    end, _ = calibration_day(calibration_end)
    horizon = check_horizon(horizon_days)
    groups = check_buckets(buckets)
    today = check_day(crm.clock(), "as_of")
    if end + timedelta(days=horizon) > today:
        raise ValidationError(
            f"horizon: the holdout ends after today ({today.isoformat()})",
            field="horizon",
            value=horizon_days,
        )
    summary = customer_summaries(
        crm, calibration_end=end, since=since, time_unit_days=time_unit_days, ctx=ctx
    )  # whole days: the holdout starts the day after ``end``
    if not len(summary):
        raise ValidationError(
            f"calibration_end: no purchase up to {end.isoformat()}", field="calibration_end"
        )
    fit = bgnbd.fit_bgnbd(summary.frequency, summary.recency, summary.age)
    with crm.reading(ctx) as uow:
        held = _holdout(crm, uow, end, horizon)
        rates = _formula_rates(crm, uow, end)
    ids = [int(i) for i in summary.customer_id]
    actual = np.array([held.get(i, 0) for i in ids], dtype=np.float64)
    model = bgnbd.expected_purchases(
        fit, horizon / summary.time_unit_days, summary.frequency, summary.recency, summary.age
    )
    formula = np.array(
        [float(rates.get(i, Decimal(0))) * horizon / 365 for i in ids], dtype=np.float64
    )
    plot = []
    bucket = np.minimum(summary.frequency, groups).astype(int)
    for k in range(groups + 1):
        members = bucket == k
        if not members.any():
            continue
        plot.append(
            {
                "frequency": f"{k}+" if k == groups else str(k),
                "customers": int(members.sum()),
                "actual": round(float(actual[members].mean()), 4),
                "bgnbd": round(float(model[members].mean()), 4),
                "formula": round(float(formula[members].mean()), 4),
            }
        )
    return Validation(
        calibration_end=end,
        horizon_days=horizon,
        customers=len(summary),
        actual_total=float(actual.sum()),
        models={"bgnbd": _figures(model, actual), "formula": _figures(formula, actual)},
        calibration_plot=plot,
        fit={**fit.as_dict(), "time_unit_days": summary.time_unit_days},
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
