"""The `crm` command line, end to end through click, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crmcore.cli import build_cli


@pytest.fixture
def run(db_url: str) -> object:
    runner = CliRunner()
    cli = build_cli()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, ["--db", db_url, *args], input=input, catch_exceptions=False)

    result = invoke("init")
    assert result.exit_code == 0, result.output
    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def fails(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = (
        result.stderr.strip().splitlines() if result.stderr else result.output.strip().splitlines()
    )
    assert len(lines) == 1, f"expected one error line, got: {result.output}"
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(build_cli(), ["--help"])
    assert result.exit_code == 0
    for command in ("init", "db", "customers", "interactions", "lifecycle", "plugins", "demo"):
        assert command in result.output


def test_customer_flow(run) -> None:  # type: ignore[no-untyped-def]
    created = json.loads(
        ok(
            run(
                "customers",
                "add",
                "--name",
                "Ada Lovelace",
                "--email",
                "ada@x.org",
                "--tag",
                "vip",
                "--attr",
                "level=3",
                "--json",
            )
        ).output
    )
    cid = str(created["id"])
    assert created["attributes"] == {"level": 3} and created["tags"] == ["vip"]
    assert "Ada Lovelace" in ok(run("customers", "list")).output
    listed = json.loads(ok(run("customers", "list", "--tag", "vip", "--json")).output)
    assert listed["total"] == 1 and listed["items"][0]["email"] == "ada@x.org"
    changed = json.loads(
        ok(
            run(
                "customers",
                "update",
                cid,
                "--set",
                "owner=bob",
                "--set",
                "phone=5550100200",
                "--json",
            )
        ).output
    )
    assert changed["changed"] == ["phone", "owner"] and changed["customer"]["phone"] == "5550100200"
    ok(
        run(
            "interactions",
            "add",
            "--customer",
            cid,
            "--kind",
            "purchase",
            "--amount",
            "19.90",
            "--currency",
            "EUR",
            "--at",
            "2026-01-01T10:00:00+01:00",
            "--channel",
            "web",
        )
    )
    listed_i = json.loads(ok(run("interactions", "list", "--customer", cid, "--json")).output)
    assert listed_i["items"][0]["amount"] == "19.9"
    history = json.loads(ok(run("lifecycle", "history", cid, "--json")).output)
    assert [h["to_stage"] for h in history] == ["prospect", "new"]
    ok(run("lifecycle", "move", cid, "active", "--reason", "second order"))
    profile = json.loads(ok(run("customers", "show", cid, "--json")).output)
    assert profile["customer"]["stage"] == "active"
    assert "Ada Lovelace" in ok(run("customers", "show", cid)).output
    exported = json.loads(ok(run("customers", "export", cid)).output)
    assert exported["customer"]["email"] == "ada@x.org" and len(exported["interactions"]) == 1


def test_errors_are_one_line_exit_1(run) -> None:  # type: ignore[no-untyped-def]
    ok(run("customers", "add", "--name", "Ada", "--email", "ada@x.org"))
    fails(
        run("customers", "add", "--name", "Other", "--email", "ADA@x.org"),
        "already belongs to customer 1",
    )
    fails(
        run("customers", "add", "--name", "X", "--email", "broken"),
        "email: not a valid email address",
    )
    fails(run("customers", "show", "99"), "customer 99 does not exist")
    fails(run("lifecycle", "move", "1", "loyal"), "cannot move from prospect to loyal")
    fails(
        run("interactions", "add", "--customer", "1", "--kind", "purchase"),
        "amount: required for a purchase",
    )
    fails(
        run("interactions", "add", "--customer", "1", "--kind", "call", "--at", "yesterday"),
        "--at: not an ISO 8601",
    )
    fails(
        run("customers", "update", "1", "--set", "stage=loyal"),
        "stage: change it with crm.lifecycle.move",
    )
    fails(run("customers", "update", "1", "--set", "nonsense"), "--set: expected key=value")
    fails(run("customers", "list", "--sort", "colour"), "sort: 'colour' is not one of")


def test_uninitialised_database_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        build_cli(), ["--db", str(tmp_path / "none.db"), "customers", "list"]
    )
    fails(result, "no database at")  # not created: tests/test_cli_safety.py
    (tmp_path / "empty.db").touch()
    result = CliRunner().invoke(
        build_cli(), ["--db", str(tmp_path / "empty.db"), "customers", "list"]
    )
    fails(result, "not initialised")


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "crm.toml"
    config.write_text("[database]\nurl = 3\n", encoding="utf-8")
    result = CliRunner().invoke(build_cli(), ["--config", str(config), "customers", "list"])
    fails(result, "database.url")


def test_plugins_list(run) -> None:  # type: ignore[no-untyped-def]
    result = json.loads(ok(run("plugins", "list", "--json")).output)
    assert isinstance(result, list)
    assert all({"name", "version", "hooks"} <= set(p) for p in result)


def test_db_status_and_upgrade(run) -> None:  # type: ignore[no-untyped-def]
    status = json.loads(ok(run("db", "status", "--json")).output)
    assert status == {"pending": [], "pending_by_owner": {}, "missing_plugins": {}}
    assert "up to date" in ok(run("db", "upgrade")).output


def test_delete_and_erase_need_confirmation(run) -> None:  # type: ignore[no-untyped-def]
    ok(run("customers", "add", "--name", "Ada", "--email", "ada@x.org"))
    result = run("customers", "delete", "1", input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    ok(run("customers", "erase", "1", "--yes"))
    shown = json.loads(ok(run("customers", "show", "1", "--json")).output)
    assert shown["customer"]["email"] is None and shown["customer"]["name"] == "erased customer 1"
    ok(run("customers", "delete", "1", "--yes"))
    fails(run("customers", "show", "1"), "does not exist")


def test_demo_runs(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    result = CliRunner().invoke(
        build_cli(), ["demo", "--path", str(path), "--customers", "60"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Loaded 60 customers" in result.output
    assert "Customers by lifecycle stage" in result.output
    listed = CliRunner().invoke(
        build_cli(), ["--db", str(path), "customers", "list", "--json", "--limit", "1"]
    )
    assert json.loads(listed.output)["total"] == 60


def test_demo_is_deterministic(tmp_path: Path) -> None:
    def snapshot(path: Path) -> object:
        result = CliRunner().invoke(build_cli(), ["demo", "--path", str(path), "--customers", "40"])
        assert result.exit_code == 0, result.output
        listed = CliRunner().invoke(
            build_cli(), ["--db", str(path), "customers", "list", "--json", "--limit", "40"]
        )
        items = json.loads(listed.output)["items"]
        interactions = CliRunner().invoke(
            build_cli(), ["--db", str(path), "interactions", "list", "--json", "--limit", "1000"]
        )
        listing = json.loads(interactions.output)
        for item in listing["items"]:
            # A sent message's interaction is keyed by the message's token, which is
            # random by design (it signs the unsubscribe and tracked links).
            if item["source"] == "messaging":
                assert len(item["external_id"]) == 32
                item["external_id"] = "<message token>"
        return items, listing

    assert snapshot(tmp_path / "a.db") == snapshot(tmp_path / "b.db")


def test_any_exception_is_one_line_and_debug_shows_its_traceback() -> None:
    group = build_cli()

    @group.command("boom")
    def boom() -> None:
        raise RuntimeError("kaput\x1b[2J\nsecond line")

    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: internal error (RuntimeError: kaput second line); "
        "run with --debug for the traceback"
    ]
    debug = CliRunner().invoke(group, ["--debug", "boom"])
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "RuntimeError: kaput" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("Error: internal error (RuntimeError")
