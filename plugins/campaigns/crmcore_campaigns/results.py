"""Campaign results: delivered, clicked, converted per group and variant; uplift, revenue, ROI.

The aggregates are SQL (:func:`group_aggregates`): one row per (group, variant)
with the members, delivered, clicked and converted members, the exact revenue
sum and the sum of squared deviations of per-member revenue about the row's
mean. The statistics are :mod:`crmcore_campaigns.statistics`. Every definition
is in docs/plugins/campaigns.md.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Float, and_, case, cast, func, literal, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.tables import interactions
from crmcore.storage.types import MONEY_SCALE
from crmcore_campaigns.assignment import CONTROL, TREATMENT
from crmcore_campaigns.campaigns import load
from crmcore_campaigns.sending import REF_TYPE, SENT_STATES, clicks_table, messages_table
from crmcore_campaigns.statistics import (
    Estimate,
    GroupStats,
    combine,
    compare_variants,
    incremental_revenue,
    roi,
    uplift,
)
from crmcore_campaigns.tables import recipients_table

_SCALE = 10**MONEY_SCALE


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


@requires(Action.REPORT)  # an aggregate over every recipient
def group_aggregates(uow: UnitOfWork, campaign: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (group, variant): n, delivered, clicked, conversions, revenue, ss."""
    crm = uow.crm
    recipients = recipients_table(crm.metadata)
    start = campaign["launched_at"]
    end = start + timedelta(days=int(campaign["attribution_days"]))
    amount = type_coerce(interactions.c.amount, BigInteger)
    purchases = (
        select(
            interactions.c.customer_id,
            func.count().label("purchases"),
            cast(
                func.sum(
                    case(
                        (interactions.c.currency == campaign["currency"], amount), else_=literal(0)
                    )
                ),
                BigInteger,
            ).label("revenue"),
        )
        .where(
            interactions.c.kind == "purchase",
            interactions.c.occurred_at >= start,
            interactions.c.occurred_at < end,
            interactions.c.customer_id.in_(
                select(recipients.c.customer_id).where(recipients.c.campaign_id == campaign["id"])
            ),
        )
        .group_by(interactions.c.customer_id)
        .subquery("purchases")
    )
    messages, clicks = messages_table(crm), clicks_table(crm)
    delivered: ColumnElement[int] = literal(0)
    clicked: ColumnElement[int] = literal(0)
    if messages is not None and clicks is not None:
        mine = and_(
            messages.c.customer_id == recipients.c.customer_id,
            messages.c.ref_type == REF_TYPE,
            messages.c.ref_id == str(campaign["id"]),
        )
        delivered = _flag(select(1).where(mine, messages.c.state == "sent").exists())
        clicked = _flag(
            select(1)
            .select_from(clicks)
            .join(messages, messages.c.id == clicks.c.message_id)
            .where(mine)
            .exists()
        )
    member = (
        select(
            recipients.c.grp,
            func.coalesce(recipients.c.variant, "").label("variant"),
            _flag(purchases.c.purchases > 0).label("converted"),
            func.coalesce(purchases.c.revenue, 0).label("revenue"),
            delivered.label("delivered"),
            clicked.label("clicked"),
        )
        .select_from(recipients)
        .outerjoin(purchases, purchases.c.customer_id == recipients.c.customer_id)
        .where(recipients.c.campaign_id == campaign["id"])
        .cte("member")
    )
    as_float = cast(member.c.revenue, Float) / literal(float(_SCALE))
    stats = (
        select(
            member.c.grp,
            member.c.variant,
            func.count().label("n"),
            func.sum(member.c.delivered).label("delivered"),
            func.sum(member.c.clicked).label("clicked"),
            func.sum(member.c.converted).label("conversions"),
            cast(func.sum(member.c.revenue), BigInteger).label("revenue"),
            func.avg(as_float).label("mean"),
        )
        .group_by(member.c.grp, member.c.variant)
        .subquery("stats")
    )
    deviation = as_float - stats.c.mean
    spread = (
        select(member.c.grp, member.c.variant, func.sum(deviation * deviation).label("ss"))
        .join(stats, and_(stats.c.grp == member.c.grp, stats.c.variant == member.c.variant))
        .group_by(member.c.grp, member.c.variant)
        .subquery("spread")
    )
    query = (
        select(stats, spread.c.ss)
        .join(spread, and_(spread.c.grp == stats.c.grp, spread.c.variant == stats.c.variant))
        .order_by(stats.c.grp, stats.c.variant)
    )
    return [
        {
            "group": r.grp,
            "variant": r.variant or None,
            "n": int(r.n),
            "delivered": int(r.delivered or 0),
            "clicked": int(r.clicked or 0),
            "conversions": int(r.conversions or 0),
            "revenue": Decimal(int(r.revenue or 0)).scaleb(-MONEY_SCALE),
            "ss": float(r.ss or 0.0),
        }
        for r in uow.connection.execute(query)
    ]


