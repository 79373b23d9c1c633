"""Alembic migrations of core and every plugin's branch: upgrading, the schema's state, removal.

Each branch has an *owner*: ``crmcore`` for core, else the plugin whose
version directories hold its scripts. Enabled plugins' branches are
*active* (upgraded); installed but disabled ones are *inactive*: their
scripts are given to alembic so that revisions they applied stay known, but
their heads are not upgraded.

A revision recorded in ``alembic_version`` whose script is nowhere (its
plugin was uninstalled) is *unknown*. It is kept in the table, and hidden
from alembic for the length of an upgrade inside the same transaction, so
the rest of the schema keeps migrating; its owner is read from its id
(``<plugin>_<number>``, the naming every plugin's revisions follow).

Upgrades and removals hold a lock for their whole transaction
(PostgreSQL: an advisory lock per schema; SQLite: the write lock that
``BEGIN IMMEDIATE`` takes), so any number of processes may upgrade at once.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from attrs import frozen
from sqlalchemy import Connection, Engine, MetaData, func, inspect, select, table, text

from crmcore.storage.engine import MIGRATING, READ_ONLY

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: The owner name of core's branch.
CORE = "crmcore"
#: Owner name to version directories.
Branches = Mapping[str, Sequence[str]]

_VERSION_TABLE = "alembic_version"
_REVISION_ID = re.compile(r"^(?P<owner>[A-Za-z][A-Za-z0-9_]*?)_\d+$")
_LOCK_KEY = "crmcore.migrate:"


def alembic_config(extra_locations: Sequence[str] = ()) -> Config:
    """An alembic Config over core's migrations plus the given plugin version directories."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions"), *(str(p) for p in extra_locations)]
    cfg.set_main_option("path_separator", "os")  # alembic splits version_locations on os.pathsep
    cfg.set_main_option("version_locations", os.pathsep.join(dict.fromkeys(locations)))
    return cfg


def owner_of_revision_id(revision: str) -> str:
    """The plugin a revision id names (``loyalty_0002`` → ``loyalty``), else the id itself."""
    match = _REVISION_ID.match(revision)
    return match.group("owner") if match else revision


@frozen
class _Catalog:
    """The scripts of a set of branches, parsed once per process."""

    locations: tuple[str, ...]
    script: ScriptDirectory
    owners: Mapping[str, str]  # revision id -> owner
    labels: Mapping[str, tuple[str, ...]]  # owner -> branch labels of its revisions


_Key = tuple[tuple[str, tuple[str, ...]], ...]


@functools.lru_cache(maxsize=32)
def _catalog(key: _Key) -> _Catalog:
    locations = tuple(d for _owner, dirs in key for d in dirs)
    script = ScriptDirectory.from_config(alembic_config(locations))
    roots = [(owner, Path(d).resolve()) for owner, dirs in key for d in dirs]
    owners: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for revision in script.walk_revisions():
        path = Path(revision.path).resolve()
        owner = next((o for o, root in roots if root in path.parents), CORE)
        owners[revision.revision] = owner
        labels.setdefault(owner, set()).update(revision.branch_labels or ())
    return _Catalog(
        locations=locations,
        script=script,
        owners=owners,
        labels={o: tuple(sorted(ls)) for o, ls in labels.items()},
    )


def _catalog_of(active: Branches, inactive: Branches | None) -> _Catalog:
    core = str(MIGRATIONS_DIR / "versions")
    key: list[tuple[str, tuple[str, ...]]] = [(CORE, (core,))]
    for branches in (active, inactive or {}):
        key.extend((owner, tuple(map(str, dirs))) for owner, dirs in sorted(branches.items()))
    return _catalog(tuple(key))


@frozen
class SchemaState:
    """The database's revisions compared with the scripts of core and the plugins at hand.

    ``initialised``: migrations have run at least once. ``pending``: owner
    (``crmcore`` or an enabled plugin) to its head revisions not yet
    applied. ``unknown``: owner named by the revision id to applied
    revisions no script is known for (a plugin that is gone).
    """

    initialised: bool
    pending: Mapping[str, tuple[str, ...]]
    unknown: Mapping[str, tuple[str, ...]]

    def refusal(self) -> str | None:
        """The one line that refuses writes while migrations are pending, else ``None``."""
        if not self.initialised or not self.pending:
            return None
        owner = CORE if CORE in self.pending else sorted(self.pending)[0]
        who = "core" if owner == CORE else f"plugin {owner!r}"
        revisions = ", ".join(self.pending[owner])
        more = len(self.pending) - 1
        others = f" (and {more} other plugin(s))" if more else ""
        return (
            f"{who} has pending migrations ({revisions}){others}: "
            "run `crm db upgrade` before writing"
        )

    def warnings(self) -> list[str]:
        """One line per plugin whose revisions are in the database but whose scripts are not."""
        return [
            f"plugin {owner!r} is not installed but its data is in the database "
            f"(revision {', '.join(revs)}): reinstall it, or run `crm plugins remove {owner}`"
            for owner, revs in sorted(self.unknown.items())
        ]

    def pending_heads(self) -> set[str]:
        """Every pending head revision, whoever owns it."""
        return {rev for revs in self.pending.values() for rev in revs}


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _state(connection: Connection, catalog: _Catalog, active: Branches) -> SchemaState:
    current = _current(connection)
    known = [rev for rev in current if rev in catalog.owners]
    unknown: dict[str, list[str]] = {}
    for rev in current:
        if rev not in catalog.owners:
            unknown.setdefault(owner_of_revision_id(rev), []).append(rev)
    applied: set[str] = set()
    for rev in known:
        applied.update(r.revision for r in catalog.script.iterate_revisions(rev, "base"))
    pending: dict[str, list[str]] = {}
    for head in sorted(catalog.script.get_heads()):
        owner = catalog.owners[head]
        if (owner == CORE or owner in active) and head not in applied:
            pending.setdefault(owner, []).append(head)
    return SchemaState(
        initialised=bool(current),
        pending={o: tuple(r) for o, r in pending.items()},
        unknown={o: tuple(r) for o, r in unknown.items()},
    )


