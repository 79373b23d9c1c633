"""``crm loyalty ...`` driven through the real ``crm`` group (plugins discovered)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from crmcore import CRM
from crmcore.cli import build_cli


def invoke(args: list[str]) -> Any:
    """Run ``crm`` as its entry point does."""
    return CliRunner().invoke(build_cli(args), args, catch_exceptions=False)


def test_cli_round_trip(sqlite_url: str) -> None:
    """Cli round trip."""
    with CRM.open(sqlite_url, upgrade=True) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
    db = ["--db", sqlite_url, "loyalty"]
    result = invoke([*db, "enroll", str(cid), "--at", "2025-01-01", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["member_number"] == f"M{cid:08d}"

    result = invoke([*db, "earn", str(cid), "120", "--key", "k1", "--at", "2025-01-10T10:00"])
    assert result.exit_code == 0, result.output
    assert "earn +120 points" in result.stdout
    result = invoke([*db, "earn", str(cid), "120", "--key", "k1", "--at", "2025-01-10T10:00"])
    assert "already applied" in result.stdout

    adjust = ["adjust", str(cid), "-20", "--reason", "goodwill", "--at", "2025-02-01"]
    result = invoke([*db, *adjust])
    assert result.exit_code == 0, result.output
    result = invoke([*db, "redeem", str(cid), "500", "--at", "2025-02-01"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: points: redeem of 500 would overdraw the balance of 100"
    result = invoke([*db, "redeem", str(cid), "30", "--key", "r1", "--at", "2025-02-02", "--json"])
    assert json.loads(result.stdout)["points"] == -30

    result = invoke([*db, "balance", str(cid), "--json"])
    assert json.loads(result.stdout)["points"] == 70
    result = invoke([*db, "history", str(cid)])
    assert result.exit_code == 0 and "redeem" in result.stdout

    result = invoke([*db, "expire", "--as-of", "2026-01-10", "--json"])
    assert json.loads(result.stdout) == {
        "as_of": "2026-01-10T23:59:59.999999+00:00",
        "lots": 1,
        "points": 70,
        "members": 1,
    }
    result = invoke([*db, "expire", "--as-of", "2026-01-10"])
    assert "Expired 0 points" in result.stdout
    result = invoke([*db, "evaluate-tiers", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = invoke([*db, "report", "--json"])
    assert json.loads(result.stdout)["members_active"] == 1
    result = invoke([*db, "report"])
    assert "active members" in result.stdout
    result = invoke([*db, "balance", "999"])
    assert result.exit_code == 1 and "customer 999 does not exist" in result.stderr
    result = invoke([*db, "leave", str(cid)])
    assert result.exit_code == 0 and "left on" in result.stdout