@requires(Action.REPORT)  # counts the campaign's messages
def messages_sent(uow: UnitOfWork, campaign_id: int) -> int:
    """The campaign's messages handed to a channel (messaging state sent or bounced)."""
    messages = messages_table(uow.crm)
    if messages is None:
        return 0
    return int(
        uow.connection.execute(
            select(func.count()).where(
                messages.c.ref_type == REF_TYPE,
                messages.c.ref_id == str(campaign_id),
                messages.c.state.in_(SENT_STATES),
            )
        ).scalar_one()
    )


def _estimate(e: Estimate | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"estimate": e.estimate, "se": e.se, "low": e.low, "high": e.high}


def _group(name: str, variant: str | None, g: GroupStats, extra: dict[str, int]) -> dict[str, Any]:
    return {
        "group": name,
        "variant": variant,
        "n": g.n,
        **extra,
        "conversions": g.conversions,
        "conversion_rate": g.rate,
        "revenue": g.revenue,
        "mean_revenue": g.mean_revenue,
    }


@requires(Action.REPORT)  # an aggregate over every recipient
def campaign_results(
    crm: CRM, campaign_id: int, *, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """The results of a launched campaign (see the docs page for every definition)."""
    with crm.reading(ctx) as uow:
        campaign = load(uow, campaign_id)
        if campaign["launched_at"] is None:
            from crmcore import ValidationError

            raise ValidationError(
                f"campaign {campaign_id} has not been launched: no results yet", field="campaign"
            )
        rows = group_aggregates(uow, campaign)
        sent = messages_sent(uow, campaign_id)
    by_variant: dict[str, GroupStats] = {}
    counts: dict[str, dict[str, int]] = {}
    control = GroupStats(0, 0, Decimal(0), 0.0)
    control_counts = {"delivered": 0, "clicked": 0}
    for r in rows:
        stats = GroupStats(r["n"], r["conversions"], r["revenue"], r["ss"])
        if r["group"] == CONTROL:
            control = stats
            control_counts = {"delivered": r["delivered"], "clicked": r["clicked"]}
        elif r["group"] == TREATMENT:
            by_variant[str(r["variant"])] = stats
            counts[str(r["variant"])] = {"delivered": r["delivered"], "clicked": r["clicked"]}
    names = [v["name"] for v in campaign["variants"]]
    empty = GroupStats(0, 0, Decimal(0), 0.0)
    variants = [by_variant.get(name, empty) for name in names]
    treated = combine(variants)
    treated_counts = {
        k: sum(counts.get(n, {}).get(k, 0) for n in names) for k in ("delivered", "clicked")
    }
    revenue = incremental_revenue(treated, control)
    margin = float(campaign["margin"])
    cost = campaign["cost_per_message"] * sent
    incremental_margin = None if revenue is None else revenue.estimate * margin
    comparison = compare_variants([(v.conversions, v.n) for v in variants])
    return {
        "campaign_id": campaign_id,
        "name": campaign["name"],
        "status": campaign["status"],
        "launched_at": campaign["launched_at"],
        "attribution_days": campaign["attribution_days"],
        "currency": campaign["currency"],
        "treated": _group(TREATMENT, None, treated, treated_counts),
        "control": _group(CONTROL, None, control, control_counts),
        "variants": [
            {
                **_group(TREATMENT, name, v, counts.get(name, {"delivered": 0, "clicked": 0})),
                "uplift": _estimate(uplift(v, control)),
            }
            for name, v in zip(names, variants, strict=True)
        ],
        "uplift": _estimate(uplift(treated, control)),
        "incremental_revenue": _estimate(revenue),
        "margin": campaign["margin"],
        "incremental_margin": incremental_margin,
        "messages_sent": sent,
        "cost_per_message": campaign["cost_per_message"],
        "cost": cost,
        "roi": roi(incremental_margin, cost),
        "variant_comparison": {
            "test": "chi-square test of independence (variant x converted), no correction",
            "chi2": comparison.chi2,
            "dof": comparison.dof,
            "p_value": comparison.p_value,
            "z": comparison.z,
            "z_p_value": comparison.z_p_value,
        },
    }


enforce_declared(__name__)

__all__ = ["campaign_results", "group_aggregates", "messages_sent"]
