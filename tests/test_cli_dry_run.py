"""``--dry-run`` (issue 19 item 6): the whole operation runs, is rolled back, and is reported.

Every test compares a snapshot of every table (core's and the plugins') before
and after the dry run, on SQLite and PostgreSQL, then runs the real operation
to show that the dry run predicted it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmcore import CRM
from crmcore.cli import build_cli
from crmcore.io.imports import import_customers
from crmcore.security.encryption import KEY_ENV, FieldCipher, new_key
from crmcore.services.key_rotation import rotate_keys
from crmcore.storage.tables import customers

CRMFactory = Callable[..., CRM]


def snapshot(crm: CRM) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the CRM knows (core, plugins, audit log, outbox)."""
    with crm.engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(str(v) for v in row) for row in connection.execute(sa.select(table))),
            )
            for table in crm.metadata.sorted_tables
        }


def cli(db_url: str, *args: str) -> Any:
    """Run ``crm --db DB_URL ARGS`` as the entry point does (installed plugins loaded)."""
    argv = ["--db", db_url, *args]
    return CliRunner().invoke(build_cli(argv), argv)


@pytest.fixture
def full(crm_factory: CRMFactory) -> CRM:
    """A CRM with every installed plugin migrated, as ``crm init`` leaves it."""
    return crm_factory(discover=True)


def _customers_csv(tmp_path: Path) -> Path:
    folder = tmp_path / "input"
    folder.mkdir(exist_ok=True)
    path = folder / "people.csv"
    rows = ["name,email", "Ada Lovelace,ada@example.org", "Bad Row,not-an-email"]
    path.write_text("\n".join([*rows, "Alan Turing,alan@example.org", ""]), encoding="utf-8")
    return path


def test_customers_import_dry_run_stores_nothing_and_writes_no_rejects(
    full: CRM, db_url: str, tmp_path: Path
) -> None:
    source = _customers_csv(tmp_path)
    before = snapshot(full)
    result = cli(
        db_url, "customers", "import", str(source), "--skip-invalid", "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "imported": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "already_stored": 0,
        "rejects_path": None,
        "dry_run": True,
    }
    assert snapshot(full) == before
    assert [p.name for p in source.parent.iterdir()] == ["people.csv"]  # no rejects, no .partial

    text = cli(db_url, "customers", "import", str(source), "--skip-invalid", "--dry-run")
    assert "Dry run: would import 2 customers. Would reject 1" in text.stdout
    assert snapshot(full) == before

    real = cli(db_url, "customers", "import", str(source), "--skip-invalid", "--json")
    assert json.loads(real.stdout)["imported"] == 2
    assert full.customers.search(limit=1).total == 2


def test_customers_import_dry_run_without_skip_invalid_fails_like_the_import(
    full: CRM, db_url: str, tmp_path: Path
) -> None:
    source = _customers_csv(tmp_path)
    before = snapshot(full)
    result = cli(db_url, "customers", "import", str(source), "--dry-run")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {source}:3: email")
    assert snapshot(full) == before


