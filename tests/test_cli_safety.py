"""A calmer CLI (issue 19 item 6): confirmation, missing databases, paths in crm.toml, the demo.

Under click's CliRunner stdin is not a terminal, which is what scripts and
CI see: commands that ask must refuse there unless ``--yes`` is given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import CRM
from crmcore.cli import build_cli
from crmcore.config import load_config
from crmcore.io.demo import DEMO_APPLICATION_ID, is_replaceable
from crmcore.security.encryption import KEY_ENV, new_key

ROOT = Path(__file__).parents[1]


def cli(*argv: str) -> Any:
    """Run ``crm ARGV`` as the entry point does."""
    return CliRunner().invoke(build_cli(argv), list(argv))


def one_error_line(result: Any) -> str:
    """The single stderr line of a failed command (exit code 1)."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return str(lines[0])


# --- confirmation ---------------------------------------------------------------------


def test_rotate_key_asks_and_refuses_without_a_terminal(
    crm_factory: Callable[..., CRM], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = crm_factory()
    crm.customers.create({"name": "Ada", "email": "ada@example.org"})
    monkeypatch.setenv(KEY_ENV, new_key())
    argv = ("--db", db_url, "--plugins", "", "security", "rotate-key")
    refused = cli(*argv)
    line = one_error_line(refused)
    assert line.startswith("Error: Re-seal every customer with key ")
    assert line.endswith("No terminal to confirm on: pass --yes.")
    status = json.loads(cli("--db", db_url, "--plugins", "", "security", "status", "--json").stdout)
    assert status["identity_keys"] == {"plaintext": 1}  # nothing was rotated
    done = cli(*argv, "--yes")
    assert done.exit_code == 0 and "Re-sealed 1 customers" in done.stdout


def _real_database(path: Path) -> None:
    with CRM.open(f"sqlite:///{path}", upgrade=True) as crm:
        crm.customers.create({"name": "Real Customer", "email": "real@example.org"})


def _customers(path: Path) -> list[str]:
    listed = cli("--db", str(path), "customers", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return [c["name"] for c in json.loads(listed.stdout)["items"]]


def test_demo_does_not_replace_a_real_database_without_yes(tmp_path: Path) -> None:
    path = tmp_path / "real.db"
    _real_database(path)
    assert not is_replaceable(path)
    line = one_error_line(cli("demo", "--path", str(path), "--customers", "5"))
    assert line == (
        f"Error: {path} is not a demo database; replace it and lose its data? "
        "No terminal to confirm on: pass --yes."
    )
    assert _customers(path) == ["Real Customer"]

    replaced = cli("demo", "--path", str(path), "--customers", "5", "--yes")
    assert replaced.exit_code == 0, replaced.output
    assert "Real Customer" not in _customers(path)


def test_demo_replaces_its_own_database_without_asking(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    assert cli("demo", "--path", str(path), "--customers", "5").exit_code == 0
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID
    assert is_replaceable(path)
    again = cli("demo", "--path", str(path), "--customers", "7")
    assert again.exit_code == 0, again.output
    assert len(_customers(path)) == 7

    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("my notes\n", encoding="utf-8")
    assert not is_replaceable(not_sqlite)
    assert "pass --yes" in one_error_line(cli("demo", "--path", str(not_sqlite)))
    assert not_sqlite.read_text(encoding="utf-8") == "my notes\n"


# --- a database that does not exist ------------------------------------------------------


def test_reading_a_missing_sqlite_database_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    missing = tmp_path / "nothing.db"
    for argv in (
        ("--db", str(missing), "customers", "list"),
        ("--db", f"sqlite:///{missing}", "db", "status"),
        ("--db", str(missing), "customers", "add", "--name", "Ada"),
        ("customers", "list"),  # the default ./crm.db
    ):
        line = one_error_line(cli(*argv))
        assert line.startswith("Error: no database at ") and line.endswith(": run `crm init`")
    assert one_error_line(cli("--db", str(missing), "customers", "list")) == (
        f"Error: no database at {missing}: run `crm init`"
    )
    assert list(tmp_path.iterdir()) == []  # no empty file left behind

    created = cli("--db", str(missing), "init")
    assert created.exit_code == 0, created.output
    assert missing.is_file()
    assert cli("--db", str(missing), "customers", "list").exit_code == 0
    upgraded = tmp_path / "upgraded.db"
    assert cli("--db", str(upgraded), "db", "upgrade").exit_code == 0  # creates, as init does
    assert cli("--db", str(upgraded), "db", "status", "--check").exit_code == 0


def test_postgresql_and_existing_databases_open_as_before(
    crm_factory: Callable[..., CRM], db_url: str
) -> None:
    crm_factory(discover=True).customers.create({"name": "Ada"})
    listed = cli("--db", db_url, "customers", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [c["name"] for c in json.loads(listed.stdout)["items"]] == ["Ada"]


# --- relative paths in crm.toml ----------------------------------------------------------


def test_relative_paths_in_crm_toml_resolve_against_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    conf = tmp_path / "conf"
    elsewhere = tmp_path / "elsewhere"
    conf.mkdir()
    elsewhere.mkdir()
    (conf / "attributes.json").write_text(
        json.dumps({"type": "object", "properties": {"tier": {"type": "string"}}}),
        encoding="utf-8",
    )
    (conf / "crm.toml").write_text(
        '[database]\nurl = "sqlite:///data/crm.db"\n'
        '[customers]\nattributes_schema = "attributes.json"\n',
        encoding="utf-8",
    )
    (conf / "data").mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../conf/crm.toml"))
    assert Path(config.database_url.removeprefix("sqlite:///")).resolve() == (
        conf / "data" / "crm.db"
    )
    assert config.attributes_schema is not None
    assert config.resolve_path("exports/x.csv") == Path("../conf/exports/x.csv")
    assert config.resolve_path("/abs/x.csv") == Path("/abs/x.csv")

    created = cli("--config", "../conf/crm.toml", "init")
    assert created.exit_code == 0, created.output
    assert (conf / "data" / "crm.db").is_file()
    assert list(elsewhere.iterdir()) == []  # not created in the current directory


def test_a_postgresql_url_in_crm_toml_is_kept_as_written(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    (tmp_path / "sub").mkdir()
    config_file = tmp_path / "sub" / "crm.toml"
    config_file.write_text(f'[database]\nurl = "{postgres_url}"\n', encoding="utf-8")
    assert load_config(config_file).database_url == postgres_url


# --- the example plugin stays out of `make demo` ----------------------------------------


def test_make_demo_leaves_the_example_plugin_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "CRM_DISABLE_PLUGINS=example $(BIN)/crm demo" in recipe

    path = tmp_path / "crm-demo.db"
    with_example = cli("demo", "--path", str(path), "--customers", "10")
    assert "example: most touched customers" in with_example.stdout  # installed for the tests
    monkeypatch.setenv("CRM_DISABLE_PLUGINS", "example")
    shown = cli("demo", "--path", str(path), "--customers", "10")
    assert shown.exit_code == 0, shown.output
    assert "example" not in shown.stdout.lower()
    monkeypatch.delenv("CRM_DISABLE_PLUGINS")
    # the recipe's `db upgrade` then adds the example's tables, so the database takes writes
    assert cli("--db", str(path), "db", "upgrade").exit_code == 0
    added = cli("--db", str(path), "customers", "add", "--name", "New One")
    assert added.exit_code == 0, added.output
