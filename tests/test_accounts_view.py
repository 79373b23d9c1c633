"""Issue 11 item 2: the 360° view of an organisation, its roll-ups and plugin sections, the CLI."""

from __future__ import annotations

import json
from typing import Any

import crmcore_example.plugin
import pytest
from click.testing import CliRunner, Result

from crmcore import CRM
from crmcore.cli import build_cli
from crmcore.pytest_plugin import CRMFactory
from crmcore.testing import FrozenClock


def _org(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, "kind": "organization", **fields})
    assert customer.id is not None
    return customer.id


def _person(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, **fields})
    assert customer.id is not None
    return customer.id


def _buy(crm: CRM, customer_id: int, amount: str, at: str, currency: str = "CNY") -> None:
    crm.interactions.record(
        {
            "customer_id": customer_id,
            "kind": "purchase",
            "occurred_at": at,
            "amount": amount,
            "currency": currency,
        }
    )


@pytest.fixture
def huawei(crm_factory: CRMFactory) -> tuple[CRM, dict[str, int]]:
    crm = crm_factory(plugins=[crmcore_example.plugin])
    ids = {
        "huawei": _org(crm, "Huawei Technologies", owner="olga"),
        "device": _org(crm, "Huawei Device"),
        "honor": _org(crm, "Honor"),
        "li": _person(crm, "Li Wei", email="li@huawei.example"),
        "wang": _person(crm, "Wang Fang"),
        "zhao": _person(crm, "Zhao Lei"),
        "old": _person(crm, "Former Buyer"),
    }
    crm.accounts.set_parent(ids["device"], ids["huawei"])
    crm.accounts.set_parent(ids["honor"], ids["device"])
    crm.accounts.add_contact(
        ids["huawei"],
        ids["li"],
        job_title="Purchasing director",
        role="decision_maker",
        primary=True,
    )
    crm.accounts.add_contact(ids["huawei"], ids["wang"], role="technical_evaluator")
    crm.accounts.add_contact(ids["device"], ids["zhao"], role="user")
    crm.accounts.add_contact(ids["huawei"], ids["old"], end_date="2025-01-01")
    crm.accounts.add_member(ids["huawei"], "alice", "account_manager")
    crm.accounts.add_member(ids["huawei"], "pete", "pre_sales")
    _buy(crm, ids["huawei"], "1000.00", "2025-05-01T10:00:00+00:00")
    _buy(crm, ids["device"], "250.50", "2025-06-01T10:00:00+00:00")
    _buy(crm, ids["honor"], "10", "2025-07-01T10:00:00+00:00", "USD")
    _buy(crm, ids["old"], "999", "2025-08-01T10:00:00+00:00")  # not a current contact
    crm.interactions.record(
        {
            "customer_id": ids["huawei"],
            "kind": "meeting",
            "occurred_at": "2025-09-01T10:00:00+00:00",
            "contact_id": ids["li"],
        }
    )
    crm.interactions.record(
        {"customer_id": ids["zhao"], "kind": "call", "occurred_at": "2025-09-02T10:00:00+00:00"}
    )
    return crm, ids


def test_the_account_view(huawei: tuple[CRM, dict[str, int]], clock: FrozenClock) -> None:
    crm, ids = huawei
    crm.accounts.record_scores(ids["huawei"], {"information_flow": 80})
    clock.advance(days=30)
    crm.accounts.record_scores(ids["huawei"], {"information_flow": 60, "project_support": 30})
    crm.accounts.record_scores(ids["huawei"], {"competitive_preference": 70}, contact_id=ids["li"])
    view = crm.accounts.view(ids["huawei"])
    json.dumps(view)  # JSON-safe
    assert view["account"]["name"] == "Huawei Technologies"
    assert view["parent"] is None
    assert view["subsidiaries"] == [
        {
            "id": ids["device"],
            "name": "Huawei Device",
            "children": [{"id": ids["honor"], "name": "Honor", "children": []}],
        }
    ]
    assert [(c["name"], c["role"], c["primary"]) for c in view["contacts"]] == [
        ("Li Wei", "decision_maker", True),
        ("Wang Fang", "technical_evaluator", False),
    ]
    assert view["contacts"][0]["email"] == "li@huawei.example"
    assert view["team"]["owner"] == "olga"
    assert [(m["user"], m["role"]) for m in view["team"]["members"]] == [
        ("alice", "account_manager"),
        ("pete", "pre_sales"),
    ]
    rollup = view["rollup"]
    assert (rollup["members"], rollup["organisations"], rollup["contacts"]) == (6, 3, 3)
    assert rollup["interaction_count"] == 5  # the former contact's purchase is not counted
    assert rollup["revenue"] == {"CNY": "1250.5", "USD": "10"}
    assert rollup["last_interaction"] == "2025-09-02T10:00:00+00:00"
    relation = {m["customer_id"]: m["relation"] for m in rollup["by_member"]}
    assert relation == {
        ids["huawei"]: "account",
        ids["li"]: "contact",
        ids["wang"]: "contact",
        ids["zhao"]: "contact",
        ids["device"]: "subsidiary",
        ids["honor"]: "subsidiary",
    }
    scores = view["scores"]["account"]
    assert scores["information_flow"]["score"] == 60 and scores["information_flow"]["change"] == -20
    assert (
        view["scores"]["decision_makers"][str(ids["li"])]["competitive_preference"]["score"] == 70
    )
    assert [s["reason"] for s in view["signals"]] == [
        "relationship weak: project_support 30 (below 40)",
        "relationship falling: information_flow 80 -> 60 (-20)",
    ]
    # every plugin's roll-up section: the example plugin sums its touches over the members
    assert view["plugins"]["example"] == {"touches": 5, "members_touched": 4}
    assert crm.accounts.member_ids(ids["huawei"]) == sorted(relation)