def test_interactions_import_dry_run_counts_imported_and_skipped(
    full: CRM, db_url: str, tmp_path: Path
) -> None:
    ada = full.customers.create({"name": "Ada", "email": "ada@example.org"})
    source = tmp_path / "orders.csv"
    source.write_text(
        "customer_email,kind,amount,currency,occurred_at,external_id\n"
        "ada@example.org,purchase,10.00,EUR,2026-01-02T10:00:00+00:00,o-1\n"
        "ada@example.org,purchase,12.50,EUR,2026-01-03T10:00:00+00:00,o-2\n",
        encoding="utf-8",
    )
    before = snapshot(full)
    dry = cli(db_url, "interactions", "import", str(source), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["imported"] == 2 and json.loads(dry.stdout)["dry_run"]
    assert snapshot(full) == before
    assert full.interactions.timeline(ada.id or 0).total == 0

    real = cli(db_url, "interactions", "import", str(source), "--json")
    assert json.loads(real.stdout)["imported"] == 2
    after = snapshot(full)
    again = cli(db_url, "interactions", "import", str(source), "--dry-run", "--json")
    assert json.loads(again.stdout)["imported"] == 0
    assert json.loads(again.stdout)["already_stored"] == 2
    assert snapshot(full) == after


def test_delete_and_erase_dry_run_change_nothing(full: CRM, db_url: str) -> None:
    ada = full.customers.create({"name": "Ada Lovelace", "email": "ada@example.org"})
    full.interactions.record(
        {
            "customer_id": ada.id,
            "kind": "note",
            "text": "called",
            "occurred_at": "2026-01-02T10:00:00+00:00",
        }
    )
    before = snapshot(full)

    deleted = cli(db_url, "customers", "delete", str(ada.id), "--dry-run")
    assert deleted.exit_code == 0, deleted.output
    assert f"would delete customer {ada.id}: Ada Lovelace, with 1 interaction(s)" in deleted.stdout
    erased = cli(db_url, "customers", "erase", str(ada.id), "--dry-run")
    assert erased.exit_code == 0, erased.output
    assert "would erase the personal data" in erased.stdout
    assert snapshot(full) == before
    assert full.customers.get(ada.id or 0).email == "ada@example.org"

    missing = cli(db_url, "customers", "erase", "999999", "--dry-run")
    assert missing.exit_code == 1 and "customer 999999 does not exist" in missing.stderr

    assert cli(db_url, "customers", "erase", str(ada.id), "--yes").exit_code == 0
    assert full.customers.get(ada.id or 0).email is None  # the real run does erase


def test_python_api_dry_runs(full: CRM, tmp_path: Path) -> None:
    ada = full.customers.create({"name": "Ada", "email": "ada@example.net"})
    before = snapshot(full)
    result = import_customers(full, _customers_csv(tmp_path), skip_invalid=True, dry_run=True)
    assert (result.imported, result.rejected, result.rejects_path) == (2, 1, None)
    assert result.dry_run
    gone = full.customers.delete(ada.id or 0, dry_run=True)
    assert gone.id == ada.id and gone.name == "Ada"
    full.customers.erase(ada.id or 0, dry_run=True)
    assert snapshot(full) == before

    with full.unit_of_work() as uow:  # inside a caller's transaction: a savepoint, rolled back
        full.customers.delete(ada.id or 0, ctx=uow, dry_run=True)
        assert full.customers.get(ada.id or 0, ctx=uow).name == "Ada"
        full.customers.update(ada.id or 0, {"name": "Ada L."}, ctx=uow)
    assert full.customers.get(ada.id or 0).name == "Ada L."  # the caller's own write commits


def test_rotate_key_dry_run_counts_and_writes_nothing(
    full: CRM, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    full.customers.create_many(
        [{"name": f"P{i}", "email": f"p{i}@example.org"} for i in range(3)]
    )  # stored in plaintext: encryption was off
    before = snapshot(full)
    monkeypatch.setenv(KEY_ENV, new_key())
    argv = ("--plugins", "", "security", "rotate-key")
    dry = cli(db_url, *argv, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert (report["dry_run"], report["rewritten"], report["conflicts"]) == (True, 3, [])
    assert snapshot(full) == before
    assert "would re-seal 3 customers" in cli(db_url, *argv, "--dry-run").stdout

    real = cli(db_url, *argv, "--yes")
    assert real.exit_code == 0 and "Re-sealed 3 customers" in real.stdout
    assert snapshot(full) != before
    assert json.loads(cli(db_url, *argv, "--dry-run", "--json").stdout)["rewritten"] == 0


def test_loyalty_expire_dry_run(full: CRM, db_url: str) -> None:
    cid = str(full.customers.create({"name": "Ann"}).id)
    assert cli(db_url, "loyalty", "enroll", cid, "--at", "2025-01-01").exit_code == 0
    earned = cli(db_url, "loyalty", "earn", cid, "120", "--key", "k1", "--at", "2025-01-10T10:00")
    assert earned.exit_code == 0, earned.output
    before = snapshot(full)

    dry = cli(db_url, "loyalty", "expire", "--as-of", "2026-01-10", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout) == {
        "as_of": "2026-01-10T23:59:59.999999+00:00",
        "lots": 1,
        "points": 120,
        "members": 1,
        "dry_run": True,
    }
    text = cli(db_url, "loyalty", "expire", "--as-of", "2026-01-10", "--dry-run")
    assert "Dry run: would expire 120 points" in text.stdout
    assert snapshot(full) == before

    real = cli(db_url, "loyalty", "expire", "--as-of", "2026-01-10", "--json")
    assert json.loads(real.stdout)["points"] == 120
    assert snapshot(full) != before


def test_rotate_key_dry_run_lists_conflicts_instead_of_raising(
    crm_factory: CRMFactory, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = crm_factory(discover=True)
    ada = plain.customers.create({"name": "Ada", "email": "ada@x.org"})  # plaintext
    monkeypatch.setenv(KEY_ENV, new_key())
    crm = crm_factory(discover=True)
    twin = crm.customers.create({"name": "Ada twin", "email": "twin@x.org"})
    cipher = crm.cipher
    assert isinstance(cipher, FieldCipher) and ada.id and twin.id
    with crm.engine.begin() as connection:  # a duplicate an older crmcore could store
        connection.execute(
            sa.update(customers)
            .where(customers.c.id == twin.id)
            .values(
                email=None,
                sealed=cipher.seal(twin.id, {"email": "ada@x.org"}),
                email_norm=cipher.blind_index("email", "ada@x.org"),
            )
        )
    before = snapshot(crm)
    result = rotate_keys(crm, dry_run=True, batch_size=1)
    assert result.dry_run
    assert [(frozenset(p[:2]), p[2]) for p in result.conflicts] == [
        (frozenset({ada.id, twin.id}), "email_norm")
    ]
    shown = cli(db_url, "--plugins", "", "security", "rotate-key", "--dry-run")
    assert shown.exit_code == 0, shown.output
    assert "1 conflicting pair(s)" in shown.stdout
    low, high = sorted((ada.id, twin.id))
    assert f"Conflict: customers {low} and {high} have the same email." in shown.stdout
    assert snapshot(crm) == before
