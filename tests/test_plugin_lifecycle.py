"""Plugin lifecycle: a plugin gone, pending, removed, required; broken plugins isolated.

"Gone" is simulated without touching the environment: a test plugin with its
own alembic branch (written into the test's directory) migrates the
database, then the CRM opens without it. "Installed but broken" is a real
distribution on ``sys.path`` (a ``.dist-info`` with an entry point).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmcore import CRM
from crmcore.cli import build_cli
from crmcore.errors import ConflictError, NotFoundError, PluginError, PluginWarning, StorageError
from crmcore.hooks import hookimpl

REVISION = '''
"""notes plugin: notes_entries."""

import sqlalchemy as sa
from alembic import op

revision = "notes_0001"
down_revision = None
branch_labels = ("notes",)
depends_on = "crmcore_0001"


def upgrade() -> None:
    op.create_table(
        "notes_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notes_entries")
'''


class Notes:
    """A plugin with its own alembic branch ``notes`` and one table, ``notes_entries``."""

    crm_plugin_name = "notes"
    __version__ = "0.1"

    def __init__(self, versions: Path) -> None:
        self.versions = versions

    @hookimpl
    def crm_migration_locations(self) -> str:
        return str(self.versions)


@pytest.fixture
def notes(tmp_path: Path) -> Notes:
    versions = tmp_path / "notes_versions"
    versions.mkdir()
    (versions / "notes_0001_initial.py").write_text(REVISION, encoding="utf-8")
    return Notes(versions)


def plugin_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def migrated_with_notes(url: str, notes: Notes, rows: int = 2) -> None:
    with CRM.open(url, discover=False, plugins=[notes], upgrade=True) as crm:
        with crm.engine.begin() as connection:
            for n in range(rows):
                connection.execute(
                    sa.text("INSERT INTO notes_entries (text) VALUES (:t)"), {"t": f"note {n}"}
                )
        crm.customers.create({"name": "Ann"})


def versions_of(crm: CRM) -> list[str]:
    with crm.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return sorted(rows.scalars())


GONE = (
    "plugin 'notes' is not installed but its data is in the database (revision notes_0001): "
    "reinstall it, or run `crm plugins remove notes`"
)


# --- a plugin gone ---------------------------------------------------------------


def test_a_database_whose_plugin_is_gone_keeps_working(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with CRM.open(db_url, discover=False, upgrade=True) as crm:
            assert crm.pending_migrations() == set()
            assert crm.schema_state().unknown == {"notes": ("notes_0001",)}
            crm.upgrade()
            crm.customers.create({"name": "Bea"})
            assert crm.customers.search().total == 2
            assert crm.schema_warnings == [GONE]
            assert "notes_0001" in versions_of(crm)  # kept: reinstalling brings it back
    assert plugin_warnings(caught) == [GONE]  # once per CRM, one line
    with CRM.open(db_url, discover=False, plugins=[notes]) as crm:
        assert crm.pending_migrations() == set()
        crm.customers.create({"name": "Cy"})


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(build_cli(list(args)), list(args))


def test_db_status_and_upgrade_name_the_gone_plugin(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes)
    for command in (["db", "status"], ["db", "upgrade"], ["db", "status", "--check"]):
        result = run_cli("--db", db_url, "--plugins", "", *command)
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [f"Warning: {GONE}"]
    status = json.loads(run_cli("--db", db_url, "--plugins", "", "db", "status", "--json").stdout)
    assert status["pending"] == []
    assert status["missing_plugins"] == {"notes": ["notes_0001"]}


def test_db_status_check_exits_non_zero_while_migrations_are_pending(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):  # an empty database: a missing file is an error
        Path(db_url.removeprefix("sqlite:///")).touch()
    result = run_cli("--db", db_url, "--plugins", "", "db", "status", "--check")
    assert result.exit_code == 1
    assert "Pending: core (" in result.stdout
    assert run_cli("--db", db_url, "--plugins", "", "db", "status").exit_code == 0
    assert run_cli("--db", db_url, "--plugins", "", "db", "upgrade").exit_code == 0
    result = run_cli("--db", db_url, "--plugins", "", "db", "status", "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Schema up to date."


# --- a plugin installed but not migrated ---------------------------------------------


def test_writes_are_refused_while_an_enabled_plugin_has_pending_migrations(
    db_url: str, notes: Notes
) -> None:
    CRM.open(db_url, discover=False, upgrade=True).close()
    with CRM.open(db_url, discover=False, plugins=[notes]) as crm:
        with pytest.raises(StorageError) as info:
            crm.customers.create({"name": "Ann"})
        assert str(info.value) == (
            "plugin 'notes' has pending migrations (notes_0001): "
            "run `crm db upgrade` before writing"
        )
        assert crm.customers.search().total == 0  # reads still work
        crm.upgrade()
        assert crm.customers.create({"name": "Ann"}).id is not None


def test_the_pending_check_is_made_at_open_not_per_write(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes, rows=0)
    with CRM.open(db_url, discover=False, plugins=[notes]) as crm:
        statements: list[str] = []
        sa.event.listen(
            crm.engine, "before_cursor_execute", lambda *a: statements.append(a[2]), named=False
        )
        for name in ("A", "B", "C"):
            crm.customers.create({"name": name})
    assert statements
    assert not [s for s in statements if "alembic_version" in s]


def test_the_cli_refuses_in_one_line(db_url: str, notes: Notes) -> None:
    CRM.open(db_url, discover=False, upgrade=True).close()

    # An installed plugin is needed for the CLI: pretend core is behind instead.
    with CRM.open(db_url, discover=False) as crm, crm.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'crmcore_0001'"))
    result = run_cli("--db", db_url, "--plugins", "", "customers", "add", "--name", "Ann")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: core has pending migrations (")
    assert line.endswith("run `crm db upgrade` before writing")


# --- removing a plugin ---------------------------------------------------------------


def test_dry_run_lists_tables_and_rows_and_changes_nothing(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes)
    with pytest.warns(PluginWarning), CRM.open(db_url, discover=False) as crm:
        removal = crm.remove_plugin("notes", drop_data=True, dry_run=True)
        assert dict(removal.tables) == {"notes_entries": 2}
        assert removal.revisions == ("notes_0001",)
        assert sa.inspect(crm.engine).has_table("notes_entries")
        assert "notes_0001" in versions_of(crm)
    result = run_cli("--db", db_url, "--plugins", "", "plugins", "remove", "notes", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "notes_entries" in result.stdout and "│ 2" in result.stdout
    assert "would be forgotten" in result.stdout
    choose = run_cli("--db", db_url, "--plugins", "", "plugins", "remove", "notes")
    assert choose.exit_code == 2
    assert "--drop-data" in choose.stderr


def test_remove_a_gone_plugin_dropping_its_data(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes)
    result = run_cli("--db", db_url, "--plugins", "", "plugins", "remove", "notes", "--drop-data")
    assert result.exit_code == 0, result.output
    assert "dropped" in result.stdout
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with CRM.open(db_url, discover=False, upgrade=True) as crm:
            assert not sa.inspect(crm.engine).has_table("notes_entries")
            assert "notes_0001" not in versions_of(crm)
            assert crm.customers.search().total == 1
            with pytest.raises(NotFoundError, match="plugin 'notes' has no tables"):
                crm.remove_plugin("notes", drop_data=True)
    assert plugin_warnings(caught) == []


def test_remove_a_gone_plugin_keeping_its_data(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes)
    with pytest.warns(PluginWarning), CRM.open(db_url, discover=False) as crm:
        removal = crm.remove_plugin("notes", drop_data=False)
        assert crm.schema_warnings == []
        assert dict(removal.tables) == {"notes_entries": 2}
        assert "notes_0001" not in versions_of(crm)
        with crm.engine.connect() as connection:
            count = connection.execute(sa.text("SELECT count(*) FROM notes_entries"))
            assert count.scalar_one() == 2


def test_remove_an_installed_plugin_through_its_own_downgrade(db_url: str, notes: Notes) -> None:
    migrated_with_notes(db_url, notes)
    with (
        CRM.open(db_url, discover=False, plugins=[notes]) as crm,
        pytest.raises(ConflictError, match="plugin 'notes' is enabled"),
    ):
        crm.remove_plugin("notes", drop_data=True)
    with CRM.open(db_url, discover=False, plugins=[notes], disable_plugins=["notes"]) as crm:
        assert crm.schema_warnings == []  # disabled, not gone: its scripts are known
        removal = crm.remove_plugin("notes", drop_data=True)
        assert removal.downgraded
        assert not sa.inspect(crm.engine).has_table("notes_entries")
        assert "notes_0001" not in versions_of(crm)
    with CRM.open(db_url, discover=False, plugins=[notes]) as crm:
        assert crm.pending_migrations() == {"notes_0001"}  # enabled again: it starts afresh


# --- requirements -------------------------------------------------------------------


class Needy:
    crm_plugin_name = "needy"

    def __init__(self, *requires: str) -> None:
        self.crm_requires = list(requires)


@pytest.mark.parametrize(
    ("requires", "message"),
    [
        (["absent"], "plugin 'needy' requires plugin 'absent', but it is not installed"),
        (["notes>=0.2"], "plugin 'needy' requires 'notes>=0.2', but notes 0.1 is installed"),
        (["crmcore>=99"], "plugin 'needy' requires 'crmcore>=99', but crmcore 0.1.0 is installed"),
        (["notes>>1"], "plugin 'needy' declares an invalid requirement 'notes>>1'"),
    ],
)
def test_an_unmet_requirement_refuses_to_open(
    sqlite_url: str, notes: Notes, requires: list[str], message: str
) -> None:
    with pytest.raises(PluginError) as info:
        CRM.open(sqlite_url, discover=False, plugins=[notes, Needy(*requires)])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_a_disabled_requirement_is_named_as_such(sqlite_url: str, notes: Notes) -> None:
    with pytest.raises(PluginError, match="requires plugin 'notes', but it is disabled"):
        CRM.open(
            sqlite_url, discover=False, plugins=[notes, Needy("notes")], disable_plugins=["notes"]
        )


def test_met_requirements_open(sqlite_url: str, notes: Notes) -> None:
    needy = Needy("notes>=0.1,<1", "crmcore>=0.1")
    with CRM.open(sqlite_url, discover=False, plugins=[notes, needy]) as crm:
        assert {p.name for p in crm.plugins()} == {"notes", "needy"}


# --- isolation: broken plugins, selection -----------------------------------------------

BAD_COMMANDS = """
from crmcore.hooks import hookimpl


