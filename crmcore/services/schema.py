"""The CRM's schema operations: migrations of core and every plugin, their state, removal.

:class:`SchemaOperations` is mixed into :class:`~crmcore.app.CRM`; its methods
are the CRM's (``crm.upgrade()``, ``crm.pending_migrations()``,
``crm.remove_plugin(...)`` ...). The work itself is in
:mod:`crmcore.storage.migrate`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from alembic.util.exc import CommandError as AlembicError
from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import DBAPIError

from crmcore.access import Action
from crmcore.config import Config
from crmcore.errors import ConflictError, NotFoundError, PluginWarning, StorageError
from crmcore.hooks.manager import disabled_plugin_modules
from crmcore.storage import migrate
from crmcore.storage.engine import WriteGuard

if TYPE_CHECKING:
    from crmcore.access import AccessControl


def _flatten_locations(results: Iterable[Any]) -> list[str]:
    locations: list[str] = []
    for result in results:
        if result is not None:
            locations.extend([str(result)] if isinstance(result, str | Path) else map(str, result))
    return locations


class SchemaOperations:
    """Migrations of core and the plugins' branches, as methods of the CRM."""

    config: Config
    engine: Engine
    pm: pluggy.PluginManager
    metadata: MetaData
    access: AccessControl
    schema_warnings: list[str]
    _guard: WriteGuard

    if TYPE_CHECKING:

        def collect(self, name: str, **kwargs: Any) -> dict[str, Any]:
            """Answers of hook ``name`` by plugin (:meth:`crmcore.app.CRM.collect`)."""
            ...

        def _storage_error(self, exc: DBAPIError) -> StorageError: ...

    def migration_branches(self) -> dict[str, list[str]]:
        """Version directories of every enabled plugin's alembic branch, by plugin."""
        answers = self.collect("crm_migration_locations")
        return {name: _flatten_locations([answer]) for name, answer in answers.items()}

    def inactive_migration_branches(self) -> dict[str, list[str]]:
        """Version directories of plugins installed but left out, by plugin (known, not run)."""
        withheld: dict[str, object] = dict(getattr(self.pm, "withheld", {}))
        skipped = set(getattr(self.pm, "skipped", {})) - set(withheld)
        withheld.update(disabled_plugin_modules(skipped | set(self.config.disabled_plugins)))
        branches = {}
        active = self.migration_branches()
        for name, module in withheld.items():
            function = getattr(module, "crm_migration_locations", None)
            if callable(function) and name not in active:
                branches[name] = _flatten_locations([function()])
        return branches

    def migration_locations(self) -> list[str]:
        """Version directories of every enabled plugin's alembic branch."""
        return [d for dirs in self.migration_branches().values() for d in dirs]

    def inactive_migration_locations(self) -> list[str]:
        """Version directories of installed but disabled plugins (known, not upgraded)."""
        return [d for dirs in self.inactive_migration_branches().values() for d in dirs]

    def upgrade(self) -> migrate.SchemaState:
        """Run pending migrations of core and every enabled plugin (``crm db upgrade``).

        Takes a lock for the migration's transaction, so concurrent upgrades
        wait for each other. Revisions of plugins that are gone stay
        recorded (each named in a :class:`~crmcore.errors.PluginWarning`).
        """
        try:
            state = migrate.upgrade(
                self.engine,
                self.metadata,
                self.migration_branches(),
                self.inactive_migration_branches(),
                options={"crmcore.default_region": self.config.default_region},
            )
        except DBAPIError as exc:
            raise StorageError(f"migration failed: {exc.orig}") from exc
        except AlembicError as exc:
            raise StorageError(f"migration failed: {exc}") from exc
        self._apply_schema_state(state)
        return state

    def schema_state(self) -> migrate.SchemaState:
        """What is applied, pending and unknown (plugins gone), per branch owner."""
        try:
            return migrate.state(
                self.engine, self.migration_branches(), self.inactive_migration_branches()
            )
        except DBAPIError as exc:
            raise self._storage_error(exc) from exc

    def check_schema(self) -> migrate.SchemaState | None:
        """Read the schema's state once: refuse writes while migrations are pending.

        Called by :meth:`open`; call it again after another process upgraded
        the database. ``None`` (and nothing refused) for a SQLite file that
        does not exist yet.
        """
        database = self.engine.url.database
        on_file = self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        if on_file and not Path(str(database)).exists():
            self._guard.refusal = None
            return None
        state = self.schema_state()
        self._apply_schema_state(state)
        return state

    def _apply_schema_state(self, state: migrate.SchemaState) -> None:
        self._guard.refusal = state.refusal()
        new = [line for line in state.warnings() if line not in self.schema_warnings]
        self.schema_warnings = state.warnings()
        for line in new:
            warnings.warn(line, PluginWarning, stacklevel=4)

    def pending_migrations(self) -> set[str]:
        """Head revisions not yet applied; empty when the schema is current."""
        return self.schema_state().pending_heads()

    def remove_plugin(
        self, name: str, *, drop_data: bool, dry_run: bool = False
    ) -> migrate.BranchRemoval:
        """Remove plugin ``name``'s branch from the database (``crm plugins remove``).

        ``drop_data``: its tables go (through its own downgrade when its
        scripts are installed, else by dropping the tables named
        ``<name>_...``); otherwise they stay and its revisions are forgotten.
        One transaction; ``dry_run`` changes nothing and reports what would
        go. The plugin must not be enabled (else ``crm db upgrade`` would
        bring it back); administrators only.
        """
        self.access.check(Action.ADMINISTER)
        if not dry_run and self.pm.get_plugin(name) is not None:
            raise ConflictError(
                f"plugin {name!r} is enabled: leave it out first (`crm --no-plugin {name} "
                f"plugins remove {name} ...`), or uninstall it"
            )
        try:
            removal = migrate.remove_branch(
                self.engine,
                self.metadata,
                name,
                drop_data=drop_data,
                dry_run=dry_run,
                active=self.migration_branches(),
                inactive=self.inactive_migration_branches(),
            )
        except DBAPIError as exc:
            raise StorageError(f"removing plugin {name!r} failed: {exc.orig}") from exc
        except AlembicError as exc:
            raise StorageError(f"removing plugin {name!r} failed: {exc}") from exc
        if removal is None:
            raise NotFoundError(f"plugin {name!r} has no tables or revisions in the database")
        if not dry_run:
            self.check_schema()
        return removal