def test_the_rollup_hook_gets_the_members(crm_factory: CRMFactory) -> None:
    seen: list[tuple[int, list[int]]] = []

    class Spy:
        from crmcore.hooks import hookimpl

        @hookimpl
        def crm_account_rollup(self, crm: CRM, account_id: int, member_ids: Any) -> Any:
            seen.append((account_id, list(member_ids)))
            return None

    crm = crm_factory(plugins=[Spy()])
    org, sub, li = _org(crm, "Acme"), _org(crm, "Acme Sub"), _person(crm, "Li")
    crm.accounts.set_parent(sub, org)
    crm.accounts.add_contact(sub, li)
    view = crm.accounts.view(org)
    assert seen == [(org, sorted([org, sub, li]))]
    assert view["plugins"] == {}


def test_crm_accounts_cli(db_url: str) -> None:
    runner = CliRunner()
    cli = build_cli()

    def run(*args: str) -> Result:
        return runner.invoke(cli, ["--db", db_url, *args], catch_exceptions=False)

    def ok(*args: str) -> Result:
        result = run(*args)
        assert result.exit_code == 0, result.output
        return result

    def fails(fragment: str, *args: str) -> None:
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines()[-1].startswith("Error: ")
        assert fragment in result.output and "Traceback" not in result.output

    ok("init")
    ok("customers", "add", "--name", "Huawei", "--kind", "organization")  # 1
    ok("customers", "add", "--name", "Huawei Device", "--kind", "organization")  # 2
    ok("customers", "add", "--name", "Li Wei")  # 3
    added = json.loads(
        ok(
            "accounts", "add-contact", "1", "3", "--title", "Director", "--role",
            "decision_maker", "--primary", "--start", "2025-01-01", "--json",
        ).output
    )  # fmt: skip
    assert added["primary"] is True and added["start_date"] == "2025-01-01"
    ok("accounts", "update-contact", "1", "3", "--set", "job_title=42", "--set", "role=null")
    [contact] = json.loads(ok("accounts", "contacts", "1", "--json").output)
    assert contact["job_title"] == "42" and contact["role"] is None
    assert (
        json.loads(ok("accounts", "organisations", "3", "--json").output)[0]["organisation_id"] == 1
    )
    ok("accounts", "set-parent", "2", "1")
    tree = json.loads(ok("accounts", "tree", "2", "--json").output)
    assert tree == {"id": 1, "name": "Huawei", "children": [
        {"id": 2, "name": "Huawei Device", "children": []}]}  # fmt: skip
    assert "Huawei Device" in ok("accounts", "subsidiaries", "1").output
    ok("accounts", "link", "3", "referred_by", "2")
    assert json.loads(ok("accounts", "links", "2", "--json").output)[0]["type"] == "referred_by"
    ok("accounts", "add-member", "1", "alice", "account_manager")
    assert json.loads(ok("accounts", "team", "1", "--json").output)[0]["user"] == "alice"
    ok("accounts", "score", "1", "information_flow=65", "project_support=30", "--at", "2025-06-01")
    ok("accounts", "score", "1", "information_flow=70", "--contact", "3", "--source", "qbr")
    history = json.loads(ok("accounts", "scores", "1", "--json").output)
    assert [s["score"] for s in history] == [70, 30, 65]
    shown = ok("accounts", "show", "1").output
    for text in ("Li Wei", "alice", "Huawei Device", "information_flow", "project_support 30"):
        assert text in shown
    view = json.loads(ok("accounts", "show", "1", "--json").output)
    assert view["rollup"]["members"] == 3
    ok("accounts", "end-contact", "1", "3", "--on", "2030-01-01")
    ok("accounts", "unlink", "3", "referred_by", "2")
    ok("accounts", "remove-member", "1", "alice")
    ok("accounts", "remove-parent", "2")
    assert "had no parent" in ok("accounts", "remove-parent", "2").output
    ok("accounts", "remove-contact", "1", "3")
    fails("is a person, not an organisation", "accounts", "add-contact", "3", "1")
    fails("scores.trust: unknown dimension", "accounts", "score", "1", "trust=5")
    fails("expected a number", "accounts", "score", "1", "information_flow=high")
    fails("give at least one DIMENSION=SCORE", "accounts", "score", "1")
    fails("type: 'friend' is not one of", "accounts", "link", "3", "friend", "1")
    fails("customer 99 does not exist", "accounts", "show", "99")
    fails("start_date: expected a date", "accounts", "add-contact", "1", "3", "--start", "soon")
    agent = run("--user", "bob", "accounts", "show", "1")
    assert agent.exit_code == 1 and "may not read customer 1" in agent.output
