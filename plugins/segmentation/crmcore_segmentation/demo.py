"""The plugin's part of ``crm demo``: score the demo data and print what a CRM team would act on."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from crmcore import CRM
from crmcore_segmentation import churn, rfm, segments, value
from crmcore_segmentation.cli import render_grid

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
            f"{key.customer_share_percent}%, make {key.percent}% of revenue)",
            ["customer", "name", "revenue"],
            [
                [m["customer_id"], names.get(m["customer_id"]), f"{m['value']:,.2f}"]
                for m in key.members[:10]
            ],
        )
    )
    console.print(
        _table(
            "segmentation: value tiers",
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