def state(engine: Engine, active: Branches, inactive: Branches | None = None) -> SchemaState:
    """What is applied, pending and unknown, read in one short read-only transaction."""
    catalog = _catalog_of(active, inactive)
    with engine.connect() as connection:
        connection.execution_options(**{READ_ONLY: True})
        return _state(connection, catalog, active)


def _lock(connection: Connection) -> None:
    """Serialise migrations of this schema across processes until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key || current_schema()))"),
            {"key": _LOCK_KEY},
        )
    # SQLite: the migration transaction began with BEGIN IMMEDIATE (the write lock).


def _set_aside(connection: Connection, revisions: Sequence[str]) -> None:
    for rev in revisions:
        connection.execute(
            text(f"DELETE FROM {_VERSION_TABLE} WHERE version_num = :rev"), {"rev": rev}
        )


def _put_back(connection: Connection, revisions: Sequence[str]) -> None:
    for rev in revisions:
        connection.execute(
            text(f"INSERT INTO {_VERSION_TABLE} (version_num) VALUES (:rev)"), {"rev": rev}
        )


def _migrating(engine: Engine) -> Connection:
    connection = engine.connect()
    connection.execution_options(**{MIGRATING: True})
    return connection


def upgrade(
    engine: Engine,
    metadata: MetaData,
    active: Branches,
    inactive: Branches | None = None,
    *,
    options: Mapping[str, object] | None = None,
) -> SchemaState:
    """Bring core and the active branches to their heads, in one locked transaction.

    Unknown revisions (plugins that are gone) stay recorded; the state after
    the upgrade is returned. ``options`` are handed to the revisions in
    alembic's ``Config.attributes`` (core's: ``crmcore.default_region``).
    """
    catalog = _catalog_of(active, inactive)
    cfg = alembic_config(catalog.locations)
    with _migrating(engine) as connection, connection.begin():
        _lock(connection)
        before = _state(connection, catalog, active)
        unknown = [rev for revs in before.unknown.values() for rev in revs]
        _set_aside(connection, unknown)
        cfg.attributes["connection"] = connection
        cfg.attributes["metadata"] = metadata
        cfg.attributes.update(options or {})
        for head in sorted(before.pending_heads()):
            command.upgrade(cfg, head)
        _put_back(connection, unknown)
        return _state(connection, catalog, active)


@frozen
class BranchRemoval:
    """What removing a plugin's branch does (or, on a dry run, would do).

    ``tables`` maps each of the plugin's tables (those named ``<plugin>_...``)
    to its row count; ``revisions`` are the plugin's rows of
    ``alembic_version``. ``drop_data``: the tables go (through the plugin's
    own downgrade when its scripts are at hand, ``downgraded``); else they
    stay and only the revisions are forgotten.
    """

    name: str
    tables: Mapping[str, int]
    revisions: tuple[str, ...]
    drop_data: bool
    dry_run: bool
    downgraded: bool


def plugin_tables(connection: Connection, name: str) -> dict[str, int]:
    """The plugin's tables (named ``<name>_...``) with their row counts, by name."""
    names = sorted(t for t in inspect(connection).get_table_names() if t.startswith(f"{name}_"))
    return {
        t: int(connection.execute(select(func.count()).select_from(table(t))).scalar_one())
        for t in names
    }


def remove_branch(
    engine: Engine,
    metadata: MetaData,
    name: str,
    *,
    drop_data: bool,
    dry_run: bool,
    active: Branches,
    inactive: Branches | None = None,
) -> BranchRemoval | None:
    """Drop (``drop_data``) or forget the branch and data of plugin ``name``, in one transaction.

    Returns ``None`` when nothing of the plugin is in the database. On a dry
    run nothing changes.
    """
    catalog = _catalog_of(active, inactive)
    with _migrating(engine) as connection, connection.begin():
        _lock(connection)
        current = _current(connection)
        known = [r for r in current if catalog.owners.get(r) == name]
        unknown = [
            r for r in current if r not in catalog.owners and owner_of_revision_id(r) == name
        ]
        tables = plugin_tables(connection, name)
        if not known and not unknown and not tables:
            return None
        labels = catalog.labels.get(name, ())
        removal = BranchRemoval(
            name=name,
            tables=tables,
            revisions=tuple(known + unknown),
            drop_data=drop_data,
            dry_run=dry_run,
            downgraded=drop_data and bool(known) and bool(labels),
        )
        if dry_run:
            return removal
        others = [r for r in current if r not in catalog.owners and r not in unknown]
        _set_aside(connection, [*unknown, *others])
        if removal.downgraded:
            cfg = alembic_config(catalog.locations)
            cfg.attributes["connection"] = connection
            cfg.attributes["metadata"] = metadata
            command.downgrade(cfg, f"{labels[0]}@base")
        else:
            _set_aside(connection, known)
        if drop_data:
            _drop_tables(connection, list(plugin_tables(connection, name)))
        _put_back(connection, others)
        return removal


def _drop_tables(connection: Connection, names: Sequence[str]) -> None:
    """Drop tables, those referring to others first."""
    if not names:
        return
    reflected = MetaData()
    reflected.reflect(connection, only=list(names))
    for t in reversed(reflected.sorted_tables):
        t.drop(connection)
