"""Issue 12 item 7: the 360° view, KPIs, churn signals, export, erase, delete and merge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from crmcore_sales import contracts, deals, stages

from crmcore import CRM, Period
from crmcore.testing import FrozenClock


def _won_contract(crm: CRM, customer_id: int, amount: str = "900", **extra: Any) -> dict[str, Any]:
    deal = deals.add_deal(
        crm,
        {
            "customer_id": customer_id,
            "title": "Secret Project Zebulon",
            "expected_close": "2026-01-31",
            "amount": amount,
            "notes": "call Zebulon at home",
            **extra,
        },
    )
    stages.win_deal(crm, deal.id, reason="price")
    return contracts.create_contract(
        crm,
        deal.id,
        {"start_date": "2025-09-01", "end_date": "2026-08-31", "instalment_count": 3},
    )


def test_profile_rollup_and_metrics(scrm: CRM, org: int, clock: FrozenClock) -> None:
    contract = _won_contract(scrm, org)
    contracts.record_payment(scrm, contract["id"], "300", reference="A-1", received_on="2025-10-15")
    deals.add_deal(
        scrm,
        {"customer_id": org, "title": "Upsell", "expected_close": "2026-01-20", "amount": "1000"},
    )
    lost = deals.add_deal(
        scrm, {"customer_id": org, "title": "Other", "expected_close": "2026-01-20"}
    )
    stages.lose_deal(scrm, lost.id, reason="timing")
    section = scrm.customers.profile(org)["plugins"]["sales"]
    assert (section["open_deals"], section["won_deals"], section["lost_deals"]) == (1, 1, 1)
    assert section["open"]["EUR"] == {"amount": "1000", "weighted": "100"}
    assert section["last_won"]["amount"] == "900"
    # instalments due 2025-10-01, 11-01, 12-01: the 300 settles the first
    assert section["receivables"]["EUR"] == {"outstanding": "600", "overdue": "600"}
    person = scrm.accounts.contacts(org)[0].person_id
    assert scrm.customers.profile(person)["plugins"].get("sales") is None
    rollup = scrm.accounts.view(org)["plugins"]["sales"]
    assert (rollup["open_deals"], rollup["won_deals"]) == (1, 1)
    assert rollup["receivables"]["EUR"]["overdue"] == "600"
    year = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    kpis = scrm.metrics(year)["sales"]
    assert kpis["deals_won"] == 1 and kpis["deals_lost"] == 1 and kpis["win_rate"] == 0.5
    assert kpis["won_revenue"] == "900" and kpis["pipeline_value"] == "1000"
    assert kpis["forecast"] == "100" and kpis["collected"] == "300" and kpis["due"] == "900"
    assert kpis["collection_rate"] == round(300 / 900, 4)
    assert kpis["overdue_receivables"] == "600"
    assert scrm.metrics(year)["core"]["revenue"] == {"EUR": "300"}


def test_churn_signals(scrm: CRM, org: int) -> None:
    _won_contract(scrm, org)  # first instalment due 2025-10-01: 92 days overdue
    renewal = deals.add_deal(
        scrm,
        {
            "customer_id": org,
            "title": "Renew",
            "expected_close": "2026-02-01",
            "pipeline": "renewal",
        },
    )
    stages.lose_deal(scrm, renewal.id, reason="price", competitor="Globex")
    reasons = {
        (s.reason.split(":")[0], s.weight) for s in scrm.churn_signals([org]) if s.source == "sales"
    }
    assert reasons == {("lost renewal", 0.7), ("overdue payment", 0.7)}


def _all_text(crm: CRM) -> str:
    chunks = []
    with crm.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            if table.startswith("sales_"):
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
                chunks.append(json.dumps([list(r) for r in rows], default=str))
    return "\n".join(chunks).lower()


def test_export_and_erase(scrm: CRM, org: int) -> None:
    contract = _won_contract(scrm, org)
    contracts.record_payment(
        scrm, contract["id"], "300", reference="Zebulon-INV", received_on="2025-10-15"
    )
    exported = scrm.customers.export(org)["plugins"]["sales"]
    assert exported["deals"][0]["notes"] == "call Zebulon at home"
    assert exported["contracts"][0]["instalments"][0]["amount"] == "300"
    assert exported["payments"][0]["reference"] == "Zebulon-INV"
    json.dumps(exported)
    assert "zebulon" in _all_text(scrm)
    scrm.customers.erase(org, actor="dpo")
    assert "zebulon" not in _all_text(scrm)
    year = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert scrm.metrics(year)["sales"]["won_revenue"] == "900"  # the aggregate stays


def test_delete_and_merge_move_everything(scrm: CRM, org: int, clock: FrozenClock) -> None:
    dup = scrm.customers.create({"name": "Initech Duplicate", "kind": "organization"}).id
    other = scrm.customers.create({"name": "Gone"}).id
    assert dup is not None and other is not None
    person = scrm.accounts.contacts(org)[0].person_id
    scrm.accounts.add_contact(dup, person, role="influencer")
    kept_contract = _won_contract(scrm, org)
    dup_contract = _won_contract(scrm, dup, amount="600", contacts=[{"contact_id": person}])
    contracts.record_payment(
        scrm, dup_contract["id"], "200", reference="D-1", received_on="2025-10-02"
    )
    _won_contract(scrm, other)
    scrm.customers.delete(other)
    assert deals.list_deals(scrm, customer_id=other) == []
    scrm.customers.merge(org, dup, actor="ops")
    moved = deals.list_deals(scrm, customer_id=org)
    assert len(moved) == 2 and sum(d.amount for d in moved) == Decimal(1500)
    assert {c["id"] for c in contracts.list_contracts(scrm, customer_id=org)} == {
        kept_contract["id"],
        dup_contract["id"],
    }
    assert [p["reference"] for p in contracts.list_payments(scrm, customer_id=org)] == ["D-1"]
    purchases = [
        i for i in scrm.interactions.list(customer_id=org).items if i.kind.value == "purchase"
    ]
    assert [p.amount for p in purchases] == [Decimal(200)]
    clock.advance(days=1)
    again = contracts.record_payment(
        scrm, dup_contract["id"], "200", reference="D-1", received_on="2025-10-02"
    )
    assert again["customer_id"] == org
    assert (
        len(
            [i for i in scrm.interactions.list(customer_id=org).items if i.kind.value == "purchase"]
        )
        == 1
    )


def test_demo_writes_two_pipelines_and_its_payments_are_the_purchases(
    crm_factory: Any, clock: FrozenClock
) -> None:
    import io

    import crmcore_sales.plugin
    from rich.console import Console

    from crmcore.io.demo import DEMO_NOW, load_demo

    clock.set(DEMO_NOW)
    crm = crm_factory(plugins=[crmcore_sales.plugin])
    load_demo(crm, seed=3, customers=60)
    out = io.StringIO()
    crm.call_hook("crm_demo", crm=crm, seed=3, console=Console(file=out, width=120))
    text = out.getvalue()
    assert "Open pipeline" in text and "Forecast" in text
    everything = deals.list_deals(crm, limit=10_000)
    assert {d.pipeline for d in everything} == {"new_business", "renewal"}
    paid = contracts.list_payments(crm)
    assert paid
    with crm.engine.connect() as conn:
        interactions = crm.metadata.tables["crm_interactions"]
        total = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(interactions.c.amount)).where(
                interactions.c.source == "sales"
            )
        ).one()
    assert total[0] == len(paid)
    assert total[1] == sum(Decimal(p["amount"]) for p in paid)
