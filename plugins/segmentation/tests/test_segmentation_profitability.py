"""Profitability in both forms and the 80/20 KPIs on the configured basis (issue 18 item 5).

On SQLite and PostgreSQL, against a plain-Python transcription of
docs/plugins/segmentation.md: ``contribution = floor(revenue x margin) - costs`` (to
1/10000), ``revenue_minus_costs = revenue - costs``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import crmcore_segmentation.plugin
import pytest
from click.testing import CliRunner
from crmcore_segmentation import value
from crmcore_segmentation.report import metrics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, ConfigError, Period
from crmcore.cli import build_cli
from crmcore.cli.context import CLIState

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
DEFAULT_ACQUISITION = Decimal(3)


@pytest.fixture(params=["contribution", "revenue_minus_costs"])
def form(request: pytest.FixtureRequest) -> str:
    """The configured profitability form."""
    return str(request.param)


@pytest.fixture
def pcrm(crm_factory, clock, form):
    """A CRM configured with a margin of 0.2537, a default acquisition cost and ``form``."""
    clock.set(AS_OF)
    return crm_factory(
        plugins=[crmcore_segmentation.plugin],
        plugin_sections={
            "segmentation": {
                "margin": "0.2537",
                "profitability": form,
                "costs": {"acquisition": str(DEFAULT_ACQUISITION)},
                "tiers": {"basis": "profit"},
            }
        },
    )


def plain_profits(
    revenue: dict[int, Decimal], costs: dict[int, tuple[Decimal | None, Decimal | None]]
) -> dict[int, tuple[Decimal, Decimal]]:
    """Customer -> (contribution, revenue - costs), as the docs define them."""
    out = {}
    for cid, total in revenue.items():
        own = costs.get(cid, (None, None))
        acquisition = DEFAULT_ACQUISITION if own[0] is None else own[0]
        service = Decimal(0) if own[1] is None else own[1]
        share = (total * Decimal("0.2537")).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
        out[cid] = (share - acquisition - service, total - acquisition - service)
    return out


def plain_pareto(values: dict[int, Decimal], percent: Decimal = Decimal(80)) -> list[int]:
    """The Pareto set as the docs define it."""
    positive = sorted(((v, c) for c, v in values.items() if v > 0), key=lambda x: (-x[0], x[1]))
    total = sum((v for v, _ in positive), Decimal(0))
    members, running = [], Decimal(0)
    for v, c in positive:
        if running < total * percent / 100:
            members.append(c)
        running += v
    return members


def plain_high_share(values: dict[int, Decimal]) -> Decimal:
    """The high tier's share (%) of the summed values."""
    n = len(values)
    high = [v for v in values.values() if 100 * sum(1 for w in values.values() if w > v) < 20 * n]
    total = sum(values.values(), Decimal(0))
    return (sum(high, Decimal(0)) * 100 / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


purchases = st.lists(
    st.tuples(st.integers(0, 4), st.integers(1, 300), st.sampled_from([1, 999, 2550, 12345])),
    min_size=1,
    max_size=20,
)
own_costs = st.dictionaries(
    st.integers(0, 4),
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["0", "1.5", "40"])),
        st.one_of(st.none(), st.sampled_from(["0", "2.25", "75"])),
    ),
    max_size=5,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=purchases, costs=own_costs)
def test_both_forms_match_the_definitions(pcrm: CRM, form: str, rows, costs) -> None:
    """Both forms, the configured profit, the profit tiers and Pareto set, named everywhere."""
    ids = [c.id for c in pcrm.customers.create_many([{"name": f"P{i}"} for i in range(5)])]
    try:
        pcrm.interactions.record_many(
            {
                "customer_id": ids[c],
                "kind": "purchase",
                "occurred_at": (AS_OF - timedelta(days=d)).isoformat(),
                "amount": str(Decimal(cents) / 100),
                "currency": "EUR",
            }
            for c, d, cents in rows
        )
        stored: dict[int, tuple[Decimal | None, Decimal | None]] = {}
        for index, (acquisition, service) in costs.items():
            if acquisition is None and service is None:
                continue
            value.set_costs(pcrm, ids[index], acquisition=acquisition, service=service)
            stored[ids[index]] = (
                None if acquisition is None else Decimal(acquisition),
                None if service is None else Decimal(service),
            )
        revenue: dict[int, Decimal] = {}
        for c, _, cents in rows:
            revenue[ids[c]] = revenue.get(ids[c], Decimal(0)) + Decimal(cents) / 100
        expected = plain_profits(revenue, stored)
        found = {v.customer_id: v for v in value.customer_values(pcrm, as_of=AS_OF)}
        assert set(found) == set(expected)
        for cid, (contribution, net) in expected.items():
            v = found[cid]
            assert (v.contribution, v.revenue_minus_costs) == (contribution, net)
            assert v.profit == (contribution if form == "contribution" else net)
            assert v.profit_form == form and v.as_dict()["profit_form"] == form
        profits = {cid: pair[0 if form == "contribution" else 1] for cid, pair in expected.items()}
        key = value.pareto(pcrm, as_of=AS_OF)
        assert key.basis == "profit" and key.measure == f"profit_{form}"
        assert key.customer_ids == plain_pareto(profits)
        summary = value.tiers(pcrm, as_of=AS_OF)
        assert {t.measure for t in summary} == {f"profit_{form}"}
    finally:
        for cid in ids:
            pcrm.customers.delete(cid)


