"""Every sales service function obeys the principal (the access conformance matrix) and audits."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from crmcore_sales import (
    contracts,
    deals,
    demo,
    forecast,
    funnel,
    kpis,
    performance,
    privacy,
    receivables,
    resolvers,
    settings,
    stages,
    store,
    views,
)
from crmcore_sales.tables import deals_table
from rich.console import Console

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

MODULES: tuple[Any, ...] = (
    deals,
    stages,
    contracts,
    receivables,
    views,
    kpis,
    privacy,
    forecast,
    funnel,
    performance,
    store,
    demo,
)
#: Functions taking the CRM first that are not service functions, and why.
EXEMPT = {
    "settings.remember_settings": "reads the configuration once at start-up (crm_startup)",
    "settings.settings_of": "returns the configuration the CRM opened with",
    "resolvers.deal_customer": "a @requires resolver: core's check calls it",
    "resolvers.contract_customer": "a @requires resolver: core's check calls it",
}
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _add(crm: CRM, customer_id: int, **extra: Any) -> int:
    data = {"customer_id": customer_id, "title": "kit", "expected_close": "2026-02-01"}
    return deals.add_deal(crm, {**data, **extra}).id


TERMS = {"start_date": "2025-06-01", "end_date": "2026-06-01", "instalment_count": 2}


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    data: dict[str, Any] = {"deal": _add(crm, visible, amount="100")}
    for who, cid in (("visible", visible), ("hidden", hidden)):
        won = _add(crm, cid, amount="1000")
        stages.win_deal(crm, won, reason="price")
        contract = contracts.create_contract(crm, won, TERMS)
        contracts.record_payment(crm, contract["id"], "10", reference=f"kit-{who}")
        data[f"{who}_contract"] = contract["id"]
    data["visible_customer"] = crm.customers.get(visible)
    return data


def _fresh_contract(crm: CRM, s: Subjects) -> int:
    return int(contracts.create_contract(crm, _won_deal(crm, s), TERMS)["id"])


def _fresh_deal(crm: CRM, s: Subjects) -> int:
    return _add(crm, s.visible)


def _won_deal(crm: CRM, s: Subjects) -> int:
    deal = _add(crm, s.visible, amount="500")
    stages.win_deal(crm, deal, reason="price")
    return deal


D = "deal"


def _rows(uow: Any, s: Subjects) -> Any:
    deals = deals_table(uow.crm.metadata)
    query = store.deal_query(uow.crm.metadata, uow.connection.dialect.name)
    return uow.connection.execute(query.where(deals.c.id == s.data[D])).all()


CASES: list[Case] = [
    Case("deals.add_deal", lambda c, s: _add(c, s.visible)),
    Case("deals.get_deal", lambda c, s: deals.get_deal(c, s.data[D])),
    Case("deals.deal_history", lambda c, s: deals.deal_history(c, s.data[D])),
    Case("deals.list_deals", lambda c, s: deals.list_deals(c)),
    Case("deals.update_deal", lambda c, s: deals.update_deal(c, s.data[D], {"next_step": "kit"})),
    Case(
        "stages.move_deal", lambda c, s: stages.move_deal(c, s.fresh, "proposal"), setup=_fresh_deal
    ),
    Case(
        "stages.win_deal",
        lambda c, s: stages.win_deal(c, s.fresh, reason="price"),
        setup=_fresh_deal,
    ),
    Case(
        "stages.lose_deal",
        lambda c, s: stages.lose_deal(c, s.fresh, reason="price"),
        setup=_fresh_deal,
    ),
    Case("stages.reopen_deal", lambda c, s: stages.reopen_deal(c, s.fresh), setup=_won_deal),
    Case(
        "contracts.create_contract",
        lambda c, s: contracts.create_contract(c, s.fresh, TERMS),
        setup=_won_deal,
    ),
    Case(
        "contracts.get_contract", lambda c, s: contracts.get_contract(c, s.data["visible_contract"])
    ),
    Case("contracts.list_contracts", lambda c, s: contracts.list_contracts(c)),
    Case("contracts.list_payments", lambda c, s: contracts.list_payments(c)),
    Case(
        "contracts.record_payment",
        lambda c, s: contracts.record_payment(c, s.fresh, "5", reference=uuid.uuid4().hex),
        setup=_fresh_contract,
    ),
    Case("receivables.ageing", lambda c, s: receivables.ageing(c)),
    Case("receivables.sweep", lambda c, s: receivables.sweep(c), EVERYONE_ONLY),
    Case(
        "views.profile_section", lambda c, s: views.profile_section(c, s.data["visible_customer"])
    ),
    Case("views.account_rollup", lambda c, s: views.account_rollup(c, s.visible, [s.visible])),
    Case("views.churn_signals", lambda c, s: views.churn_signals(c, [s.visible])),
    Case("kpis.metrics", lambda c, s: kpis.metrics(c, PERIOD), EVERYONE_ONLY),
    Case(
        "privacy.export", in_unit_of_work(lambda u, s: privacy.export(u, s.visible)), EVERYONE_ONLY
    ),
    Case(
        "privacy.erase",
        in_unit_of_work(lambda u, s: privacy.erase(u, s.fresh)),
        ADMIN_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "privacy.forget",
        in_unit_of_work(lambda u, s: privacy.forget(u, [s.fresh])),
        EVERYONE_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "forecast.weighted_pipeline",
        lambda c, s: forecast.weighted_pipeline(
            c, start="2026-01-01", end="2027-01-01", by="owner"
        ),
    ),
    Case(
        "forecast.categories",
        lambda c, s: forecast.categories(c, start="2025-01-01", end="2027-01-01"),
    ),
    Case("forecast.stage_win_rates", lambda c, s: forecast.stage_win_rates(c)),
    Case("forecast.backtest", lambda c, s: forecast.backtest(c, as_of=PERIOD.start)),
    Case("funnel.funnel", lambda c, s: funnel.funnel(c, start="2025-01-01", end="2027-01-01")),
    Case(
        "performance.set_target",
        lambda c, s: performance.set_target(
            c, owner="kit", start="2026-01-01", end="2026-04-01", amount="5"
        ),
        EVERYONE_ONLY,
    ),
    Case("performance.list_targets", lambda c, s: performance.list_targets(c), EVERYONE_ONLY),
    Case(
        "performance.performance",
        lambda c, s: performance.performance(c, start="2025-01-01", end="2027-01-01"),
        EVERYONE_ONLY,
    ),
    Case("demo.load", lambda c, s: demo.load(c, 1), EVERYONE_ONLY),
    Case(
        "demo.run",
        lambda c, s: demo.run(c, 2, Console(file=io.StringIO())),
        EVERYONE_ONLY,
    ),
    Case("store.load_deal", in_unit_of_work(lambda u, s: store.load_deal(u, s.data[D]))),
    Case("store.history_of", in_unit_of_work(lambda u, s: store.history_of(u, s.data[D]))),
    Case(
        "store.deals_from_rows", in_unit_of_work(lambda u, s: store.deals_from_rows(u, _rows(u, s)))
    ),
    Case(
        "store.write_history",
        in_unit_of_work(
            lambda u, s: store.write_history(u, s.data[D], [("owner", None, "kit")], u.now)
        ),
    ),
    Case(
        "store.audit",
        in_unit_of_work(lambda u, s: store.audit(u, "kit", "deal", s.data[D], s.visible)),
    ),
    Case(
        "privacy.merge_rows",
        in_unit_of_work(lambda u, s: privacy.merge_rows(u, s.visible, s.fresh)),
        setup=fresh_customer,
    ),
]


def test_every_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []
    assert set(undeclared(settings, resolvers)) == set(EXEMPT)


def test_sales_conformance_matrix(scrm: CRM) -> None:
    matrix = run_conformance(
        scrm,
        "sales",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES, settings, resolvers),
        exempt=EXEMPT,
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("stages.win_deal", "foreign")] == "denied"
    assert outcome[("stages.win_deal", "granted")] == "allowed"
    assert outcome[("deals.list_deals", "foreign")] == "nothing foreign"


def test_agents_see_and_change_deals_of_their_customers_and_account_teams(scrm: CRM) -> None:
    mine, theirs, team_account = scrm.customers.create_many(
        [
            {"name": "Mine", "owner": "alice"},
            {"name": "Theirs", "owner": "bob"},
            {"name": "Team Co", "kind": "organization", "owner": "olga"},
        ]
    )
    assert mine.id and theirs.id and team_account.id
    scrm.accounts.add_member(team_account.id, "alice", "account_manager")
    foreign = _add(scrm, theirs.id)
    on_team = _add(scrm, team_account.id)
    alice = scrm.as_user(Principal("alice"))
    for attempt in (
        lambda: deals.get_deal(alice, foreign),
        lambda: deals.update_deal(alice, foreign, {"notes": "x"}),
        lambda: stages.win_deal(alice, foreign, reason="price"),
        lambda: _add(alice, theirs.id),
    ):
        with pytest.raises(AccessDeniedError):
            attempt()
    own = _add(alice, mine.id)
    assert {d.id for d in deals.list_deals(alice)} == {own, on_team}
    stages.move_deal(alice, on_team, "proposal", actor="mallory")
    assert deals.get_deal(scrm, own).owner == "alice"
    entries = scrm.audit.query(action="sales.*", limit=100).items
    by_alice = [e for e in entries if e.actor == "alice"]
    assert {e.action for e in by_alice} == {"sales.deal_add", "sales.deal_move"}
    assert [e.on_behalf_of for e in by_alice if e.action == "sales.deal_move"] == ["mallory"]


def test_agent_aggregates_count_only_customers_they_may_read(scrm: CRM) -> None:
    mine, theirs = scrm.customers.create_many(
        [{"name": "Mine", "owner": "alice"}, {"name": "Theirs", "owner": "bob"}]
    )
    assert mine.id and theirs.id
    _add(scrm, mine.id, amount="100")
    _add(scrm, theirs.id, amount="900")
    alice = scrm.as_user(Principal("alice"))
    rows = forecast.weighted_pipeline(alice, start="2026-01-01", end="2026-04-01")
    assert [(r["deals"], str(r["amount"])) for r in rows] == [(1, "100")]
    everyone = forecast.weighted_pipeline(scrm, start="2026-01-01", end="2026-04-01")
    assert [(r["deals"], str(r["amount"])) for r in everyone] == [(2, "1000")]
    assert funnel.funnel(alice, start="2025-01-01", end="2027-01-01")["cohort"] == 1
    assert receivables.ageing(alice)["currencies"] == {}
