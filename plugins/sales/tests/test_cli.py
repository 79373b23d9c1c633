"""Issue 12 item 8: ``crm sales ...`` end to end, readable and ``--json``, and its bad paths."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmcore import CRM
from crmcore.cli import build_cli


@pytest.fixture
def cli_db(db_url: str) -> str:
    """A database with the sales plugin's tables and one organisation (id 1) owned by alice."""
    with CRM.open(db_url, upgrade=True, load_plugins=["sales"]) as crm:
        crm.customers.create({"name": "Acme Ltd", "kind": "organization", "owner": "alice"})
        crm.customers.create({"name": "Bob's shop", "owner": "bob"})
    return db_url


def run(db: str, *args: str) -> Result:
    """Invoke ``crm --plugins sales --db DB ARGS``."""
    argv = ["--plugins", "sales", "--db", db, *args]
    return CliRunner().invoke(build_cli(argv), argv)


def ok_json(db: str, *args: str) -> Any:
    """Run with ``--json``, assert success and parse the output."""
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_deal_lifecycle_through_the_cli(cli_db: str) -> None:
    close = (date.today() + timedelta(days=30)).isoformat()
    pipelines = ok_json(cli_db, "sales", "pipelines")
    assert {p["pipeline"] for p in pipelines} == {"new_business", "renewal"}
    deal = ok_json(
        cli_db,
        "sales",
        "deals",
        "add",
        "--customer",
        "1",
        "--title",
        "Vans",
        "--close",
        close,
        "--item",
        "van:2:15000.50",
        "--owner",
        "alice",
    )
    assert deal["amount"] == "30001.00" or deal["amount"] == "30001"
    assert (
        ok_json(cli_db, "sales", "deals", "move", str(deal["id"]), "proposal")["probability"] == 50
    )
    updated = ok_json(
        cli_db,
        "sales",
        "deals",
        "update",
        str(deal["id"]),
        "--set",
        "amount=31000.25",
        "--set",
        "probability=55",
    )
    assert (updated["amount"], updated["probability"]) == ("31000.25", 55)
    assert (
        ok_json(cli_db, "sales", "deals", "win", str(deal["id"]), "--reason", "price")["status"]
        == "won"
    )
    shown = ok_json(cli_db, "sales", "deals", "show", str(deal["id"]))
    assert [h["new"] for h in shown["history"] if h["field"] == "stage"] == [
        "qualification",
        "proposal",
        "won",
    ]
    listed = run(cli_db, "sales", "deals", "list")
    assert listed.exit_code == 0 and "Vans" in listed.output
    start = (date.today() - timedelta(days=90)).isoformat()
    end = (date.today() + timedelta(days=275)).isoformat()
    contract = ok_json(
        cli_db,
        "sales",
        "contracts",
        "add",
        str(deal["id"]),
        "--start",
        start,
        "--end",
        end,
        "--instalments",
        "4",
        "--terms",
        "0",
    )
    assert len(contract["instalments"]) == 4
    paid = ok_json(
        cli_db, "sales", "payments", "add", str(contract["id"]), "7750.06", "--reference", "INV-9"
    )
    assert paid["amount"] == "7750.06"
    ageing = ok_json(cli_db, "sales", "receivables")
    assert ageing["currencies"]["EUR"]["total"] == "23250.19"
    table = run(cli_db, "sales", "receivables")
    assert table.exit_code == 0 and "61-90" in table.output
    swept = ok_json(cli_db, "sales", "sweep")
    assert len(swept["overdue"]) == 2  # due 90 and 59 days ago; the first is paid
    assert ok_json(cli_db, "sales", "sweep") == {"overdue": [], "renewals": []}
    reopened = ok_json(cli_db, "sales", "deals", "reopen", str(deal["id"]), "--stage", "proposal")
    lost = ok_json(cli_db, "sales", "deals", "lose", str(reopened["id"]), "--reason", "price")
    assert lost["status"] == "lost"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deals", "add", "--customer", "1", "--title", "x", "--close", "soon"], "expected_close:"),
        (
            [
                "deals",
                "add",
                "--customer",
                "1",
                "--title",
                "x",
                "--close",
                "2026-01-01",
                "--item",
                "a:b",
            ],
            "--item:",
        ),
        (
            [
                "deals",
                "add",
                "--customer",
                "1",
                "--title",
                "x",
                "--close",
                "2026-01-01",
                "--amount",
                "1,5",
            ],
            "amount:",
        ),
        (["deals", "update", "1", "--set", "probability=high"], "probability:"),
        (["deals", "move", "99", "proposal"], "deal 99 does not exist"),
        (["payments", "add", "1", "5", "--reference", " "], "reference:"),
        (["receivables", "--as-of", "tomorrow"], "as_of:"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(cli_db: str, args: list[str], message: str) -> None:
    result = run(cli_db, "sales", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_obeys_the_user(cli_db: str) -> None:
    close = (date.today() + timedelta(days=30)).isoformat()
    theirs = ok_json(
        cli_db, "sales", "deals", "add", "--customer", "2", "--title", "Shop", "--close", close
    )
    as_alice = ["--user", "alice"]
    refused = run(
        cli_db, *as_alice, "sales", "deals", "win", str(theirs["id"]), "--reason", "price"
    )
    assert refused.exit_code == 1 and "may not" in refused.output
    assert ok_json(cli_db, *as_alice, "sales", "deals", "list") == []
    refused_sweep = run(cli_db, *as_alice, "sales", "sweep")
    assert refused_sweep.exit_code == 1


def test_report_commands(cli_db: str) -> None:
    today = date.today()
    close = (today + timedelta(days=10)).isoformat()
    deal = ok_json(
        cli_db,
        "sales",
        "deals",
        "add",
        "--customer",
        "1",
        "--title",
        "Vans",
        "--close",
        close,
        "--amount",
        "1000",
        "--owner",
        "alice",
    )
    ok_json(cli_db, "sales", "deals", "move", str(deal["id"]), "negotiation")
    start, end = today.replace(day=1).isoformat(), (today + timedelta(days=120)).isoformat()
    data = ok_json(cli_db, "sales", "forecast", "--start", start, "--end", end, "--by", "owner")
    assert [(r["key"], r["weighted"]) for r in data["weighted"]] == [("alice", "750")]
    assert data["categories"]["commit"] == "1000"
    assert run(cli_db, "sales", "forecast", "--backtest", "2020-01-01").exit_code == 0
    report = ok_json(cli_db, "sales", "funnel", "--start", start, "--end", end)
    assert report["cohort"] == 1 and report["stages"][3]["reached"] == 1
    target = ok_json(
        cli_db,
        "sales",
        "targets",
        "set",
        "--owner",
        "alice",
        "--start",
        start,
        "--end",
        end,
        "--amount",
        "3000",
    )
    assert target["amount"] == "3000"
    assert [t["owner"] for t in ok_json(cli_db, "sales", "targets")] == ["alice"]
    board = ok_json(cli_db, "sales", "performance", "--start", start, "--end", end)
    assert board[0]["owner"] == "alice" and board[0]["coverage"] == 0.25
    for command in ("forecast", "funnel", "performance"):
        shown = run(cli_db, "sales", command)
        assert shown.exit_code == 0, shown.output
    bad = run(cli_db, "sales", "forecast", "--start", "2026-05-01", "--end", "2026-01-01")
    assert bad.exit_code == 1 and "end:" in bad.output
