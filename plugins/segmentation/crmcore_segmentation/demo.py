"""The plugin's part of ``crm demo``: score the demo data and print what a CRM team would act on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from crmcore import CRM
from crmcore_segmentation import churn, rfm, segments, value
from crmcore_segmentation.cli import render_grid
from crmcore_segmentation.settings import profit_description, settings_of

#: The saved segment the demo defines: the best customers by RFM.
DEMO_RULE = {"field": "rfm.segment", "op": "in", "value": ["champions", "loyal"]}


def _names(crm: CRM, ids: list[int]) -> dict[int, str]:
    customers = crm.metadata.tables["crm_customers"]
    if not ids:
        return {}
    with crm.reading() as uow:
        rows = uow.connection.execute(
            select(customers.c.id, customers.c.name).where(customers.c.id.in_(ids))
        )
        return {int(r.id): r.name for r in rows}


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


#: The demo's acquisition cost by source channel, and its service cost per contact.
DEMO_ACQUISITION = {
    "field_sales": Decimal(400),
    "event": Decimal(150),
    "partner": Decimal(120),
    "referral": Decimal(40),
    "social": Decimal(30),
    "web": Decimal(20),
    "store": Decimal(10),
}
DEMO_SERVICE_PER_CONTACT = Decimal(8)


def _set_demo_costs(crm: CRM) -> int:
    """Give every buyer an acquisition cost (by source channel) and a service cost (contacts)."""
    customers = crm.metadata.tables["crm_customers"]
    interactions = crm.metadata.tables["crm_interactions"]
    buyers = [v.customer_id for v in value.iter_customer_values(crm)]
    contacts = (
        select(interactions.c.customer_id, func.count().label("n"))
        .where(interactions.c.kind.not_in(["purchase", "refund"]))
        .group_by(interactions.c.customer_id)
        .subquery()
    )
    with crm.reading() as uow:
        rows = {
            int(r.id): (r.source_channel, int(r.n or 0))
            for r in uow.connection.execute(
                select(customers.c.id, customers.c.source_channel, contacts.c.n).outerjoin(
                    contacts, contacts.c.customer_id == customers.c.id
                )
            )
        }
    for cid in buyers:
        channel, n = rows.get(cid, (None, 0))
        value.set_costs(
            crm,
            cid,
            acquisition=DEMO_ACQUISITION.get(str(channel), Decimal(0)),
            service=DEMO_SERVICE_PER_CONTACT * n,
            actor="demo",
        )
    return len(buyers)


def _show_profitability(crm: CRM, console: Console) -> None:
    """Both profit forms of the most profitable customers, and the 80/20 rule on profit."""
    costed = _set_demo_costs(crm)
    settings = settings_of(crm)
    best = sorted(value.customer_values(crm), key=lambda v: (-v.profit, v.customer_id))[:5]
    names = _names(crm, [v.customer_id for v in best])
    console.print(
        f"segmentation: costs set for {costed} customers with a purchase (acquisition by "
        f"source channel, service {DEMO_SERVICE_PER_CONTACT} per contact); profit = "
        f"{profit_description(settings)}."
    )
    console.print(
        _table(
            f"segmentation: most profitable customers (profit = {settings.profitability})",
            ["customer", "name", "revenue", "costs", "contribution", "revenue - costs"],
            [
                [
                    v.customer_id,
                    names.get(v.customer_id),
                    f"{v.revenue:,.2f}",
                    f"{v.acquisition_cost + v.service_cost:,.2f}",
                    f"{v.contribution:,.2f}",
                    f"{v.revenue_minus_costs:,.2f}",
                ]
                for v in best
            ],
        )
    )
    on_profit = value.pareto_summary(crm, "profit")
    high = next(t for t in value.tiers(crm, "profit") if t.tier == "high")
    console.print(
        f"segmentation: 80/20 on {on_profit.measure}: {on_profit.members} of "
        f"{on_profit.customers_valued} customers with a positive profit "
        f"({on_profit.customer_share_percent}%) make {on_profit.percent}% of it; the top "
        f"{settings.high_percent}% make {high.share_percent}% "
        f"(crm report's key_customer_share.{on_profit.measure} and "
        f'pareto_customer_share.{on_profit.measure} with tiers.basis = "profit"; '
        f'now tiers.basis = "{settings.tier_basis}").'
    )


def run_demo(crm: CRM, seed: int, console: Console) -> None:
    """Print the RFM grid and segments, key customers, tiers, then flag churn risks.

    Writes through the service functions: a saved segment ``best`` and the
    churn warnings (moves to at_risk with reasons). ``seed`` is unused: the
    scoring is a deterministic function of the demo data.
    """
    del seed
    console.print(render_grid(rfm.rfm_grid(crm), title="segmentation: RFM grid (customers)"))
    summary = rfm.segment_summary(crm)
    console.print(
        _table(
            "segmentation: RFM segments",
            ["segment", "customers", "monetary", "mean"],
            [
                [s["segment"], s["customers"], f"{s['monetary']:,.2f}", s["mean_monetary"]]
                for s in summary
            ],
        )
    )
    key = value.pareto(crm, "monetary")
    names = _names(crm, key.customer_ids[:10])
    console.print(
        _table(
            f"segmentation: key customers ({len(key.members)} of {key.customers_valued} buyers, "
            f"{key.customer_share_percent}%, make {key.percent}% of {key.measure})",
            ["customer", "name", "revenue"],
            [
                [m["customer_id"], names.get(m["customer_id"]), f"{m['value']:,.2f}"]
                for m in key.members[:10]
            ],
        )
    )
    _show_profitability(crm, console)
    console.print(
        _table(
            f"segmentation: value tiers by {value.measure_of(crm)}",
            ["tier", "customers", "value", "share %"],
            [[t.tier, t.customers, f"{t.value:,.2f}", t.share_percent] for t in value.tiers(crm)],
        )
    )
    best = segments.define_segment(crm, "best", DEMO_RULE, name="Champions and loyal", actor="demo")
    console.print(f"segmentation: saved segment 'best' has {best.member_count} members")
    moved = churn.apply_churn_warnings(crm, actor="demo")
    names = _names(crm, [a.customer_id for a in moved[:10]])
    console.print(
        _table(
            f"segmentation: {len(moved)} customers moved to at_risk (top 10)",
            ["customer", "name", "score", "reasons"],
            [
                [a.customer_id, names.get(a.customer_id), f"{a.score:.2f}", "; ".join(a.reasons)]
                for a in moved[:10]
            ],
        )
    )
