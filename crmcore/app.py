"""The CRM object: what an application holds (engine, plugin manager, config, services)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pluggy
from alembic.util.exc import CommandError as AlembicError
from sqlalchemy import Engine, MetaData, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from crmcore.access import Action, Principal
from crmcore.config import Config, default_config, describe_schema_error, load_config
from crmcore.encryption import FieldCipher
from crmcore.errors import (
    ConfigError,
    ConflictError,
    CRMError,
    PluginError,
    StorageError,
    ValidationError,
)
from crmcore.hooks.manager import (
    PluginInfo,
    disabled_plugin_modules,
    make_plugin_manager,
    plugin_infos,
)
from crmcore.signals import ChurnSignal, Period
from crmcore.storage import migrate
from crmcore.storage.engine import make_engine
from crmcore.storage.tables import metadata as core_metadata
from crmcore.unit_of_work import UnitOfWork

Clock = Callable[[], datetime]

# PostgreSQL's detail line for a unique violation on one of the identity keys.
_DUPLICATE_KEY = re.compile(r"Key \((email_norm|phone_norm|org_norm)\)=\((.*)\) already exists")


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def _resolve_config(target: str | Path | Config | None) -> Config:
    if isinstance(target, Config):
        return target
    if target is None:
        return default_config()
    if isinstance(target, Path) or str(target).endswith(".toml"):
        return load_config(target)
    return default_config(database_url=str(target))


def _flatten_locations(results: Iterable[Any]) -> list[str]:
    locations: list[str] = []
    for result in results:
        if result is not None:
            locations.extend([str(result)] if isinstance(result, str | Path) else map(str, result))
    return locations


class CRM:
    """An open CRM: use :meth:`open` to get one, and ``close()`` (or ``with``) when done.

    Services: :attr:`customers`, :attr:`interactions`, :attr:`lifecycle`, :attr:`audit`.
    """

    def __init__(
        self,
        config: Config,
        engine: Engine,
        pm: pluggy.PluginManager,
        clock: Clock,
    ) -> None:
        self.config = config
        self.engine = engine
        self.pm = pm
        self.clock = clock
        self.metadata: MetaData = core_metadata
        self._attributes_validator = (
            jsonschema.Draft202012Validator(dict(config.attributes_schema))
            if config.attributes_schema is not None
            else None
        )
        self._plugin_config: dict[str, Mapping[str, Any]] = {}
        self.principal: Principal | None = None
        self.cipher: FieldCipher | None = (
            None
            if config.encryption is False
            else FieldCipher.from_environment(
                config.encrypted_fields, required=config.encryption is True
            )
        )
        self._bind_services()

    def _bind_services(self) -> None:
        from crmcore.access import AccessControl
        from crmcore.audit import AuditLog
        from crmcore.customers import CustomerService
        from crmcore.interactions import InteractionService
        from crmcore.lifecycle import LifecycleService

        self.access = AccessControl(self)
        self.audit = AuditLog(self)
        self.customers = CustomerService(self)
        self.interactions = InteractionService(self)
        self.lifecycle = LifecycleService(self)

    def as_user(self, principal: Principal) -> CRM:
        """A view of this CRM acting for ``principal``: every service call is authorised.

        The view shares the engine, plugins and configuration; closing either
        closes both. See :mod:`crmcore.access` for the default policy.
        """
        if not isinstance(principal, Principal):
            raise ValidationError(
                f"principal: expected a Principal, got {type(principal).__name__}",
                field="principal",
            )
        view = copy.copy(self)
        view.principal = principal
        view._bind_services()
        return view

    # --- opening and closing ----------------------------------------------

    @classmethod
    def open(
        cls,
        target: str | Path | Config | None = None,
        *,
        plugins: Iterable[object] = (),
        discover: bool = True,
        clock: Clock | None = None,
        upgrade: bool = False,
    ) -> CRM:
        """Open a CRM.

        ``target`` is a database URL (``sqlite:///crm.db``,
        ``postgresql://user@host/db``), a path to ``crm.toml``, a
        :class:`~crmcore.config.Config`, or ``None`` for ``./crm.toml`` when it
        exists and the SQLite default otherwise. ``plugins`` are registered in
        addition to those installed (``discover=False`` skips installed ones).
        ``clock`` returns the current aware datetime (tests inject a fixed one).
        ``upgrade=True`` runs pending migrations of core and every plugin.
        """
        config = _resolve_config(target)
        pm = make_plugin_manager(plugins, discover=discover, disabled=config.disabled_plugins)
        engine = make_engine(config.database_url)
        crm = cls(config, engine, pm, clock or system_clock)
        try:
            crm._call_setup_hooks()
            if upgrade:
                crm.upgrade()
            crm.call_hook("crm_startup", crm=crm)
        except BaseException:
            engine.dispose()
            raise
        return crm

    def _call_setup_hooks(self) -> None:
        self.call_hook("crm_register_tables", metadata=self.metadata)
        for name, schema in self.collect("crm_config_schema").items():
            section = self.config.plugin_sections.get(name, {})
            if schema is None:
                self._plugin_config[name] = section
                continue
            try:
                validator = jsonschema.Draft202012Validator(schema)
            except jsonschema.SchemaError as exc:
                raise PluginError(
                    f"plugin {name!r} declares an invalid config schema: {exc.message}"
                ) from None
            errors = sorted(validator.iter_errors(section), key=lambda e: list(e.absolute_path))
            if errors:
                raise ConfigError(
                    "config: " + describe_schema_error(errors[0], prefix=f"plugins.{name}")
                )
            self._plugin_config[name] = section
        unknown = set(self.config.plugin_sections) - {n for n, _ in self.pm.list_name_plugin()}
        unknown -= set(self.config.disabled_plugins)
        if unknown:
            raise ConfigError(f"config: [plugins.{sorted(unknown)[0]}] names no installed plugin")

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ------------------------------------------------------------

    def migration_locations(self) -> list[str]:
        """Version directories of every enabled plugin's alembic branch."""
        return _flatten_locations(self.call_hook("crm_migration_locations"))

    def inactive_migration_locations(self) -> list[str]:
        """Version directories of installed but disabled plugins (known, not upgraded)."""
        results = []
        for module in disabled_plugin_modules(self.config.disabled_plugins):
            function = getattr(module, "crm_migration_locations", None)
            if callable(function):
                results.append(function())
        return _flatten_locations(results)

    def upgrade(self) -> None:
        """Run pending migrations of core and every enabled plugin (``crm db upgrade``)."""
        try:
            migrate.upgrade(
                self.engine,
                self.metadata,
                self.migration_locations(),
                self.inactive_migration_locations(),
            )
        except DBAPIError as exc:
            raise StorageError(f"migration failed: {exc.orig}") from exc
        except AlembicError as exc:
            raise StorageError(f"migration failed: {exc}") from exc

    def pending_migrations(self) -> set[str]:
        """Head revisions not yet applied; empty when the schema is current."""
        return migrate.pending(
            self.engine, self.migration_locations(), self.inactive_migration_locations()
        )

    def is_initialised(self) -> bool:
        """Whether core's tables exist in the database."""
        return inspect(self.engine).has_table("crm_customers")

    # --- plugins -----------------------------------------------------------

    def plugin_config(self, name: str) -> Mapping[str, Any]:
        """The validated ``[plugins.<name>]`` section (empty when absent)."""
        return self._plugin_config.get(name, self.config.plugin_sections.get(name, {}))

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its version and implemented hooks."""
        return plugin_infos(self.pm)

    def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call hook ``name`` on every plugin; non-CRM exceptions become PluginError."""
        try:
            result: list[Any] = getattr(self.pm.hook, name)(**kwargs)
        except CRMError:
            raise
        except Exception as exc:
            raise PluginError(f"a plugin failed in {name}: {type(exc).__name__}: {exc}") from exc
        return result

    def collect(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """Call hook ``name`` on each plugin separately; return results keyed by plugin name.

        Used for hooks whose answers belong to one plugin each (config schema,
        profile sections, metrics, export). ``None`` answers are left out.
        """
        results: dict[str, Any] = {}
        for impl in getattr(self.pm.hook, name).get_hookimpls():
            plugin = impl.plugin_name
            try:
                value = impl.function(**{k: kwargs[k] for k in impl.argnames})
            except CRMError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin!r} failed in {name}: {type(exc).__name__}: {exc}"
                ) from exc
            if value is not None:
                results[plugin] = value
        return results

    # --- reports ---------------------------------------------------------------

    def metrics(self, period: Period) -> dict[str, Any]:
        """Core figures and every plugin's ``crm_metrics`` for ``period``.

        Returns ``{"core": {...}, "<plugin>": {...}, ...}``.
        """
        from crmcore.metrics import core_metrics

        self.access.check(Action.REPORT)
        if not isinstance(period, Period):
            raise ValidationError(
                f"period: expected a Period, got {type(period).__name__}", field="period"
            )
        with self.reading() as uow:
            result: dict[str, Any] = {"core": core_metrics(uow.connection, period)}
        result.update(self.collect("crm_metrics", crm=self, period=period))
        return result

    def churn_signals(self, customer_ids: Sequence[int]) -> list[ChurnSignal]:
        """Every plugin's churn signals for these customers, by customer id then source."""
        self.access.check(Action.REPORT)
        ids = list(customer_ids)
        signals: list[ChurnSignal] = []
        for answer in self.call_hook("crm_churn_signals", crm=self, customer_ids=ids):
            for signal in answer or ():
                if not isinstance(signal, ChurnSignal):
                    raise PluginError(f"crm_churn_signals returned {signal!r}, not a ChurnSignal")
                signals.append(signal)
        return sorted(signals, key=lambda s: (s.customer_id, s.source, s.reason))

    # --- transactions ----------------------------------------------------------

    @contextmanager
    def unit_of_work(
        self, actor: str | None = None, ctx: UnitOfWork | None = None
    ) -> Iterator[UnitOfWork]:
        """Open one transaction for an operation, or join ``ctx`` when given.

        Everything done inside commits together or, on any exception, not at
        all. Database errors become :class:`~crmcore.errors.StorageError` or,
        for uniqueness violations, :class:`~crmcore.errors.ConflictError`.
        """
        if ctx is not None:
            yield ctx
            return
        try:
            with self.engine.begin() as connection:
                if actor is None and self.principal is not None:
                    actor = self.principal.user
                yield UnitOfWork(connection=connection, crm=self, now=self.clock(), actor=actor)
        except IntegrityError as exc:
            raise self._conflict_error(exc) from exc
        except (OperationalError, ProgrammingError) as exc:
            raise self._storage_error(exc) from exc

    @contextmanager
    def reading(self, ctx: UnitOfWork | None = None) -> Iterator[UnitOfWork]:
        """A read-only snapshot connection, with the same error translation.

        Joins ``ctx`` when given, so a read inside a unit of work sees its writes.
        """
        if ctx is not None:
            yield ctx
            return
        try:
            with self.engine.connect() as connection:
                yield UnitOfWork(connection=connection, crm=self, now=self.clock())
        except (OperationalError, ProgrammingError) as exc:
            raise self._storage_error(exc) from exc

    def _conflict_error(self, exc: IntegrityError) -> ConflictError:
        """A uniqueness violation the pre-checks could not see (a concurrent writer won the race).

        On PostgreSQL the violated key and value are known, so the error can
        name the customer that now holds them.
        """
        diag = getattr(exc.orig, "diag", None)
        detail = getattr(diag, "message_detail", None) or ""
        match = re.match(
            r"Key \((email_norm|phone_norm|org_norm)\)=\((.*)\) already exists", detail
        )
        if match is None:
            return ConflictError(f"the write conflicts with stored data: {exc.orig}")
        column, value = match.groups()
        from crmcore.storage.tables import customers

        with self.engine.connect() as connection:
            existing = connection.execute(
                select(customers.c.id).where(customers.c[column] == value)
            ).scalar()
        label = {"email_norm": "email", "phone_norm": "phone", "org_norm": "organisation name"}
        from crmcore.encryption import is_blind_index

        shown = "(encrypted)" if is_blind_index(value) else repr(value)  # never show an index
        return ConflictError(
            f"duplicate customer: {label[column]} {shown} already belongs to customer {existing} "
            "(registered concurrently)",
            existing_id=existing,
        )

    def _storage_error(self, exc: DBAPIError) -> StorageError:
        message = str(exc.orig)
        if "no such table" in message or ("does not exist" in message and "relation" in message):
            return StorageError(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} is not "
                f"initialised ({message.splitlines()[0]}): run `crm init` or `crm db upgrade`"
            )
        return StorageError(f"database error: {message.splitlines()[0] if message else exc}")
