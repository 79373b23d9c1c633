"""The segmentation plugin through core, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import crmcore_segmentation.plugin
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from crmcore_segmentation import churn, retention, rfm, segments, value
from crmcore_segmentation.tables import CHURN_ALERTS, HISTORY, MEMBERS

from crmcore import ChurnSignal, ConfigError, NotFoundError, Period, ValidationError
from crmcore.cli import build_cli
from crmcore.cli.context import CLIState
from crmcore.hooks import hookimpl

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def seg(crm_factory, clock):
    clock.set(NOW)
    return crm_factory(plugins=[crmcore_segmentation.plugin])


def staircase(crm):
    """Customer k (1..7) buys k+1 times, 10*(k+1) EUR each, last purchase 10k days ago.

    The first customer's only purchase is refunded in full, so it does not count.
    """
    ids = [c.id for c in crm.customers.create_many([{"name": f"C{i}"} for i in range(7)])]
    rows = [
        {
            "customer_id": cid,
            "kind": "purchase",
            "occurred_at": (NOW - timedelta(days=10 * k + j, hours=1)).isoformat(),
            "amount": str(10 * (k + 1)),
            "currency": "EUR",
        }
        for k, cid in enumerate(ids)
        for j in range(k + 1)
    ]
    recorded = crm.interactions.record_many(rows, keep=True)
    crm.interactions.record(
        {
            "customer_id": ids[0],
            "kind": "refund",
            "occurred_at": NOW - timedelta(hours=1),
            "amount": "10",
            "currency": "EUR",
            "payload": {"refund_of": recorded[0].id},
        }
    )
    return ids


def count(crm, name):
    with crm.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(crm.metadata.tables[name])
        ).scalar()


def test_tables_are_created_and_the_plugin_is_listed(seg):
    names = set(sa.inspect(seg.engine).get_table_names())
    assert {MEMBERS, HISTORY, CHURN_ALERTS, "segmentation_segments"} <= names
    info = {p.name: p for p in seg.plugins()}
    assert info["segmentation"].version == "0.1.0"


def test_rfm_scores_segments_and_grid(seg):
    ids = staircase(seg)
    scores = rfm.rfm_scores(seg)
    assert [s.customer_id for s in scores] == ids[1:]  # the refunded purchase does not count
    assert [(s.r, s.f, s.m, s.segment) for s in scores] == [
        (5, 1, 1, "new"),
        (4, 1, 1, "promising"),
        (3, 2, 2, "about_to_sleep"),
        (2, 3, 3, "at_risk"),
        (1, 4, 4, "at_risk"),
        (1, 5, 5, "cant_lose"),
    ]
    assert scores[-1].recency_days == 61 and scores[-1].monetary == Decimal("490")
    grid = rfm.rfm_grid(seg)
    assert sum(map(sum, grid["counts"])) == 6
    assert grid["counts"][0] == [1, 0, 0, 0, 0]  # R5 row
    assert rfm.rfm_scores(seg, segment="at_risk", limit=1)[0].customer_id == ids[4]
    assert rfm.rfm_scores(seg, customer_ids=[ids[6], 99999])[0].segment == "cant_lose"


def test_segment_table_is_configurable(crm_factory, clock):
    clock.set(NOW)
    crm = crm_factory(
        plugins=[crmcore_segmentation.plugin],
        plugin_sections={
            "segmentation": {"segments": [{"name": "recent", "r": [4, 5], "fm": [1, 5]}]}
        },
    )
    staircase(crm)
    assert [s.segment for s in rfm.rfm_scores(crm)] == ["recent", "recent"] + ["other"] * 4


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"window_days": 0}, "plugins.segmentation.window_days"),
        ({"tiers": {"high_percent": 80, "medium_percent": 30}}, "high_percent + medium_percent"),
        ({"segments": [{"name": "x", "r": [4, 2], "fm": [1, 5]}]}, "segments.0.r"),
        ({"margin": "0.123456"}, "plugins.segmentation.margin"),
    ],
)
def test_bad_config_is_refused(crm_factory, section, message):
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        crm_factory(
            plugins=[crmcore_segmentation.plugin], plugin_sections={"segmentation": section}
        )


def test_bad_arguments(seg):
    with pytest.raises(ValidationError, match="window_days"):
        rfm.rfm_scores(seg, window_days=0)
    with pytest.raises(ValidationError, match="as_of"):
        rfm.rfm_scores(seg, as_of=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="basis"):
        value.tiers(seg, "karma")
    with pytest.raises(ValidationError, match="percent"):
        value.pareto(seg, percent=0)
    with pytest.raises(ValidationError, match="months"):
        retention.cohort_matrix(seg, months=0)


def test_tiers_pareto_and_clv(seg):
    ids = staircase(seg)
    summary = {t.tier: t for t in value.tiers(seg)}
    assert summary["high"].customers == 2 and summary["high"].value == Decimal("850")
    key = value.pareto(seg)
    assert key.customer_ids == [ids[6], ids[5], ids[4], ids[3]]
    assert key.total == Decimal("1390")
    assert value.pareto(seg, percent=30).customer_ids == [ids[6]]
    best = value.customer_values(seg, limit=1)[0]
    # 490 EUR in 7 purchases over 67 days: AOV 70, 7 per year, 30 % margin, 10 % over 3 years
    assert best.customer_id == ids[6]
    assert best.average_order_value == Decimal("70.00")
    assert best.predictive_clv == Decimal("365.57")
    assert best.profit == Decimal("147")


def test_profit_uses_customer_then_segment_then_default_costs(crm_factory, clock):
    clock.set(NOW)
    crm = crm_factory(
        plugins=[crmcore_segmentation.plugin],
        plugin_sections={
            "segmentation": {
                "costs": {
                    "acquisition": "5",
                    "service": "1",
                    "segments": {"cant_lose": {"service": "40"}},
                }
            }
        },
    )
    ids = staircase(crm)
    value.set_costs(crm, ids[5], acquisition="100")
    profits = {v.customer_id: v.profit for v in value.customer_values(crm)}
    assert profits[ids[6]] == Decimal("147") - 5 - 40  # segment cost
    assert profits[ids[5]] == Decimal("108") - 100 - 1  # customer's own acquisition cost
    assert profits[ids[4]] == Decimal("75") - 5 - 1
    tiered = value.tier_members(crm, "high", "profit")
    assert [m["customer_id"] for m in tiered] == [ids[6], ids[4]]


def test_set_costs_bad_input_stores_nothing(seg):
    cid = seg.customers.create({"name": "Ann"}).id
    with pytest.raises(ValidationError, match=r"^acquisition: must not be negative"):
        value.set_costs(seg, cid, acquisition="-1")
    with pytest.raises(ValidationError, match=r"^service: .*decimal places"):
        value.set_costs(seg, cid, service="0.123456")
    with pytest.raises(NotFoundError):
        value.set_costs(seg, 424242, service="1")
    assert count(seg, "segmentation_customer_costs") == 0


def test_cohorts_retention_and_repeat_rate(seg):
    staircase(seg)
    cohorts = retention.cohort_matrix(seg, months=3)
    assert [(c.month, c.size, c.active) for c in cohorts] == [
        ("2026-03", 1, (1, 1, 0)),
        ("2026-04", 3, (3, 1, None)),
        ("2026-05", 2, (2, None, None)),
    ]
    assert cohorts[1].retention[1] == Decimal("33.33")
    assert retention.repeat_purchase_rate(seg)["rate"] == Decimal("100.00")
    kept = retention.retention(seg, Period(NOW - timedelta(days=30), NOW))
    assert (kept.previous_customers, kept.retained) == (3, 0)
    assert kept.churn_rate == Decimal("100.00")


class Recorder:
    def __init__(self):
        self.changes = []

    @hookimpl
    def segmentation_membership_changed(self, ctx, changes):
        self.changes.append(list(changes))


def test_saved_segments_refresh_with_history_and_hook(seg, crm_factory, clock):
    recorder = Recorder()
    crm = crm_factory(plugins=[crmcore_segmentation.plugin, recorder])
    ids = staircase(crm)
    crm.customers.update(ids[1], {"tags": ["vip"], "attributes": {"score": 7}})
    rule = {
        "any": [
            {"field": "rfm.segment", "op": "eq", "value": "cant_lose"},
            {
                "all": [
                    {"field": "tag", "op": "eq", "value": "vip"},
                    {"field": "attributes.score", "op": "ge", "value": 5},
                ]
            },
        ]
    }
    defined = segments.define_segment(crm, "watch", rule, name="Watch list")
    assert defined.member_count == 2
    assert [m["customer_id"] for m in segments.segment_members(crm, "watch")] == [ids[1], ids[6]]
    assert [(c["customer_id"], c["joined"]) for c in recorder.changes[0]] == [
        (ids[1], True),
        (ids[6], True),
    ]
    assert recorder.changes[0][0]["segment"] == "watch"

    crm.customers.update(ids[1], {"tags": []})
    clock.advance(days=1)
    assert segments.refresh_segments(crm) == {"watch": {"joined": 0, "left": 1, "members": 1}}
    history = segments.membership_history(crm, "watch")
    assert [(h["customer_id"], h["joined"]) for h in history] == [
        (ids[1], True),
        (ids[6], True),
        (ids[1], False),
    ]
    # A condition on a missing value is false, so its negation is true.
    segments.define_segment(crm, "unscored", {"not": {"field": "rfm.r", "op": "ge", "value": 1}})
    assert [m["customer_id"] for m in segments.segment_members(crm, "unscored")] == [ids[0]]
    assert [s.key for s in segments.list_segments(crm)] == ["unscored", "watch"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"all": []}, "rule.all"),
        ({"field": "rfm.x", "op": "eq", "value": 1}, "rule.field: unknown field 'rfm.x'"),
        ({"any": [{"field": "tier", "op": "in", "value": "high"}]}, "rule.any.0"),
        ({"field": "tier", "op": "exists", "value": 1}, "rule"),
        ({"field": "customer.created_at", "op": "gt", "value": "2026-01-01"}, "timezone"),
    ],
)
def test_bad_rules_store_nothing(seg, rule, message):
    with pytest.raises(ValidationError, match=message):
        segments.define_segment(seg, "bad", rule)
    assert segments.list_segments(seg) == []


def test_bad_key_and_unknown_segment(seg):
    with pytest.raises(ValidationError, match=r"^key:"):
        segments.define_segment(seg, "Bad Key", {"field": "tier", "op": "exists"})
    with pytest.raises(NotFoundError):
        segments.refresh_segments(seg, ["nope"])


class Complaints:
    @hookimpl
    def crm_churn_signals(self, crm, customer_ids):
        return [
            ChurnSignal(customer_id=c, source="complaints", reason="open complaint", weight=1.0)
            for c in customer_ids
        ]


def _drifting(crm):
    """A: bought monthly for a year, nothing for 100 days. B: bought last week. P: prospect."""
    a, b, p = (c.id for c in crm.customers.create_many([{"name": n} for n in "ABP"]))
    rows = [
        {
            "customer_id": a,
            "kind": "purchase",
            "occurred_at": (NOW - timedelta(days=100 + 30 * i)).isoformat(),
            "amount": "20",
            "currency": "EUR",
        }
        for i in range(12)
    ] + [
        {
            "customer_id": b,
            "kind": "purchase",
            "occurred_at": (NOW - timedelta(days=7)).isoformat(),
            "amount": "20",
            "currency": "EUR",
        }
    ]
    crm.interactions.record_many(rows)
    crm.lifecycle.move(a, "active")
    return a, b, p


def test_churn_moves_customers_over_the_threshold(seg):
    a, b, _ = _drifting(seg)
    flagged = churn.assess_churn(seg)
    assert [f.customer_id for f in flagged] == [a]
    assessment = flagged[0]
    # 10 purchase days 30 days apart: history long enough for the interval signal, which
    # replaces the frequency drop: 100 days since the last = 3.33 usual gaps -> 3.33 / 4.
    assert assessment.frequency_drop == pytest.approx(100 / 30 / 4, abs=1e-4)
    assert assessment.inactivity == pytest.approx(100 / 180, abs=1e-4)
    assert assessment.score == pytest.approx(0.4 * 100 / 120 + 0.4 * 100 / 180, abs=1e-4)
    moved = churn.apply_churn_warnings(seg, actor="tester")
    assert [m.customer_id for m in moved] == [a]
    assert seg.customers.get(a).stage.value == "at_risk"
    last = seg.lifecycle.history(a)[-1]
    assert last.reason.startswith("churn score 0.56: overdue: 100 days since the last purchase")
    assert "no purchase for 100 days" in last.reason
    assert count(seg, CHURN_ALERTS) == 1
    assert churn.apply_churn_warnings(seg) == []  # already at risk: not moved again
    assert seg.customers.get(b).stage.value == "new"


def test_plugin_signals_add_to_the_score(crm_factory, clock):
    clock.set(NOW)
    crm = crm_factory(
        plugins=[crmcore_segmentation.plugin, Complaints()],
        plugin_sections={"segmentation": {"churn": {"threshold": 0.3}}},
    )
    a, _, _ = _drifting(crm)
    flagged = {f.customer_id: f for f in churn.assess_churn(crm)}
    assert set(flagged) == {a}  # B scores 0.2 (signal only), P has no purchase
    assert "complaints: open complaint" in flagged[a].reasons
    assert flagged[a].plugins == 1.0


def test_churn_rolls_back_when_a_later_hook_fails(crm_factory, clock):
    class Boom:
        @hookimpl(trylast=True)
        def crm_lifecycle_changed(self, ctx, events):
            raise RuntimeError("boom")

    clock.set(NOW)
    crm = crm_factory(plugins=[crmcore_segmentation.plugin])
    a, _, _ = _drifting(crm)
    crm.pm.register(Boom())
    with pytest.raises(Exception, match="boom"):
        churn.apply_churn_warnings(crm)
    assert crm.customers.get(a).stage.value == "active"
    assert count(crm, CHURN_ALERTS) == 0


def test_metrics_charts_profile_export_and_erase(seg):
    ids = staircase(seg)
    segments.define_segment(seg, "top", {"field": "tier", "op": "eq", "value": "high"})
    value.set_costs(seg, ids[6], acquisition="3")
    period = Period(NOW - timedelta(days=90), NOW)
    kpis = seg.metrics(period)["segmentation"]
    assert kpis["buyers"] == 6
    assert kpis["repeat_purchase_rate"] == Decimal("100.00")
    assert kpis["key_customer_share.revenue"] == Decimal("61.15")
    charts = seg.collect("crm_report_charts", crm=seg, period=period)["segmentation"]
    grid, cohorts, trend = charts
    assert grid.kind == "heatmap" and sum(sum(row) for row in grid.values) == 6
    assert cohorts.kind == "heatmap" and cohorts.y_labels[-1] == "2026-05"
    assert trend.kind == "line" and len(trend.x_labels) == 12

    section = seg.customers.profile(ids[6])["plugins"]["segmentation"]
    assert section["rfm"]["segment"] == "cant_lose"
    assert section["segments"] == ["top"]
    exported = seg.customers.export(ids[6])["plugins"]["segmentation"]
    assert exported["costs"] == {"acquisition": "3", "service": None}
    assert exported["segment_history"][0]["joined"] is True

    seg.customers.erase(ids[6])
    assert seg.customers.export(ids[6])["plugins"].get("segmentation") is None
    seg.customers.delete(ids[5])
    assert count(seg, MEMBERS) == 0


def run(crm, *args):
    runner = CliRunner()
    cli = build_cli()
    return runner.invoke(cli, list(args), obj=CLIState(crm=crm), catch_exceptions=False)


def test_cli(seg):
    ids = staircase(seg)
    result = run(seg, "segments", "rfm", "--json")
    assert result.exit_code == 0, result.output
    assert [r["segment"] for r in json.loads(result.output)][-1] == "cant_lose"
    assert "R5" in run(seg, "segments", "rfm", "--grid").output
    pareto_out = json.loads(run(seg, "segments", "pareto", "--json").output)
    assert [c["customer_id"] for c in pareto_out["customers"]] == [ids[6], ids[5], ids[4], ids[3]]
    assert json.loads(run(seg, "segments", "tiers", "--json").output)[0]["tier"] == "high"
    clv_out = json.loads(run(seg, "segments", "clv", "--customer", str(ids[6]), "--json").output)
    assert clv_out[0]["predictive_clv"] == "365.57"
    rule = json.dumps({"field": "rfm.segment", "op": "eq", "value": "at_risk"})
    assert run(seg, "segments", "define", "risky", rule).exit_code == 0
    assert json.loads(run(seg, "segments", "list", "--json").output)[0]["member_count"] == 2
    members = json.loads(run(seg, "segments", "members", "risky", "--json").output)
    assert [m["customer_id"] for m in members] == [ids[4], ids[5]]
    assert json.loads(run(seg, "segments", "refresh", "--json").output)["risky"]["left"] == 0
    cohorts = json.loads(run(seg, "segments", "cohorts", "--months", "2", "--json").output)
    assert cohorts[0]["retention"] == ["100.00", "33.33"]
    assert run(seg, "segments", "churn", "--json").exit_code == 0
    bad = CliRunner().invoke(
        build_cli(), ["segments", "define", "x", "{not json"], obj=CLIState(crm=seg)
    )
    assert bad.exit_code == 1 and "rule: not valid JSON" in bad.output