def test_report_kpis_follow_the_configured_basis(pcrm: CRM, form: str) -> None:
    """crm report's 80/20 KPIs use tiers.basis and name the measure and the profit form."""
    ids = [c.id for c in pcrm.customers.create_many([{"name": f"K{i}"} for i in range(10)])]
    pcrm.interactions.record_many(
        {
            "customer_id": cid,
            "kind": "purchase",
            "occurred_at": (AS_OF - timedelta(days=5 + i)).isoformat(),
            "amount": str(10 * (i + 1) ** 2),
            "currency": "EUR",
        }
        for i, cid in enumerate(ids)
    )
    value.set_costs(pcrm, ids[-1], service="400")  # the biggest buyer is not the most profitable
    period = Period(AS_OF - timedelta(days=90), AS_OF)
    kpis = metrics(pcrm, period)
    measure = f"profit_{form}"
    assert "key_customer_share.revenue" not in kpis
    revenue = {cid: Decimal(10 * (i + 1) ** 2) for i, cid in enumerate(ids)}
    pairs = plain_profits(revenue, {ids[-1]: (None, Decimal(400))})
    profits = {cid: p[0 if form == "contribution" else 1] for cid, p in pairs.items()}
    assert kpis[f"key_customer_share.{measure}"] == plain_high_share(profits)
    members = plain_pareto(profits)
    positive = sum(1 for v in profits.values() if v > 0)
    share = (Decimal(len(members)) * 100 / positive).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert kpis[f"pareto_customer_share.{measure}"] == share
    flat = pcrm.metrics(period)["segmentation"]
    assert f"key_customer_share.{measure}" in flat

    def run(*args: str) -> str:
        result = CliRunner().invoke(build_cli(), list(args), obj=CLIState(crm=pcrm))
        assert result.exit_code == 0, result.output
        return result.output

    assert f"profit = {form}" in run("segments", "clv", "--limit", "3")
    rows = json.loads(run("segments", "clv", "--json"))
    assert {r["profit_form"] for r in rows} == {form}
    tiers = run("segments", "tiers")
    assert f"Value tiers by {measure}" in tiers and f"profit = {form}" in tiers
    head = json.loads(run("segments", "pareto", "--json"))
    assert head["basis"] == "profit" and head["measure"] == measure
    money = json.loads(run("segments", "tiers", "--basis", "monetary", "--json"))
    assert {t["measure"] for t in money} == {"revenue"}


def test_monetary_basis_keeps_revenue_kpis(crm_factory, clock) -> None:
    """The default basis: the KPIs are key_customer_share.revenue, pareto_customer_share.revenue."""
    clock.set(AS_OF)
    crm = crm_factory(plugins=[crmcore_segmentation.plugin])
    cid = crm.customers.create({"name": "Solo"}).id
    crm.interactions.record(
        {
            "customer_id": cid,
            "kind": "purchase",
            "occurred_at": AS_OF - timedelta(days=2),
            "amount": "10",
            "currency": "EUR",
        }
    )
    kpis = metrics(crm, Period(AS_OF - timedelta(days=30), AS_OF))
    assert kpis["key_customer_share.revenue"] == Decimal("100.00")
    assert kpis["pareto_customer_share.revenue"] == Decimal("100.00")


def test_unknown_form_is_refused(crm_factory) -> None:
    """profitability takes only the two forms."""
    with pytest.raises(ConfigError, match="profitability"):
        crm_factory(
            plugins=[crmcore_segmentation.plugin],
            plugin_sections={"segmentation": {"profitability": "gross"}},
        )


def test_the_worked_example_of_the_docs(pcrm: CRM, form: str) -> None:
    """docs/plugins/segmentation.md: 1,234.5678 at margin 0.2537, costs 40 and 12.25."""
    cid = pcrm.customers.create({"name": "Worked"}).id
    pcrm.interactions.record(
        {
            "customer_id": cid,
            "kind": "purchase",
            "occurred_at": AS_OF - timedelta(days=3),
            "amount": "1234.5678",
            "currency": "EUR",
        }
    )
    value.set_costs(pcrm, cid, acquisition="40", service="12.25")
    [found] = value.customer_values(pcrm, customer_ids=[cid])
    assert found.contribution == Decimal("260.9598")
    assert found.revenue_minus_costs == Decimal("1182.3178")
    assert found.profit == {"contribution": found.contribution}.get(form, Decimal("1182.3178"))
