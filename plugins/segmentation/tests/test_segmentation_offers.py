"""Cross-sell, up-sell, likely buyers (hooks, CLI, 360° view); retention by group; bad inputs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import crmcore_segmentation.plugin
import pytest
from click.testing import CliRunner
from crmcore_segmentation import (
    basket,
    churn,
    intervals,
    predictive,
    predictive_signals,
    recommend,
    retention_groups,
    tiers,
    validation,
)
from crmcore_segmentation.cli_predictive import parse_horizon

from crmcore import CRM, NotFoundError, ValidationError
from crmcore.access import AccessDeniedError, Principal
from crmcore.cli import build_cli
from crmcore.cli.context import CLIState
from crmcore.pytest_plugin import CRMFactory

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CATALOGUE = {
    "tent-1": ("tents", "100"),
    "tent-2": ("tents", "200"),
    "tent-3": ("tents", "350"),
    "stove": ("kitchen", "40"),
    "pan": ("kitchen", "20"),
    "mat": ("sleep", "30"),
}


@pytest.fixture
def seg(crm_factory: CRMFactory, clock: Any) -> CRM:
    clock.set(NOW)
    return crm_factory(plugins=[crmcore_segmentation.plugin])


def _order(cid: int, days: int, skus: list[str]) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "kind": "purchase",
        "occurred_at": (NOW - timedelta(days=days)).isoformat(),
        "amount": "10",
        "currency": "EUR",
        "items": [
            {"sku": s, "category": CATALOGUE[s][0], "unit_price": CATALOGUE[s][1]} for s in skus
        ],
    }


def _shop(crm: CRM) -> list[int]:
    """Ten customers: tent-1 buyers mostly buy a stove and a mat too."""
    ids = [
        int(c.id)
        for c in crm.customers.create_many(
            [
                {"name": f"C{i}", "owner": "alice" if i < 5 else "bob", "tags": ["vip"] * (i % 2)}
                for i in range(10)
            ]
        )
    ]
    orders = []
    for i, cid in enumerate(ids[:8]):
        orders.append(_order(cid, 30 + i, ["tent-1", "stove"] + (["mat"] if i < 6 else [])))
    orders.append(_order(ids[8], 10, ["tent-1"]))  # has not bought stove or mat
    orders.append(_order(ids[9], 12, ["pan", "tent-2"]))
    crm.interactions.record_many(orders)
    return ids


def test_rules_offers_and_likely_buyers(seg: CRM) -> None:
    ids = _shop(seg)
    analysis = basket.association_rules(seg, min_support=0.2, min_confidence=0.5)
    assert analysis.baskets == 10
    by_pair = {(r.antecedent, r.consequent): r for r in analysis.rules}
    rule = by_pair[(("tent-1",), ("stove",))]
    assert (rule.count, rule.support) == (8, 0.8)
    assert rule.confidence == pytest.approx(8 / 9)
    assert rule.lift == pytest.approx((8 / 9) / 0.8)
    assert (("mat", "stove"), ("tent-1",)) in by_pair  # a rule from a frequent triple

    offers = recommend.recommend(seg, ids[8], min_support=0.2, min_confidence=0.5)
    cross = [o for o in offers if o.kind == "cross_sell"]
    assert [o.item for o in cross] == ["stove", "mat"]
    assert cross[0].because == ("tent-1",) and cross[0].confidence == pytest.approx(8 / 9)
    up = [o for o in offers if o.kind == "up_sell"]
    assert [(o.item, o.because, o.price) for o in up] == [("tent-2", ("tent-1",), 200.0)]
    # tent-2 is the dearest tent sold (tent-3 never was: no known price); pan -> stove.
    up9 = [o for o in recommend.recommend(seg, ids[9]) if o.kind == "up_sell"]
    assert [(o.item, o.because, o.price) for o in up9] == [("stove", ("pan",), 40.0)]
    assert all(o.item != "tent-1" for o in recommend.recommend(seg, ids[0]))

    buyers = recommend.likely_buyers(seg, "stove", min_support=0.2, min_confidence=0.5)
    assert [b["customer_id"] for b in buyers] == [ids[8]]

    # The plugin's own hooks answer other plugins.
    answer = seg.call_hook("segmentation_recommendations", crm=seg, customer_ids=[ids[8]], limit=1)
    found = answer if isinstance(answer, dict) else answer[0]
    assert [o["item"] for o in found[ids[8]] if o["kind"] == "cross_sell"] == ["stove"]
    likely = seg.call_hook("segmentation_likely_buyers", crm=seg, item="mat", limit=10)
    assert ids[8] in {b["customer_id"] for b in (likely if isinstance(likely, list) else [])} or (
        likely == []
    )

    # The 360° view carries the offers.
    section = seg.customers.profile(ids[8])["plugins"]["segmentation"]
    assert [o["item"] for o in section["next_best_offers"]][:1] == ["tent-2"] or [
        o["item"] for o in section["next_best_offers"]
    ][:2] == ["stove", "mat"]
    assert section["predicted"] is None  # nothing fitted yet


def test_offers_respect_the_principal(seg: CRM) -> None:
    ids = _shop(seg)
    alice = seg.as_user(Principal("alice"))
    assert recommend.recommend(alice, ids[0]) is not None
    with pytest.raises(AccessDeniedError):
        recommend.recommend(alice, ids[8])
    with pytest.raises(AccessDeniedError):
        basket.association_rules(alice)
    assert {b["customer_id"] for b in recommend.likely_buyers(alice, "mat")} <= set(ids[:5])


def test_retention_and_intervals_by_group(seg: CRM) -> None:
    ids = _shop(seg)
    extra = [_order(ids[0], d, ["pan"]) for d in (400, 300, 200)]
    extra += [_order(ids[1], 380, ["pan"])]
    seg.interactions.record_many(extra)
    by_tag = {g.group: g for g in retention_groups.retention_by_group(seg, "tag")}
    assert set(by_tag) == {"vip"}
    vip = by_tag["vip"]  # odd customers: 1, 3, 5, 7, 9
    assert vip.customers == 5
    assert (vip.previous_customers, vip.retained) == (1, 1)  # customer 1 bought 380 days ago
    owners = {g.group: g for g in retention_groups.retention_by_group(seg, "field:owner")}
    assert owners["alice"].customers == 5 and owners["bob"].customers == 5
    assert owners["alice"].retention_rate == 100  # customers 0 and 1 came back
    assert owners["alice"].cohorts and owners["alice"].cohorts[0]["size"] >= 1
    assert owners["bob"].previous_customers == 0 and owners["bob"].retention_rate is None
    stats = {s.customer_id: s for s in intervals.interval_stats(seg)}
    assert stats[ids[0]].purchase_days == 4
    assert stats[ids[0]].median_interval_days == 100.0  # 400 -> 300 -> 200 -> 30 days ago
    grouped = {g["group"]: g for g in retention_groups.interval_stats_by_group(seg, "field:owner")}
    assert grouped["alice"]["customers"] == 2
    assert grouped["alice"]["median_interval_days"] == 135.0  # gaps 100, 100, 170, 349
    assert {g.group for g in retention_groups.retention_by_group(seg, "tier")} <= {
        "high",
        "medium",
        "low",
    }
    with pytest.raises(ValidationError, match="group"):
        retention_groups.retention_by_group(seg, "field:password")
    with pytest.raises(ValidationError, match="group"):
        retention_groups.retention_by_group(seg, "colour")
    with pytest.raises(ValidationError, match="days"):
        retention_groups.retention_by_group(seg, "tag", days=0)


def _steady(crm: CRM) -> list[int]:
    ids = [int(c.id) for c in crm.customers.create_many([{"name": f"S{i}"} for i in range(30)])]
    rows = []
    for k, cid in enumerate(ids):
        gap = 7 + k
        last = 5 if k % 3 else 200  # every third customer stopped long ago
        rows += [
            {
                "customer_id": cid,
                "kind": "purchase",
                "occurred_at": (NOW - timedelta(days=last + gap * j)).isoformat(),
                "amount": str(10 + k),
                "currency": "EUR",
            }
            for j in range(1 + k % 6)
        ]
    crm.interactions.record_many(rows)
    return ids


def test_stored_scores_feed_tiers_churn_and_cli(seg: CRM) -> None:
    ids = _steady(seg)
    fits = predictive.fit_models(seg, horizon_days=90)
    assert fits.scored == 30 and fits.spend is not None
    stored = {p.customer_id: p for p in predictive.iter_stored_predictions(seg)}
    assert set(stored) == set(ids)
    live = {p.customer_id: p for p in predictive.predict(seg, horizon_days=90)}
    assert live[ids[1]].p_alive == pytest.approx(stored[ids[1]].p_alive)
    # A customer who stopped 200 days ago after many purchases is less alive than one buying.
    assert stored[ids[3]].p_alive < stored[ids[4]].p_alive
    high = tiers.tier_members(seg, "high", "predicted_clv")
    assert high and all(m["value"] > 0 for m in high)
    signals = predictive_signals.alive_signals(seg, ids)
    assert signals and all(
        s.weight == pytest.approx(1 - stored[s.customer_id].p_alive, abs=1e-4) for s in signals
    )
    assert {s.customer_id for s in signals} <= {c for c, p in stored.items() if p.p_alive < 0.5}
    # Churn scoring hears the signal through crm_churn_signals (the plugins' part).
    flagged = {a.customer_id: a for a in churn.assess_churn(seg)}
    signalled = {s.customer_id for s in signals}
    assert signalled & set(flagged)
    for cid in signalled & set(flagged):
        assert flagged[cid].plugins > 0
        assert any(r.startswith("segmentation.bgnbd: P(alive)") for r in flagged[cid].reasons)
    result = CliRunner().invoke(
        build_cli(), ["segments", "predict", "--json", "--limit", "3"], obj=CLIState(crm=seg)
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3
    result = CliRunner().invoke(build_cli(), ["segments", "fit", "--json"], obj=CLIState(crm=seg))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["bgnbd"]["params"].keys() == {"r", "alpha", "a", "b"}
    assert seg.audit.query(action="segmentation.fit").items


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["segments", "validate", "--calibration-end", "2026-13-01", "--horizon", "4w"], "ISO"),
        (["segments", "validate", "--calibration-end", "2026-01-01", "--horizon", "4x"], "horizon"),
        (["segments", "validate", "--calibration-end", "2026-05-30", "--horizon", "4w"], "today"),
        (["segments", "fit", "--unit-days", "0"], "time_unit_days"),
        (["segments", "basket", "--min-support", "0"], "min_support"),
        (["segments", "basket", "--max-length", "4"], "max_length"),
        (["segments", "recommend", "99999"], "99999"),
        (["segments", "retention-by", "nope"], "group"),
    ],
)
def test_cli_bad_inputs_are_one_line_errors(seg: CRM, args: list[str], message: str) -> None:
    _steady(seg)
    result = CliRunner().invoke(build_cli(), args, obj=CLIState(crm=seg))
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_service_bad_inputs(seg: CRM) -> None:
    with pytest.raises(ValidationError, match="no purchase"):
        predictive.fit_models(seg)
    with pytest.raises(ValidationError, match="no BG/NBD fit"):
        predictive.predict(seg)
    with pytest.raises(ValidationError, match="horizon"):
        predictive.fit_models(seg, horizon_days=0)
    with pytest.raises(ValidationError, match="model"):
        predictive.latest_fit(seg, "pareto")
    with pytest.raises(ValidationError, match="calibration_end"):
        validation.validate_models(seg, calibration_end="2026-01-01", horizon_days=7)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="buckets"):
        validation.validate_models(seg, calibration_end=date(2026, 1, 1), horizon_days=7, buckets=0)
    with pytest.raises(ValidationError, match="level"):
        basket.association_rules(seg, level="brand")
    with pytest.raises(ValidationError, match="min_confidence"):
        basket.association_rules(seg, min_confidence=2)
    with pytest.raises(ValidationError, match="limit"):
        recommend.recommendations(seg, [], limit=0)
    with pytest.raises(ValidationError, match="item"):
        recommend.likely_buyers(seg, "")
    with pytest.raises(NotFoundError):
        recommend.recommend(seg, 424242)
    assert parse_horizon("39w") == 273 and parse_horizon("1y") == 365 and parse_horizon("5") == 5


def _cli(crm: CRM, *args: str) -> Any:
    result = CliRunner().invoke(build_cli(), list(args), obj=CLIState(crm=crm))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_commands_print_what_the_services_return(seg: CRM) -> None:
    ids = _shop(seg)
    _steady(seg)
    rules = _cli(seg, "segments", "basket", "--min-support", "0.05", "--json", "--limit", "0")
    analysis = basket.association_rules(seg, min_support=0.05)
    assert rules["rules"] == [r.as_dict() for r in analysis.rules] and rules["rules"]
    offers = _cli(seg, "segments", "recommend", str(ids[8]), "--json")
    assert offers == [o.as_dict() for o in recommend.recommend(seg, ids[8])]
    grouped = _cli(seg, "segments", "retention-by", "field:owner", "--json")
    assert [g["group"] for g in grouped] == ["(none)", "alice", "bob"]
    spacing = _cli(seg, "segments", "intervals", "--json", "--limit", "0")
    assert spacing == [s.as_dict() for s in intervals.interval_stats(seg)]
    check = _cli(
        seg, "segments", "validate", "--calibration-end", "2026-03-01", "--horizon", "8w", "--json"
    )
    direct = validation.validate_models(seg, calibration_end=date(2026, 3, 1), horizon_days=56)
    assert check["actual_total"] == direct.actual_total
    assert check["models"] == direct.models and check["horizon_days"] == 56
    text = CliRunner().invoke(
        build_cli(),
        ["segments", "validate", "--calibration-end", "2026-03-01", "--horizon", "8w"],
        obj=CLIState(crm=seg),
    )
    assert text.exit_code == 0 and "bgnbd" in text.output and "formula" in text.output
