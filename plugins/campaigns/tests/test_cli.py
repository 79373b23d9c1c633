"""``crm campaigns ...`` on both backends: readable and ``--json``, errors in one line."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore_campaigns import demo
from rich.console import Console

from crmcore import CRM
from crmcore.cli import build_cli

PLUGINS = "campaigns,messaging"


@pytest.fixture
def cli_db(db_url: str) -> str:
    """A database with campaigns and messaging, a template and six reachable customers."""
    from crmcore_messaging.templates import save_template

    with CRM.open(db_url, upgrade=True, load_plugins=PLUGINS.split(",")) as crm:
        crm.customers.create_many(
            [
                {"name": f"p{i}", "tags": ["vip"], "consent": {"data_processing": True}}
                for i in range(6)
            ]
        )
        save_template(crm, "hello", locale="en", text="Hello {{ customer.name }}")
    return db_url


def run(db: str, *args: str) -> Result:
    """Invoke ``crm --plugins campaigns,messaging --db DB ARGS``."""
    argv = ["--plugins", PLUGINS, "--db", db, *args]
    return CliRunner().invoke(build_cli(argv), argv)


def ok_json(db: str, *args: str) -> Any:
    """Run with ``--json``, assert success and parse the output."""
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_launch_results_stop(cli_db: str) -> None:
    created = ok_json(
        cli_db,
        "campaigns",
        "create",
        "VIP hello",
        "--filter",
        "tag=vip",
        "--variant",
        "A=hello",
        "--variant",
        "B=hello:2",
        "--control-share",
        "0.2",
        "--cost-per-message",
        "0.5",
        "--reminder-days",
        "3",
    )
    assert created["status"] == "draft" and created["audience"] == {"filter": "tag=vip"}
    assert [v["weight"] for v in created["variants"]] == [1, 2]
    cid = str(created["id"])
    launched = ok_json(cli_db, "campaigns", "launch", cid)
    assert (launched["audience"], launched["treated"], launched["control"]) == (6, 5, 1)
    assert launched["messages"] == {"queued": 5}
    assert ok_json(cli_db, "campaigns", "show", cid)["status"] == "launched"
    assert [c["id"] for c in ok_json(cli_db, "campaigns", "list")] == [created["id"]]
    found = ok_json(cli_db, "campaigns", "results", cid)
    assert found["treated"]["n"] == 5 and found["uplift"]["estimate"] == 0.0
    readable = run(cli_db, "campaigns", "results", cid)
    assert readable.exit_code == 0, readable.output
    assert "Uplift" in readable.output and "Incremental revenue" in readable.output
    assert ok_json(cli_db, "campaigns", "run") == []
    stopped = ok_json(cli_db, "campaigns", "stop", cid)
    assert stopped["cancelled_messages"] == 5
    listed = run(cli_db, "campaigns", "list")
    assert listed.exit_code == 0 and "VIP hello" in listed.output


def test_errors_are_one_line(cli_db: str) -> None:
    missing = run(cli_db, "campaigns", "show", "99")
    assert missing.exit_code == 1
    assert missing.output.strip() == "Error: campaign 99 does not exist"
    both = run(cli_db, "campaigns", "create", "x", "--filter", "", "--segment", "s")
    assert both.exit_code == 1 and "give exactly one of" in both.output
    bad = run(cli_db, "campaigns", "create", "x", "--customers", "1,a", "--template", "hello")
    assert bad.exit_code == 1 and "--customers" in bad.output
    weight = run(cli_db, "campaigns", "create", "x", "--filter", "", "--variant", "A=hello:x")
    assert weight.exit_code == 1 and "weight" in weight.output
    assert "Traceback" not in missing.output + both.output + bad.output


def test_no_send_freezes_only(cli_db: str) -> None:
    created = ok_json(
        cli_db, "campaigns", "create", "offline", "--customers", "1,2,3", "--template", "hello"
    )
    launched = ok_json(cli_db, "campaigns", "launch", str(created["id"]), "--no-send")
    assert launched["messages"] == {} and launched["audience"] == 3


def test_demo_on_an_empty_database_says_why_it_skips(cli_db: str) -> None:
    with CRM.open(cli_db, load_plugins=PLUGINS.split(",")) as crm:
        out = io.StringIO()
        demo.run(crm, 7, Console(file=out, width=120))
    assert "no at-risk customers" in out.getvalue()
