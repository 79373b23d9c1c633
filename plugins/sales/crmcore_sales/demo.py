"""The sales part of ``crm demo``: a year of deals across two pipelines, contracts and payments.

The demo CRM's clock stands at ``crmcore.io.demo.DEMO_NOW``. Deals are written
for the demo's organisations through the service functions with ``at=`` (in
time order), all in one unit of work; won deals become contracts with monthly
instalments, most of which are paid (each payment a core purchase), some late
or not at all, so the ageing has something to show. Deterministic per seed.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from sqlalchemy import select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.cli.output import safe_text
from crmcore.scoping import enforce_declared, requires
from crmcore_sales import contracts, deals, forecast, performance, stages
from crmcore_sales.settings import settings_of

OWNERS = ("alice", "bob", "chen", "dara")
TEAMS = {"alice": "north", "bob": "north", "chen": "south", "dara": "south"}
PRODUCTS = (("licence", "1200"), ("support", "450"), ("training", "800"), ("hardware", "2300"))


def _organisations(crm: CRM, limit: int) -> list[int]:
    customers = crm.metadata.tables["crm_customers"]
    with crm.reading() as uow:
        return list(
            uow.connection.execute(
                select(customers.c.id)
                .where(customers.c.kind == "organization")
                .order_by(customers.c.id)
                .limit(limit)
            ).scalars()
        )


def _deal(uow: UnitOfWork, rng: random.Random, org: int, now: datetime) -> tuple[int, int]:
    """Write one deal's history; return (deals, payments) written."""
    crm = uow.crm
    pipeline = settings_of(crm).pipelines["renewal" if rng.random() < 0.3 else "new_business"]
    owner = rng.choice(OWNERS)
    created = now - timedelta(days=rng.uniform(20, 365))
    items = [
        {"product": name, "quantity": rng.randint(1, 5), "unit_price": price}
        for name, price in rng.sample(PRODUCTS, rng.randint(1, 2))
    ]
    close = (created + timedelta(days=rng.randint(20, 120))).date()
    deal = deals.add_deal(
        crm,
        {
            "customer_id": org,
            "title": f"{pipeline.label} {created:%Y-%m}",
            "pipeline": pipeline.name,
            "owner": owner,
            "team": TEAMS[owner],
            "channel": rng.choice(["web", "phone", "referral", "event"]),
            "expected_close": close,
            "items": items,
        },
        at=created,
        ctx=uow,
    )
    when = created
    for stage in pipeline.stages[1 : rng.randint(1, len(pipeline.stages))]:
        when += timedelta(days=rng.uniform(3, 25))
        if when >= now:
            return 1, 0
        stages.move_deal(crm, deal.id, stage.name, at=when, ctx=uow)
    when += timedelta(days=rng.uniform(3, 30))
    if when >= now or rng.random() < 0.3:  # still open: its expected close lies ahead
        if close < now.date():
            later = now.date() + timedelta(days=rng.randint(5, 150))
            deals.update_deal(crm, deal.id, {"expected_close": later}, ctx=uow)
        return 1, 0
    if rng.random() < 0.4:
        stages.lose_deal(
            crm,
            deal.id,
            reason=rng.choice(pipeline.lost_reasons),
            competitor="Globex",
            at=when,
            ctx=uow,
        )
        return 1, 0
    stages.win_deal(crm, deal.id, reason=rng.choice(pipeline.won_reasons), at=when, ctx=uow)
    return 1, _collect(uow, rng, deal.id, when.date(), now)


def _collect(uow: UnitOfWork, rng: random.Random, deal_id: int, start: date, now: datetime) -> int:
    count = rng.randint(2, 6)
    contract = contracts.create_contract(
        uow.crm,
        deal_id,
        {
            "start_date": start,
            "end_date": start + timedelta(days=365),
            "payment_terms_days": 30,
            "instalment_count": count,
        },
        ctx=uow,
    )
    paid = 0
    for line in contract["instalments"]:
        due = date.fromisoformat(line["due_date"])
        received = due + timedelta(days=rng.choice([0, 0, 2, 5, 12, 40]))
        if received >= now.date() or rng.random() < 0.12:
            continue
        contracts.record_payment(
            uow.crm,
            contract["id"],
            Decimal(line["amount"]),
            reference=f"demo-{contract['id']}-{line['seq']}",
            received_on=received,
            ctx=uow,
        )
        paid += 1
    return paid


@requires(Action.WRITE)
def load(crm: CRM, seed: int, organisations: int = 40) -> tuple[int, int]:
    """Write the demo's deals, contracts and payments; return (deals, payments)."""
    rng = random.Random(f"sales-{seed}")
    orgs = _organisations(crm, organisations)
    written = payments = 0
    with crm.unit_of_work(actor="demo") as uow:
        now = uow.now
        for org in orgs:
            for _ in range(rng.randint(1, 3)):
                d, p = _deal(uow, rng, org, now)
                written, payments = written + d, payments + p
        quarter = _quarter(now.date())
        for owner in OWNERS:
            performance.set_target(
                crm, owner=owner, start=quarter[0], end=quarter[1], amount="20000", ctx=uow
            )
    return written, payments


def _quarter(today: date) -> tuple[date, date]:
    first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return first, date(first.year + (first.month == 10), (first.month + 2) % 12 + 1, 1)


@requires(Action.WRITE)
def run(crm: CRM, seed: int, console: Console) -> None:
    """Load the sales demo data and print a pipeline and forecast summary."""
    written, payments = load(crm, seed)
    today = crm.clock().date()
    console.print(f"sales: {written} deals across two pipelines, {payments} payments collected.")
    rows: dict[tuple[str, str], list[Any]] = {}
    for deal in deals.list_deals(crm, status="open", limit=10_000):
        entry = rows.setdefault((deal.pipeline, deal.stage), [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        entry[1] += deal.amount
        entry[2] += deal.weighted_amount
    console.print("[bold]Open pipeline[/bold] (pipeline / stage: deals, amount, weighted)")
    for pipeline in settings_of(crm).pipelines.values():
        for stage in pipeline.stages:
            n, amount, weighted = rows.get((pipeline.name, stage.name), [0, 0, 0])
            console.print(
                f"  {safe_text(pipeline.name)} / {safe_text(stage.name)}: {n} deals, "
                f"{amount:,.2f} EUR, weighted {weighted:,.2f}"
            )
    quarter = _quarter(today)
    end = quarter[1] + timedelta(days=92)
    console.print(f"[bold]Forecast[/bold] {quarter[0]} to {end} (weighted, by month)")
    for row in forecast.weighted_pipeline(crm, start=quarter[0], end=end):
        console.print(f"  {row['period']}: {row['deals']} deals, weighted {row['weighted']:,.2f}")
    cats = forecast.categories(crm, start=quarter[0], end=quarter[1])
    console.print(
        f"  this quarter: closed {cats['closed']:,.2f}, commit {cats['commit_total']:,.2f}, "
        f"best case {cats['best_case_total']:,.2f}"
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