@hookimpl
def crm_register_commands(cli):
    raise RuntimeError("no commands today")
"""


@pytest.fixture
def broken_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two installed plugins: ``broken`` (its module is missing), ``badcli`` (fails in a hook)."""
    site = tmp_path / "site"
    info = site / "crmcore_broken-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crmcore-broken\nVersion: 0.3\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[crmcore.plugins]\nbroken = crmcore_no_such_module_xyz.plugin\n"
        "badcli = crmcore_badcli_test\n",
        encoding="utf-8",
    )
    (site / "crmcore_badcli_test.py").write_text(BAD_COMMANDS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("crmcore_badcli_test", None)


BROKEN = (
    "Warning: plugin 'broken' is broken (failed to import: ModuleNotFoundError: No module "
    "named 'crmcore_no_such_module_xyz'); leave it out with --no-plugin broken"
)


def test_help_version_and_plugins_list_work_with_a_broken_plugin(
    broken_installed: Path, sqlite_url: str
) -> None:
    for args in (["--help"], ["--version"]):
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
        assert BROKEN in result.stderr.splitlines()
    assert "crm, version" in run_cli("--version").stdout
    listed = run_cli("plugins", "list", "--json")
    assert listed.exit_code == 0, listed.output
    by_name: dict[str, Any] = {p["name"]: p for p in json.loads(listed.stdout)}
    assert by_name["broken"]["status"] == "broken"
    assert by_name["broken"]["version"] == "0.3"
    assert "No module named 'crmcore_no_such_module_xyz'" in by_name["broken"]["problem"]
    assert by_name["badcli"]["status"] == "broken"
    assert by_name["badcli"]["problem"] == (
        "failed in crm_register_commands: RuntimeError: no commands today"
    )
    assert by_name["loyalty"]["status"] == "enabled"
    table = run_cli("plugins", "list")
    assert table.exit_code == 0 and "broken" in table.stdout


def test_a_data_command_names_the_broken_plugin_in_one_error_line(
    broken_installed: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).touch()  # a missing file is an error of its own
    result = run_cli("--db", sqlite_url, "customers", "list")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: plugin 'broken' is broken (failed to import: ModuleNotFoundError: No module "
        "named 'crmcore_no_such_module_xyz'); fix it, or leave it out with "
        "CRM_DISABLE_PLUGINS=broken or `crm --no-plugin broken`"
    ]
    ok = run_cli("--db", sqlite_url, "--no-plugin", "broken", "--no-plugin", "badcli", "init")
    assert ok.exit_code == 0, ok.output
    assert "Warning: plugin 'broken'" not in ok.stderr
    monkeypatch.setenv("CRM_DISABLE_PLUGINS", "broken,badcli")
    listed = run_cli("--db", sqlite_url, "customers", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert listed.stderr == ""


def test_open_names_the_broken_plugin_and_selection_leaves_it_out(
    broken_installed: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PluginError, match=r"^plugin 'broken' is broken \(failed to import"):
        CRM.open(sqlite_url)
    with CRM.open(sqlite_url, disable_plugins=["broken"]) as crm:
        assert "badcli" in {p.name for p in crm.plugins()}  # its CLI hook is not called here
    with CRM.open(sqlite_url, load_plugins=["loyalty"]) as crm:
        assert [p.name for p in crm.plugins()] == ["loyalty"]
    monkeypatch.setenv("CRM_LOAD_PLUGINS", "surveys,loyalty")
    with CRM.open(sqlite_url) as crm:
        assert [p.name for p in crm.plugins()] == ["loyalty", "surveys"]
    monkeypatch.setenv("CRM_LOAD_PLUGINS", "")
    with CRM.open(sqlite_url) as crm:
        assert crm.plugins() == []


def test_the_cli_plugins_option_chooses_the_commands(broken_installed: Path) -> None:
    only = run_cli("--plugins", "loyalty", "--help")
    assert only.exit_code == 0
    assert "loyalty" in only.stdout and "surveys" not in only.stdout
    assert only.stderr == ""
    without = run_cli("--no-plugin", "surveys", "--no-plugin", "broken", "--help")
    assert "surveys" not in without.stdout and "loyalty" in without.stdout


def test_a_plugin_failing_to_start_is_named(sqlite_url: str) -> None:
    class Fails:
        crm_plugin_name = "fails"

        @hookimpl
        def crm_startup(self) -> None:
            raise KeyError("setting")

    with pytest.raises(PluginError) as info:
        CRM.open(sqlite_url, discover=False, plugins=[Fails()])
    assert str(info.value) == "plugin 'fails' failed in crm_startup: KeyError: 'setting'"
    assert (info.value.plugin, info.value.hook) == ("fails", "crm_startup")


def test_a_plugin_failing_to_add_its_hookspecs_is_named(sqlite_url: str) -> None:
    class Specless:
        crm_plugin_name = "specless"

        @hookimpl
        def crm_add_hookspecs(self) -> None:
            raise ImportError("hookspecs missing")

    with pytest.raises(PluginError, match=r"^plugin 'specless' is broken \(ImportError: hook"):
        CRM.open(sqlite_url, discover=False, plugins=[Specless()])


def test_engine_and_engine_options(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with CRM.open(discover=False, upgrade=True, engine=engine) as crm:
        assert crm.engine is engine
        crm.customers.create({"name": "Ann"})
    with engine.connect() as connection:  # the CRM left the engine it was given open
        assert connection.execute(sa.text("SELECT count(*) FROM crm_customers")).scalar() == 1
    engine.dispose()
    with CRM.open(sqlite_url, discover=False, engine_options={"pool_size": 3}) as crm:
        assert crm.engine.pool.size() == 3  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="engine options"):
        CRM.open(sqlite_url, discover=False, engine_options={"no_such_option": 1})
