"""Issue 12 items 3, 5, 6: a known deal history gives exactly the expected figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from crmcore_sales import contracts, deals, forecast, funnel, performance, stages

from crmcore import CRM
from crmcore.errors import ValidationError


def at(day: str) -> datetime:
    """Noon UTC of an ISO day."""
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def _history(crm: CRM) -> dict[str, int]:
    """Five deals of Q4 2025 (see the module docstring of the test for the figures)."""
    cid = crm.customers.create({"name": "Acme", "kind": "organization"}).id
    assert cid is not None

    def add(title: str, amount: str, created: str, close: str, owner: str) -> int:
        data = {"customer_id": cid, "title": title, "amount": amount, "expected_close": close}
        return deals.add_deal(crm, {**data, "owner": owner}, at=at(created)).id

    d1 = add("D1", "1000", "2025-10-01", "2025-11-30", "alice")
    stages.move_deal(crm, d1, "proposal", at=at("2025-10-11"))
    stages.win_deal(crm, d1, reason="price", at=at("2025-10-21"))
    d2 = add("D2", "2000", "2025-10-05", "2025-12-31", "alice")
    stages.move_deal(crm, d2, "needs_analysis", at=at("2025-10-15"))
    stages.lose_deal(crm, d2, reason="price", at=at("2025-10-25"))
    d3 = add("D3", "3000", "2025-10-10", "2025-12-15", "alice")
    stages.move_deal(crm, d3, "proposal", at=at("2025-11-10"))
    stages.move_deal(crm, d3, "negotiation", at=at("2025-12-10"))
    deals.update_deal(crm, d3, {"expected_close": "2026-01-20"}, at=at("2025-12-10"))
    d4 = add("D4", "500", "2025-11-01", "2026-02-15", "bob")
    d5 = add("D5", "4000", "2025-11-01", "2025-12-20", "bob")
    stages.move_deal(crm, d5, "negotiation", at=at("2025-11-11"))
    stages.win_deal(crm, d5, reason="price", at=at("2025-12-01"))
    contract = contracts.create_contract(
        crm, d5, {"start_date": "2025-12-01", "end_date": "2026-11-30", "instalment_count": 4}
    )
    contracts.record_payment(crm, contract["id"], "1000", reference="B-1", received_on="2025-12-15")
    return {"D1": d1, "D2": d2, "D3": d3, "D4": d4, "D5": d5}


def test_weighted_pipeline_and_categories(scrm: CRM) -> None:
    _history(scrm)
    monthly = forecast.weighted_pipeline(scrm, start="2026-01-01", end="2026-04-01")
    assert [(r["period"], r["deals"], r["amount"], r["weighted"]) for r in monthly] == [
        ("2026-01", 1, Decimal(3000), Decimal(2250)),
        ("2026-02", 1, Decimal(500), Decimal(50)),
    ]
    by_owner = forecast.weighted_pipeline(
        scrm, start="2026-01-01", end="2026-07-01", period="quarter", by="owner"
    )
    assert [(r["period"], r["key"], r["weighted"]) for r in by_owner] == [
        ("2026-Q1", "alice", Decimal(2250)),
        ("2026-Q1", "bob", Decimal(50)),
    ]
    cats = forecast.categories(scrm, start="2025-12-01", end="2026-04-01")
    assert (cats["closed"], cats["commit"], cats["best_case"], cats["pipeline"]) == (
        Decimal(4000),
        Decimal(3000),
        Decimal(0),
        Decimal(500),
    )
    assert (cats["commit_total"], cats["pipeline_total"]) == (Decimal(7000), Decimal(7500))
    with pytest.raises(ValidationError) as info:
        forecast.weighted_pipeline(scrm, start="2026-01-01", end="2026-04-01", period="week")
    assert info.value.field == "period"
    with pytest.raises(ValidationError) as info:
        forecast.weighted_pipeline(scrm, start="2026-01-01", end="2026-04-01", by="colour")
    assert info.value.field == "by"


def test_empirical_win_rates_and_backtest(scrm: CRM) -> None:
    _history(scrm)
    rates = {r["stage"]: r for r in forecast.stage_win_rates(scrm)}
    assert [(r["reached"], r["won"], r["lost"], r["empirical"]) for r in rates.values()] == [
        (5, 2, 1, 66.67),
        (1, 0, 1, 0.0),
        (2, 1, 0, 100.0),
        (2, 1, 0, 100.0),
    ]
    assert rates["proposal"]["configured"] == 50
    test = forecast.backtest(
        scrm, as_of=datetime(2025, 11, 1, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert (test["open_deals"], test["forecast"], test["won_deals"], test["actual"]) == (
        1,
        Decimal(300),
        1,
        Decimal(4000),
    )
    assert test["error"] == Decimal(-3700) and test["accuracy"] == round(4000 / 300, 4)
    with pytest.raises(ValidationError) as info:
        forecast.backtest(scrm, as_of=datetime(2025, 11, 1))
    assert info.value.field == "as_of"


def test_funnel_conversion_time_in_stage_and_velocity(scrm: CRM) -> None:
    _history(scrm)
    report = funnel.funnel(scrm, start="2025-10-01", end="2026-01-01")
    assert report["cohort"] == 5
    assert [
        (s["stage"], s["reached"], s["advanced"], s["conversion"], s["median_days_in_stage"])
        for s in report["stages"]
    ] == [
        ("qualification", 5, 4, 0.8, 10.0),
        ("needs_analysis", 4, 3, 0.75, 10.0),
        ("proposal", 3, 3, 1.0, 20.0),
        ("negotiation", 3, 2, round(2 / 3, 4), 20.0),
    ]
    assert (report["deals_won"], report["deals_lost"], report["win_rate"]) == (2, 1, 0.6667)
    assert report["average_deal_size"] == Decimal(2500)
    assert (report["median_cycle_days"], report["mean_cycle_days"]) == (25.0, 25.0)
    assert report["open_deals"] == 2
    assert report["velocity_per_day"] == Decimal("133.33")  # 2 x 2/3 x 2500 / 25
    alice = funnel.funnel(scrm, start="2025-10-01", end="2026-01-01", owner="alice")
    assert (alice["cohort"], alice["deals_won"], alice["open_deals"]) == (3, 1, 1)


@pytest.mark.parametrize(
    ("basis", "bob_attained"), [("won", Decimal(4000)), ("collected", Decimal(1000))]
)
def test_targets_performance_and_leaderboard(
    open_crm: Callable[..., CRM], basis: str, bob_attained: Decimal
) -> None:
    crm = open_crm({"attainment": basis})
    _history(crm)
    performance.set_target(crm, owner="alice", start="2025-10-01", end="2026-01-01", amount="5000")
    performance.set_target(crm, owner="bob", start="2025-10-01", end="2026-01-01", amount="2000")
    performance.set_target(crm, owner="bob", start="2025-10-01", end="2026-01-01", amount="3000")
    assert len(performance.list_targets(crm)) == 2
    board = {
        r["owner"]: r for r in performance.performance(crm, start="2025-10-01", end="2026-04-01")
    }
    alice, bob = board["alice"], board["bob"]
    assert (alice["won"], alice["lost"], alice["win_rate"], alice["won_amount"]) == (
        1,
        1,
        0.5,
        Decimal(1000),
    )
    won_basis = basis == "won"
    assert (alice["median_cycle_days"], alice["attainment"]) == (20.0, 0.2 if won_basis else 0.0)
    assert alice["open_weighted"] == Decimal(2250)
    assert alice["remaining_quota"] == (4000 if won_basis else 5000)
    assert alice["coverage"] == (0.5625 if won_basis else 0.45)
    assert (bob["won"], bob["win_rate"], bob["median_cycle_days"]) == (1, 1.0, 30.0)
    assert (bob["collected"], bob["attained"]) == (Decimal(1000), bob_attained)
    assert bob["target"] == Decimal(3000) and bob["open_weighted"] == Decimal(50)
    if basis == "won":
        assert (bob["rank"], alice["rank"]) == (1, 2) and bob["coverage"] is None
    with pytest.raises(ValidationError) as info:
        performance.set_target(crm, start="2025-10-01", end="2026-01-01", amount="1")
    assert info.value.field == "owner"
    with pytest.raises(ValidationError) as info:
        performance.set_target(crm, owner="x", start="2025-10-01", end="2026-01-01", amount=1.5)
    assert info.value.field == "amount"
