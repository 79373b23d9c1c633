"""The CRM object: what an application holds (engine, plugin manager, config, services)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pluggy
from sqlalchemy import Engine, MetaData, inspect, select
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

from crmcore.access import Action, Principal
from crmcore.config import Config, default_config, describe_schema_error, load_config
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
    PluginSelection,
    answers_by_plugin,
    attribute_hook,
    failed_plugin,
    make_plugin_manager,
    plugin_infos,
    recorded_answers,
    unmet_requirements,
)
from crmcore.model.signals import ChurnSignal, Period
from crmcore.security.encryption import FieldCipher
from crmcore.services.schema import SchemaOperations
from crmcore.storage.engine import READ_ONLY, WriteGuard, configure_engine, make_engine
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


class CRM(SchemaOperations):
    """An open CRM: use :meth:`open` to get one, and ``close()`` (or ``with``) when done.

    Services: :attr:`customers`, :attr:`interactions`, :attr:`lifecycle`, :attr:`accounts`,
    :attr:`audit`.
    """

    def __init__(
        self,
        config: Config,
        engine: Engine,
        pm: pluggy.PluginManager,
        clock: Clock,
        *,
        owns_engine: bool = True,
    ) -> None:
        self.config = config
        self.engine = engine
        self.pm = pm
        self.clock = clock
        self._owns_engine = owns_engine
        self._guard = WriteGuard(engine)
        #: One line per plugin whose data is in the database but which is gone.
        self.schema_warnings: list[str] = []
        self.metadata: MetaData = core_metadata
        #: The compiled JSON schema of ``[customers] attributes`` (None when none is set).
        self.attributes_validator = (
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
        from crmcore.events import EventService
        from crmcore.services.accounts import AccountService
        from crmcore.services.customers import CustomerService
        from crmcore.services.interactions import InteractionService
        from crmcore.services.lifecycle import LifecycleService
        from crmcore.services.pool import PoolService

        self.access = AccessControl(self)
        self.audit = AuditLog(self)
        self.customers = CustomerService(self)
        self.interactions = InteractionService(self)
        self.lifecycle = LifecycleService(self)
        self.accounts = AccountService(self)
        self.pool = PoolService(self)
        self.events = EventService(self)

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
        view._bind_services()  # noqa: SLF001 - view is a copy of self
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
        engine: Engine | None = None,
        engine_options: Mapping[str, Any] | None = None,
        load_plugins: Iterable[str] | None = None,
        disable_plugins: Iterable[str] = (),
    ) -> CRM:
        """Open a CRM.

        ``target`` is a database URL (``sqlite:///crm.db``,
        ``postgresql://user@host/db``), a path to ``crm.toml``, a
        :class:`~crmcore.config.Config`, or ``None`` for ``./crm.toml`` when it
        exists and the SQLite default otherwise. ``plugins`` are registered in
        addition to those installed (``discover=False`` skips installed ones).
        ``clock`` returns the current aware datetime (tests inject a fixed one).
        ``upgrade=True`` runs pending migrations of core and every plugin
        (under a lock: any number of processes may do it at once).

        ``engine`` is a SQLAlchemy engine to use instead of one made from the
        configured URL (the CRM does not dispose it on close); otherwise
        ``engine_options`` go to :func:`sqlalchemy.create_engine`
        (``pool_size``, ``max_overflow`` ...). ``load_plugins`` (only these
        installed plugins) and ``disable_plugins`` override the
        ``CRM_LOAD_PLUGINS``/``CRM_DISABLE_PLUGINS`` environment variables.

        A plugin that fails to load, or whose ``crm_requires`` is not met,
        aborts opening with a :class:`~crmcore.errors.PluginError` naming
        it. Opening reads the schema's state once: while an enabled plugin
        (or core) has pending migrations, writes are refused with a
        :class:`~crmcore.errors.StorageError`; a plugin whose revisions are in
        the database but which is gone gives a :class:`~crmcore.errors.PluginWarning`.
        """
        from crmcore import __version__

        config = _resolve_config(target)
        if discover:
            selection = PluginSelection.from_environment().narrowed(load_plugins, disable_plugins)
        else:
            selection = PluginSelection(disabled=frozenset(disable_plugins))
        pm = make_plugin_manager(
            plugins, discover=discover, disabled=config.disabled_plugins, selection=selection
        )
        problems = unmet_requirements(pm, __version__)
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise PluginError(problems[0] + more)
        owns_engine = engine is None
        if engine is None:
            engine = make_engine(config.database_url, **dict(engine_options or {}))
        elif engine_options:
            raise ConfigError("engine_options: configure the engine you pass instead")
        else:
            configure_engine(engine)
            url = engine.url.render_as_string(hide_password=False)
            config = attrs.evolve(config, database_url=url)
        crm = cls(config, engine, pm, clock or system_clock, owns_engine=owns_engine)
        try:
            crm._call_setup_hooks()
            if upgrade:
                crm.upgrade()
            else:
                crm.check_schema()
            crm.call_hook("crm_startup", crm=crm)
        except BaseException:
            crm.close()
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
        unknown -= {*getattr(self.pm, "skipped", {}), *getattr(self.pm, "broken", {})}
        if unknown:
            raise ConfigError(f"config: [plugins.{sorted(unknown)[0]}] names no installed plugin")

    def close(self) -> None:
        """Release the database connections (an engine given to :meth:`open` stays open)."""
        self._guard.detach()
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ------------------------------------------------------------

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
        """Call hook ``name`` through pluggy; a non-CRM exception becomes a PluginError.

        The PluginError names the plugin that raised and the hook. A
        :class:`~crmcore.errors.CRMError` passes unchanged.
        """
        caller = getattr(self.pm.hook, name)
        attribute_hook(caller)
        try:
            result: list[Any] = caller(**kwargs)
        except CRMError:
            raise
        except Exception as exc:
            plugin = failed_plugin(exc)
            who = f"plugin {plugin!r}" if plugin else "a plugin"
            raise PluginError(
                f"{who} failed in {name}: {type(exc).__name__}: {exc}", plugin=plugin, hook=name
            ) from exc
        return result

    def collect(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """Call hook ``name`` through pluggy; return the answers keyed by plugin name.

        Used for hooks whose answers belong to one plugin each (config schema,
        profile sections, metrics, export, charts). The order is pluggy's
        call order (the most recently registered plugin first, ``tryfirst``
        and ``trylast`` move one); ``None`` answers are left out. A
        ``wrapper=True`` implementation sees the list of answers and may
        filter it or change its items in place.
        """
        with recorded_answers() as given:
            answers = self.call_hook(name, **kwargs)
        return answers_by_plugin(name, answers, given)

    # --- reports ---------------------------------------------------------------

    def metrics(self, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
        """Core figures and every plugin's ``crm_metrics`` for ``period``.

        Returns ``{"core": {...}, "<plugin>": {...}, ...}``; core's figures
        are read inside ``ctx`` when given.
        """
        from crmcore.reporting.metrics import core_metrics

        self.access.check(Action.REPORT)
        if not isinstance(period, Period):
            raise ValidationError(
                f"period: expected a Period, got {type(period).__name__}", field="period"
            )
        with self.reading(ctx) as uow:
            result: dict[str, Any] = {"core": core_metrics(uow.connection, period)}
        result.update(self.collect("crm_metrics", crm=self, period=period))
        return result

    def churn_signals(self, customer_ids: Sequence[int]) -> list[ChurnSignal]:
        """Every plugin's churn signals for these customers, by customer id then source.

        Core adds its own: weak or falling relationship scores of accounts
        (source ``accounts``: :mod:`crmcore.services.accounts.scores`).
        """
        self.access.check(Action.REPORT)
        ids = list(customer_ids)
        signals: list[ChurnSignal] = self.accounts.churn_signals(ids)
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
        from crmcore.events.outbox import number_rows, write_pending

        try:
            with self.engine.begin() as connection:
                if actor is None and self.principal is not None:
                    actor = self.principal.user
                uow = UnitOfWork(
                    connection=connection,
                    crm=self,
                    now=self.clock(),
                    actor=actor,
                    flush_events=write_pending,
                )
                yield uow
                number_rows(uow)
        except IntegrityError as exc:
            raise self._conflict_error(exc) from exc
        except (OperationalError, ProgrammingError) as exc:
            raise self._storage_error(exc) from exc
        except (DataError, OverflowError) as exc:
            raise _out_of_range(exc) from exc
        if uow.outbox_rows:
            self.events.dispatch(uow.outbox_rows)

    @contextmanager
    def reading(self, ctx: UnitOfWork | None = None) -> Iterator[UnitOfWork]:
        """A read-only snapshot connection, with the same error translation.

        Joins ``ctx`` when given, so a read inside a unit of work sees its
        writes. On SQLite the transaction is deferred: it takes no lock, sees
        one snapshot from its first read, and neither waits for writers nor
        makes them wait. Do not write through it.
        """
        if ctx is not None:
            yield ctx
            return
        try:
            with self.engine.connect() as connection:
                # SQLite: BEGIN DEFERRED, so readers neither wait for nor block writers.
                connection.execution_options(**{READ_ONLY: True})
                yield UnitOfWork(connection=connection, crm=self, now=self.clock())
        except (OperationalError, ProgrammingError) as exc:
            raise self._storage_error(exc) from exc
        except (DataError, OverflowError) as exc:
            raise _out_of_range(exc) from exc

    def _conflict_error(self, exc: IntegrityError) -> ConflictError:
        """A uniqueness violation the pre-checks could not see (a concurrent writer won the race).

        On PostgreSQL the violated key and value are known, so the error can
        name the customer that now holds them (to a principal who may read it).
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
        from crmcore.security.encryption import is_blind_index

        shown = "(encrypted)" if is_blind_index(value) else repr(value)  # never show an index
        if not self.access.may_see(existing):  # name the holder only to whom may read it
            return ConflictError(
                f"duplicate customer: {label[column]} {shown} already belongs to a customer "
                "you may not see (registered concurrently)"
            )
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


def _out_of_range(exc: Exception) -> ValidationError:
    """A value the database (or the driver) cannot hold, as one line on either backend.

    The services check the values they are given first; this catches what a
    plugin's own query passes on unchecked (an id beyond 64 bits, say).
    """
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return ValidationError(f"a value is out of range for the database: {first}")
