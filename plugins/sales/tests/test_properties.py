"""Issue 12 item 10: the SQL forecast, funnel and ageing equal a plain-Python computation.

Hypothesis draws random deal histories (stage moves at random intervals, wins,
losses, amounts with cents, contracts with random schedules and payments);
each is written through the service functions on the test's backend, and the
SQL figures are compared with the same definitions computed in Python.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from crmcore_sales import contracts, deals, forecast, funnel, receivables, stages
from crmcore_sales.receivables import BUCKETS, bucket_of
from crmcore_sales.settings import settings_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM

START = datetime(2025, 6, 1, 12, tzinfo=UTC)
TODAY = date(2026, 1, 1)

deal_strategy = st.fixed_dictionaries(
    {
        "cents": st.integers(0, 10_000_000),
        "offset": st.integers(0, 60),
        "close_days": st.integers(0, 200),
        "moves": st.lists(st.tuples(st.integers(0, 3), st.integers(1, 20)), max_size=5),
        "end": st.sampled_from(["open", "won", "lost"]),
        "end_gap": st.integers(1, 20),
        "schedule": st.lists(
            st.tuples(st.integers(1, 5000), st.integers(0, 240)), min_size=1, max_size=4
        ),
        "payments": st.lists(st.tuples(st.integers(1, 100), st.integers(0, 200)), max_size=3),
    }
)


def _clear(crm: CRM) -> None:
    with crm.engine.begin() as conn:
        for name in (
            "sales_payments",
            "sales_instalments",
            "sales_contracts",
            "sales_deal_history",
            "sales_deals",
        ):
            conn.execute(sa.delete(crm.metadata.tables[name]))
        conn.execute(sa.delete(crm.metadata.tables["crm_interactions"]))


def _build(crm: CRM, customer_id: int, drawn: list[dict[str, Any]]) -> dict[str, Any]:
    pipeline = settings_of(crm).pipelines["new_business"]
    names = pipeline.stage_names
    model: dict[str, Any] = {"deals": [], "instalments": [], "payments": []}
    for n, spec in enumerate(drawn):
        amount = Decimal(spec["cents"]) / 100
        when = START + timedelta(days=spec["offset"])
        close = TODAY + timedelta(days=spec["close_days"])
        deal = deals.add_deal(
            crm,
            {
                "customer_id": customer_id,
                "title": f"d{n}",
                "amount": amount,
                "expected_close": close,
            },
            at=when,
        )
        path = [(names[0], when)]
        probability = pipeline.stages[0].probability
        for index, gap in spec["moves"]:
            if names[index] == path[-1][0]:
                continue
            when += timedelta(days=gap)
            stages.move_deal(crm, deal.id, names[index], at=when)
            path.append((names[index], when))
            probability = pipeline.stages[index].probability
        status = spec["end"]
        if status != "open":
            when += timedelta(days=spec["end_gap"])
            if status == "won":
                stages.win_deal(crm, deal.id, reason="price", at=when)
            else:
                stages.lose_deal(crm, deal.id, reason="price", at=when)
            path.append((status, when))
        model["deals"].append(
            {"amount": amount, "close": close, "status": status, "path": path, "p": probability}
        )
        if status == "won" and amount > 0:
            _contract(crm, deal.id, amount, spec, model, n)
    return model


def _contract(
    crm: CRM, deal_id: int, amount: Decimal, spec: dict[str, Any], model: dict[str, Any], n: int
) -> None:
    weights = [w for w, _ in spec["schedule"]]
    shares = [(amount * w / sum(weights)).quantize(Decimal("0.01")) for w in weights]
    shares[-1] = amount - sum(shares[:-1])
    if any(s <= 0 for s in shares):
        return
    dues = [START.date() + timedelta(days=d) for _, d in spec["schedule"]]
    contract = contracts.create_contract(
        crm,
        deal_id,
        {
            "start_date": START.date(),
            "end_date": TODAY,
            "instalments": [
                {"due_date": d, "amount": a} for d, a in zip(dues, shares, strict=True)
            ],
        },
    )
    remaining = amount
    for k, (percent, day) in enumerate(spec["payments"]):
        paid = min((amount * percent / 100).quantize(Decimal("0.01")), remaining)
        if paid <= 0:
            continue
        received = START.date() + timedelta(days=day)
        contracts.record_payment(
            crm, contract["id"], paid, reference=f"p{n}-{k}", received_on=received
        )
        remaining -= paid
        model["payments"].append(paid)
    ordered = sorted(zip(dues, range(len(dues)), shares, strict=True))
    paid_total, cumulative = amount - remaining, Decimal(0)
    for due, _, share in ordered:
        cumulative += share
        outstanding = min(max(cumulative - paid_total, Decimal(0)), share)
        model["instalments"].append((due, outstanding))


def _expected_weighted(model: dict[str, Any]) -> dict[str, Decimal]:
    found: dict[str, Decimal] = defaultdict(Decimal)
    for d in model["deals"]:
        if d["status"] == "open" and TODAY <= d["close"] < date(2026, 7, 1):
            found[f"{d['close']:%Y-%m}"] += d["amount"] * d["p"] / 100
    return dict(found)


def _order(names: tuple[str, ...], stage: str) -> int:
    return len(names) if stage == "won" else -1 if stage == "lost" else names.index(stage)


def _expected_funnel(
    model: dict[str, Any], names: tuple[str, ...]
) -> tuple[list[int], dict[str, float]]:
    tops = [max(_order(names, s) for s, _ in d["path"]) for d in model["deals"]]
    reached = [sum(1 for t in tops if t >= i) for i in range(len(names) + 1)]
    stays: dict[str, list[float]] = defaultdict(list)
    for d in model["deals"]:
        for (stage, began), (_, left) in zip(d["path"], d["path"][1:], strict=False):
            if stage in names:
                stays[stage].append((left - began).total_seconds() / 86400)
    return reached, {s: statistics.median(v) for s, v in stays.items()}


def _expected_ageing(model: dict[str, Any]) -> dict[str, Decimal]:
    buckets = {b: Decimal(0) for b in BUCKETS}
    for due, outstanding in model["instalments"]:
        if outstanding > 0:
            buckets[bucket_of((TODAY - due).days)] += outstanding
    return buckets


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=st.lists(deal_strategy, min_size=1, max_size=6))
def test_sql_figures_equal_python(scrm: CRM, drawn: list[dict[str, Any]]) -> None:
    _clear(scrm)
    cid = scrm.customers.create({"name": "Prop"}).id
    assert cid is not None
    model = _build(scrm, cid, drawn)
    names = settings_of(scrm).pipelines["new_business"].stage_names

    rows = forecast.weighted_pipeline(scrm, start="2026-01-01", end="2026-07-01")
    expected = {k: v for k, v in _expected_weighted(model).items()}
    assert {r["period"]: r["weighted"] for r in rows} == expected

    report = funnel.funnel(scrm, start="2025-06-01", end="2026-01-01")
    reached, medians = _expected_funnel(model, names)
    assert [s["reached"] for s in report["stages"]] + [report["won_from_cohort"]] == reached
    for s in report["stages"]:
        median = medians.get(s["stage"])
        if median is None:
            assert s["median_days_in_stage"] is None
        else:
            assert abs(s["median_days_in_stage"] - median) < 1e-6

    ageing = receivables.ageing(scrm)["currencies"].get("EUR")
    expected_ageing = _expected_ageing(model)
    if ageing is None:
        assert all(v == 0 for v in expected_ageing.values())
    else:
        assert {b: ageing[b] for b in BUCKETS} == expected_ageing
    purchases = scrm.interactions.list(customer_id=cid, kinds=["purchase"], limit=100).items
    assert sorted(p.amount for p in purchases) == sorted(model["payments"])
