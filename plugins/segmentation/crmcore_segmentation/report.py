"""The plugin's parts of core views: KPIs, report charts, the 360° profile section, privacy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select

from crmcore import CRM, Customer, Period, UnitOfWork
from crmcore.access import Action
from crmcore.reporting import ReportChart
from crmcore.scoping import enforce_declared, requires
from crmcore_segmentation.predictive import iter_stored_predictions
from crmcore_segmentation.recommend import recommend
from crmcore_segmentation.retention import (
    cohort_matrix,
    monthly_retention,
    repeat_purchase_rate,
    retention,
)
from crmcore_segmentation.rfm import rfm_grid, rfm_scores
from crmcore_segmentation.segments import segments_of
from crmcore_segmentation.settings import settings_of
from crmcore_segmentation.tables import (
    CHURN_ALERTS,
    CUSTOMER_COSTS,
    HISTORY,
    MEMBERS,
    PREDICTIONS,
    table,
)
from crmcore_segmentation.value import customer_values, pareto_summary, tiers

#: Months the cohort heatmap and the retention trend cover.
CHART_MONTHS = 12


def _window(period: Period) -> int:
    return max(1, (period.end - period.start).days)


@requires(Action.REPORT)  # an aggregate over every customer
def metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """KPIs of ``period`` (RFM and value over the period itself, as of its end).

    ``buyers``, ``repeat_purchase_rate`` (lifetime, as of the end),
    ``retention_rate``/``churn_rate`` (against the previous period),
    ``key_customer_share.<measure>`` (the high tier's share of the value) and
    ``pareto_customer_share.<measure>`` (% of valued customers making the configured
    share of the value), both on the configured ``tiers.basis``, ``<measure>`` naming
    it (:func:`~crmcore_segmentation.tiers.measure_of`: ``revenue``,
    ``profit_contribution``, ``profit_revenue_minus_costs``, ``predicted_clv``),
    ``at_risk_customers`` (flagged by RFM segments at_risk/cant_lose),
    ``moved_to_at_risk`` (lifecycle moves to at_risk in the period) and, once
    ``crm segments fit`` has stored scores, ``expected_alive_customers`` (the sum of
    P(alive)) and ``predicted_clv_total`` (``None`` before a fit).
    """
    days = _window(period)
    as_of = period.end
    scores = rfm_segments_count(crm, period)
    kept = retention(crm, period)
    repeat = repeat_purchase_rate(crm, as_of=as_of)
    basis = settings_of(crm).tier_basis
    key = pareto_summary(crm, basis, as_of=as_of, window_days=days)
    high = next(t for t in tiers(crm, basis, as_of=as_of, window_days=days) if t.tier == "high")
    events = crm.metadata.tables["crm_lifecycle_events"]
    predictions = table(crm.metadata, PREDICTIONS)
    with crm.reading(ctx) as uow:
        alive, clv, scored = uow.connection.execute(
            select(func.sum(predictions.c.p_alive), func.sum(predictions.c.clv), func.count())
        ).one()
        moved = uow.connection.execute(
            select(func.count()).where(
                events.c.to_stage == "at_risk",
                events.c.at >= period.start,
                events.c.at < period.end,
            )
        ).scalar_one()
    return {
        "buyers": scores["buyers"],
        "repeat_purchase_rate": repeat["rate"],
        "retention_rate": kept.retention_rate,
        "churn_rate": kept.churn_rate,
        f"key_customer_share.{high.measure}": high.share_percent if high.customers else None,
        f"pareto_customer_share.{key.measure}": key.customer_share_percent if key.members else None,
        "champions": scores["champions"],
        "at_risk_customers": scores["at_risk"],
        "moved_to_at_risk": int(moved),
        "expected_alive_customers": round(float(alive), 1) if scored else None,
        "predicted_clv_total": None if not scored or clv is None else str(clv),
    }


@requires(Action.REPORT)  # an aggregate over every customer
def rfm_segments_count(crm: CRM, period: Period) -> dict[str, int]:
    """Buyers, champions and at-risk (at_risk + cant_lose) customers in the period's RFM."""
    from crmcore_segmentation.rfm import segment_summary

    summary = {
        s["segment"]: s["customers"]
        for s in segment_summary(crm, as_of=period.end, window_days=_window(period))
    }
    return {
        "buyers": sum(summary.values()),
        "champions": summary.get("champions", 0),
        "at_risk": summary.get("at_risk", 0) + summary.get("cant_lose", 0),
    }


@requires(Action.REPORT)  # an aggregate over every customer
def charts(crm: CRM, period: Period) -> list[ReportChart]:
    """The RFM grid (R x F, customers), the cohort retention heatmap, the retention trend."""
    grid = rfm_grid(crm, as_of=period.end, window_days=_window(period))
    cohorts = cohort_matrix(crm, as_of=period.end, months=CHART_MONTHS)
    trend = monthly_retention(crm, as_of=period.end, months=CHART_MONTHS)
    return [
        ReportChart(
            title="RFM grid: customers by recency (rows) and frequency (columns) score",
            kind="heatmap",
            x_labels=[f"F{f}" for f in grid["f"]],
            y_labels=[f"R{r}" for r in grid["r"]],
            values=[[float(v) for v in row] for row in grid["counts"]],
            unit="customers",
            note="scores as of the period's end over the period; 5 = best",
        ),
        ReportChart(
            title="Cohort retention by first-purchase month",
            kind="heatmap",
            x_labels=[f"+{k}" for k in range(CHART_MONTHS)],
            y_labels=[c.month for c in cohorts],
            values=[[None if r is None else float(r) for r in c.retention] for c in cohorts],
            unit="%",
            note="customers of the cohort buying again k months after their first purchase",
        ),
        ReportChart(
            title="Month-on-month customer retention",
            kind="line",
            x_labels=[row["month"] for row in trend],
            series={
                "retention %": [
                    None if row["retention_rate"] is None else float(row["retention_rate"])
                    for row in trend
                ]
            },
            unit="%",
        ),
    ]


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id)
def profile_section(
    crm: CRM, customer: Customer, *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """RFM, lifetime value, model scores, next best offers, segments, the latest churn alert."""
    if customer.id is None:
        return None
    scores = rfm_scores(crm, customer_ids=[customer.id])
    values = customer_values(crm, customer_ids=[customer.id])
    predicted = list(iter_stored_predictions(crm, customer_ids=[customer.id], ctx=ctx))
    offers = recommend(crm, customer.id, limit=3, ctx=ctx)
    alerts = table(crm.metadata, CHURN_ALERTS)
    with crm.reading(ctx) as uow:
        segments = segments_of(uow, customer.id)
        alert = uow.connection.execute(
            select(alerts)
            .where(alerts.c.customer_id == customer.id)
            .order_by(alerts.c.at.desc(), alerts.c.id.desc())
            .limit(1)
        ).first()
    return {
        "rfm": scores[0].as_dict() if scores else None,
        "value": values[0].as_dict() if values else None,
        "predicted": predicted[0].as_dict() if predicted else None,
        "next_best_offers": [o.as_dict() for o in offers],
        "segments": segments,
        "churn_alert": None
        if alert is None
        else {
            "score": float(alert.score),
            "reasons": list(alert.reasons),
            "at": alert.at.isoformat(),
        },
    }


@requires(Action.EXPORT, customer="customer_id")
def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Everything the plugin stores about the customer, JSON-safe."""
    metadata = ctx.crm.metadata
    history, alerts, costs = (table(metadata, n) for n in (HISTORY, CHURN_ALERTS, CUSTOMER_COSTS))
    segments = table(metadata, "segmentation_segments")
    conn = ctx.connection
    moves = conn.execute(
        select(segments.c.key, history.c.joined, history.c.at)
        .join(segments, segments.c.id == history.c.segment_id)
        .where(history.c.customer_id == customer_id)
        .order_by(history.c.at, history.c.id)
    ).all()
    alert_rows = conn.execute(
        select(alerts).where(alerts.c.customer_id == customer_id).order_by(alerts.c.at)
    ).all()
    cost = conn.execute(select(costs).where(costs.c.customer_id == customer_id)).first()
    scores = table(metadata, PREDICTIONS)
    score = conn.execute(select(scores).where(scores.c.customer_id == customer_id)).first()
    data = {
        "segments": segments_of(ctx, customer_id),
        "segment_history": [
            {"segment": m.key, "joined": bool(m.joined), "at": m.at.isoformat()} for m in moves
        ],
        "churn_alerts": [
            {
                "score": float(a.score),
                "reasons": list(a.reasons),
                "moved": bool(a.moved),
                "at": a.at.isoformat(),
            }
            for a in alert_rows
        ],
        "costs": None
        if cost is None
        else {
            "acquisition": None if cost.acquisition is None else str(cost.acquisition),
            "service": None if cost.service is None else str(cost.service),
        },
        "prediction": None
        if score is None
        else {
            "p_alive": float(score.p_alive),
            "expected_purchases": float(score.expected_purchases),
            "expected_spend": None if score.expected_spend is None else str(score.expected_spend),
            "clv": None if score.clv is None else str(score.clv),
            "at": score.at.isoformat(),
        },
    }
    if not any(data.values()):
        return None
    return data


@requires(Action.DELETE, customer="customer_ids")
def forget(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete every row of the plugin about these customers (erasure and deletion).

    Segment member counts stay as anonymous aggregates until the next refresh.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return
    for name in (MEMBERS, HISTORY, CHURN_ALERTS, CUSTOMER_COSTS, PREDICTIONS):
        target = table(ctx.crm.metadata, name)
        for start in range(0, len(ids), 500):
            ctx.connection.execute(
                delete(target).where(target.c.customer_id.in_(ids[start : start + 500]))
            )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
