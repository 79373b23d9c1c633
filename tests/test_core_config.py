"""Configuration files, plugin discovery, enabling, per-plugin config sections, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from crmcore import CRM, Config, ConfigError, PluginError, load_config
from crmcore.hooks import hookimpl
from crmcore.storage.tables import metadata


class Configured:
    crm_plugin_name = "configured"
    __version__ = "1.2.3"

    def __init__(self) -> None:
        self.started_with: dict[str, Any] | None = None

    @hookimpl
    def crm_config_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"threshold": {"type": "integer", "minimum": 0}},
            "additionalProperties": False,
        }

    @hookimpl
    def crm_startup(self, crm: CRM) -> None:
        self.started_with = dict(crm.plugin_config("configured"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    (tmp_path / "attrs.json").write_text('{"type": "object"}', encoding="utf-8")
    path = write(
        tmp_path,
        '[database]\nurl = "sqlite:///x.db"\n[customers]\nattributes_schema = "attrs.json"\n'
        '[plugins]\ndisabled = ["loyalty"]\n[plugins.configured]\nthreshold = 3\n',
    )
    config = load_config(path)
    assert config.database_url == f"sqlite:///{tmp_path / 'x.db'}"  # next to the file
    assert config.disabled_plugins == ("loyalty",)
    assert config.plugin_sections == {"configured": {"threshold": 3}}
    assert config.attributes_schema == {"type": "object"}


def test_environment_overrides_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "sqlite:///env.db")
    assert (
        load_config(write(tmp_path, '[database]\nurl = "sqlite:///x.db"\n')).database_url
        == "sqlite:///env.db"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[database\n", "not valid TOML"),
        ("[database]\nurl = 5\n", "database.url: 5 is not of type 'string'"),
        ('[databse]\nurl = "x"\n', "Additional properties are not allowed ('databse'"),
        ('[plugins]\ndisabled = "loyalty"\n', "plugins.disabled"),
        ('[customers]\nattributes_schema = "missing.json"\n', "cannot read"),
        ('[customers]\nattributes_schema = {type = "objekt"}\n', "not a valid JSON Schema"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_config(write(tmp_path, text))
    assert fragment in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_plugin_section_validated_and_passed(sqlite_url: str) -> None:
    plugin = Configured()
    config = Config(database_url=sqlite_url, plugin_sections={"configured": {"threshold": 4}})
    crm = CRM.open(config, discover=False, plugins=[plugin])
    assert plugin.started_with == {"threshold": 4}
    [info] = crm.plugins()
    assert (info.name, info.version) == ("configured", "1.2.3")
    assert info.hooks == ("crm_config_schema", "crm_startup")
    crm.close()


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"threshold": -1}, "plugins.configured.threshold: -1 is less than the minimum of 0"),
        ({"treshold": 1}, "plugins.configured: Additional properties are not allowed ('treshold'"),
    ],
)
def test_bad_plugin_section(sqlite_url: str, section: dict[str, Any], fragment: str) -> None:
    config = Config(database_url=sqlite_url, plugin_sections={"configured": section})
    with pytest.raises(ConfigError) as info:
        CRM.open(config, discover=False, plugins=[Configured()])
    assert fragment in str(info.value)


def test_section_for_unknown_plugin(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"\[plugins.ghost\] names no installed plugin"):
        CRM.open(Config(database_url=sqlite_url, plugin_sections={"ghost": {}}), discover=False)


def test_disabled_plugin_is_not_registered(sqlite_url: str) -> None:
    plugin = Configured()
    crm = CRM.open(
        Config(database_url=sqlite_url, disabled_plugins=("configured",)),
        discover=False,
        plugins=[plugin],
    )
    assert crm.plugins() == []
    assert plugin.started_with is None
    crm.close()


def test_plugin_registered_twice(sqlite_url: str) -> None:
    with pytest.raises(PluginError, match="registered twice"):
        CRM.open(sqlite_url, discover=False, plugins=[Configured(), Configured()])


def test_hook_with_unknown_name_is_refused(sqlite_url: str) -> None:
    class Typo:
        crm_plugin_name = "typo"

        @hookimpl
        def crm_customer_created(self, ctx: object, customers: object) -> None:  # not a hook
            pass

    with pytest.raises(PluginError, match="crm_customer_created"):
        CRM.open(sqlite_url, discover=False, plugins=[Typo()])


def test_bad_database_url() -> None:
    with pytest.raises(ConfigError, match="backend 'mysql' is not supported"):
        CRM.open("mysql://localhost/x", discover=False)


def test_migrations_match_the_tables(db_url: str) -> None:
    crm = CRM.open(db_url, discover=False, upgrade=True)
    assert crm.pending_migrations() == set()
    core = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        if table.name.startswith("crm_"):
            table.to_metadata(core)
    with crm.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn),
            core,
        )
    relevant = [
        d for d in diff if not (d[0] == "remove_table" and not d[1].name.startswith("crm_"))
    ]
    assert relevant == []
    crm.upgrade()  # idempotent
    crm.close()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    crm = CRM.open(sqlite_url, discover=False, upgrade=True)
    with crm.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    crm.close()
