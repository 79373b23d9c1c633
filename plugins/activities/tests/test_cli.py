"""``crm activities ...`` on both backends: readable and ``--json``, errors in one line."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore_activities import demo
from rich.console import Console

from crmcore import CRM
from crmcore.cli import build_cli


@pytest.fixture
def cli_db(db_url: str) -> str:
    """A database with the plugin's tables and one customer (id 1) owned by alice."""
    with CRM.open(db_url, upgrade=True, load_plugins=["activities"]) as crm:
        crm.customers.create({"name": "Ann", "owner": "alice", "tags": ["key_account"]})
    return db_url


def run(db: str, *args: str) -> Result:
    """Invoke ``crm --plugins activities --db DB ARGS``."""
    argv = ["--plugins", "activities", "--db", db, *args]
    return CliRunner().invoke(build_cli(argv), argv)


def ok_json(db: str, *args: str) -> Any:
    """Run with ``--json``, assert success and parse the output."""
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_activity_lifecycle_rules_plan_and_report(cli_db: str) -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    added = ok_json(
        cli_db,
        "activities",
        "add",
        "--customer",
        "1",
        "--kind",
        "call",
        "--subject",
        "Hello",
        "--due",
        f"{tomorrow}T10:00",
        "--assignee",
        "alice",
        "--ref",
        "sales.deal:4",
    )
    assert added["ref_type"] == "sales.deal" and added["ref_id"] == "4"
    assert ok_json(cli_db, "activities", "show", str(added["id"]))["subject"] == "Hello"
    assert [a["id"] for a in ok_json(cli_db, "activities", "week", "--user", "alice")] == [
        added["id"]
    ]
    assert ok_json(cli_db, "activities", "overdue") == []
    moved = ok_json(
        cli_db, "activities", "reschedule", str(added["id"]), "--due", f"{tomorrow}T11:00"
    )
    assert moved["due_local"].startswith(f"{tomorrow}T11:00")
    done = ok_json(cli_db, "activities", "done", str(added["id"]), "--outcome", "ok")
    assert done["status"] == "done"
    rule = json.dumps(
        {
            "name": "key",
            "type": "cadence",
            "kind": "visit",
            "subject": "Visit",
            "params": {"rrule": "FREQ=DAILY;INTERVAL=30"},
            "targets": {"tags": ["key_account"]},
        }
    )
    ok_json(cli_db, "activities", "rules", "add", rule)
    assert [r["name"] for r in ok_json(cli_db, "activities", "rules", "list")] == ["key"]
    assert ok_json(cli_db, "activities", "plan", "--dry-run")["created"] == 1
    assert ok_json(cli_db, "activities", "plan")["created"] == 1
    assert ok_json(cli_db, "activities", "plan")["created"] == 0
    assert len(ok_json(cli_db, "activities", "list", "--status", "planned")) == 1
    readable = run(cli_db, "activities", "plan", "--dry-run")
    assert readable.exit_code == 0 and "would create 0" in readable.output
    start = date.today().replace(day=1).isoformat()
    end = (date.today() + timedelta(days=40)).isoformat()
    report = ok_json(cli_db, "activities", "report", "--from", start, "--to", end)
    assert report["rows"][0]["person"] == "alice"
    assert report["coverage"]["rules"]["key"]["targeted"] == 1
    # the visit planned for today 09:00 (UTC): its reminder time has passed (real clock)
    due = ok_json(cli_db, "activities", "reminders")
    assert [r["kind"] for r in due] == ["visit"]
    assert len(ok_json(cli_db, "activities", "reminders", "--send")) == 1
    assert ok_json(cli_db, "activities", "reminders") == []
    cancel = run(cli_db, "activities", "cancel", str(added["id"]))
    assert cancel.exit_code == 1 and "is done, not planned" in cancel.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (
                "add",
                "--customer",
                "1",
                "--kind",
                "fax",
                "--subject",
                "s",
                "--due",
                "2030-01-01T10:00",
            ),
            "kind: 'fax' is not one of",
        ),
        (
            ("add", "--customer", "1", "--kind", "call", "--subject", "s", "--due", "soon"),
            "due: 'soon' is not a timestamp",
        ),
        (
            (
                "add",
                "--customer",
                "1",
                "--kind",
                "call",
                "--subject",
                "s",
                "--due",
                "2030-01-01T10:00",
                "--ref",
                "x",
            ),
            "--ref: expected TYPE:ID",
        ),
        (("rules", "add", "{not json"), "definition: not JSON"),
        (("plan", "--through", "2999-01-01"), "through: 2999-01-01 is in the future"),
        (("report", "--from", "2026-02-01", "--to", "2026-01-01"), "--to: must be after --from"),
        (("show", "99"), "activity 99 does not exist"),
    ],
)
def test_bad_input_is_one_line(cli_db: str, args: tuple[str, ...], message: str) -> None:
    result = run(cli_db, "activities", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_demo_adds_rules_activities_and_prints_a_workbench(acrm: CRM) -> None:
    for n in range(12):
        acrm.customers.create({"name": f"C{n}", "owner": "alice" if n % 2 else "bob"})
    out = io.StringIO()
    demo.run(acrm, 1, Console(file=out, width=120))
    text = out.getvalue()
    assert "tasks planned by the rules" in text and "Workbench of" in text
