"""Every hook crmcore calls. This module is the plugin API's reference.

Each docstring states when the hook is called, inside which transaction, what
it must return and what an exception does. ``docs/hooks.md`` is generated from
these docstrings (``python -m crmcore.hooks.docgen``).

Conventions:

* Event hooks are **batch-first**: they receive a sequence, and bulk paths call
  them once per batch, never once per row.
* Event, validation and privacy hooks receive ``ctx``, the
  :class:`~crmcore.unit_of_work.UnitOfWork` of the operation: write your rows
  through ``ctx.connection`` and they commit or roll back with the core write.
  ``ctx.now`` is the clock's time; use it instead of ``datetime.now()``.
* An exception raised by a hook inside a unit of work rolls the whole operation
  back and reaches the caller (a :class:`~crmcore.errors.CRMError` unchanged,
  anything else wrapped in :class:`~crmcore.errors.PluginError` naming the
  plugin and the hook).
* **Order.** Every hook runs through pluggy's call loop: ``tryfirst``
  implementations first, then the others, the most recently registered
  plugin first, then ``trylast`` ones. Installed plugins register in the
  order their entry points are found, then plugins given in code, in the
  order given. Hooks whose answers belong to one plugin each (config schema,
  migration locations, profile, metrics, report charts, export) are
  collected in that order, keyed by plugin name, ``None`` answers left out.
  A ``wrapper=True`` (or ``hookwrapper=True``) implementation wraps the
  whole call: it sees the list of answers and may filter it or change its
  items in place. ``pm.add_hookcall_monitoring`` sees every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import ColumnElement, MetaData

    from crmcore.access import Principal
    from crmcore.app import CRM
    from crmcore.events import Event
    from crmcore.model.entities import Customer, CustomerChange, Interaction, LifecycleEvent
    from crmcore.model.signals import ChurnSignal, Period
    from crmcore.reporting import ReportChart
    from crmcore.unit_of_work import UnitOfWork


# --- setup -----------------------------------------------------------------


@hookspec(historic=True)
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add hook specifications of your own, for other plugins to implement.

    Called once per plugin manager, historic: a plugin registered later still
    receives the call. Use ``pm.add_hookspecs(module_or_class)``. This is how
    the surveys plugin publishes its low-score hook for the complaints plugin,
    as pytest's ``pytest_addhooks`` does. Return nothing. An exception aborts
    :meth:`CRM.open <crmcore.app.CRM.open>` with a PluginError.
    """


@hookspec
def crm_register_tables(metadata: MetaData) -> None:
    """Define your tables on core's shared ``metadata``.

    Called once when the CRM opens, before any database access. Prefix every
    table with your plugin's name (``loyalty_ledger``) and reference customers
    with a foreign key to ``crm_customers.id``. Use the types in
    :mod:`crmcore.storage.types` for money, timestamps and JSON. Tables are
    created by your migrations (:func:`crm_migration_locations`), not by this
    hook. The metadata is shared by every CRM opened in the process, so define
    each table only once (``if "loyalty_ledger" not in metadata.tables``).
    Return nothing.
    """


@hookspec
def crm_migration_locations() -> str | Sequence[str] | None:
    """Return the directory (or directories) holding your alembic version scripts.

    Called by ``crm db upgrade`` / :meth:`CRM.upgrade`. Your first revision
    declares ``branch_labels = ("<plugin name>",)`` and
    ``depends_on = "crmcore_0001"`` so that it runs after core's tables exist.
    """


@hookspec
def crm_register_commands(cli: click.Group) -> None:
    """Add your subcommands to the ``crm`` command line.

    Called once when the CLI starts, with the top-level click group. Add one
    group named after your plugin (``cli.add_command(loyalty_group)``). Inside
    a command, get the CRM with :func:`crmcore.cli.context.get_crm`. Return
    nothing.
    """


@hookspec
def crm_config_schema() -> Mapping[str, Any] | None:
    """Return the JSON Schema of your ``[plugins.<name>]`` section in ``crm.toml``.

    Called when the CRM opens. The section (an empty object when absent) is
    validated against it, and a violation aborts opening with a ConfigError
    naming the plugin and the field. Read your validated section with
    :meth:`CRM.plugin_config <crmcore.app.CRM.plugin_config>`.
    """


@hookspec
def crm_startup(crm: CRM) -> None:
    """Called once after the CRM has opened, its configuration validated.

    Use it to prepare caches or check your configuration against the data.
    No transaction is open. An exception aborts opening with a PluginError.
    """


# --- events: inside the operation's transaction -----------------------------


@hookspec
def crm_customers_created(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Customers were just inserted; ``customers`` carry their new ids.

    Called inside the transaction of the create operation, once per batch
    (a single create is a batch of one). Write your own rows through
    ``ctx.connection``. Raising rolls back the whole operation, including the
    customers. Return nothing.
    """


@hookspec
def crm_customers_updated(ctx: UnitOfWork, changes: Sequence[CustomerChange]) -> None:
    """Customers were just updated; each change holds ``before``, ``after`` and ``changed``.

    Called inside the update's transaction. Lifecycle stage changes are
    reported by :func:`crm_lifecycle_changed`, not here. Raising rolls back
    the update. Return nothing.
    """


@hookspec
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Customers are about to be deleted (their rows still exist).

    Called inside the delete's transaction, before core deletes the customers
    and, by cascade, their interactions and lifecycle history. Delete or keep
    your own rows; rows left referencing the customer without ``ON DELETE
    CASCADE`` make the delete fail. Raising rolls back the delete.
    """


@hookspec
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """``merged`` is being merged into ``kept``: move or combine your rows now.

    Called inside the merge's transaction (``crm.customers.merge``), after
    core moved its own rows (interactions, lifecycle history, tags, grants,
    external ids, contacts, links, account team, scores) and before it deletes
    ``merged``'s row, which cascades to every row still referencing it. A
    plugin moves its rows to ``kept.id`` or combines them (loyalty adds the
    balances up, segmentation recomputes); rows left on ``merged.id`` are
    deleted by the cascade, or make the merge fail without ``ON DELETE
    CASCADE``. ``kept`` is the customer as it will be stored after the merge.
    Raising rolls back the merge. Return nothing.
    """


@hookspec
def crm_relationships_changed(ctx: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
    """Contacts, organisation hierarchy, typed links or account teams changed.

    Called inside the transaction that changed them, once per operation.
    Each change is a JSON-safe mapping with ``kind`` (``"contact"``,
    ``"parent"``, ``"link"``, ``"team"``), ``action`` (``"added"``,
    ``"updated"``, ``"removed"``) and the ids involved
    (``crmcore.services.accounts`` documents each kind's keys). Raising rolls
    back the change. Return nothing.
    """


@hookspec
def crm_account_rollup(
    crm: CRM, account_id: int, member_ids: Sequence[int]
) -> Mapping[str, Any] | None:
    """Your figures for an account, summed over the organisation, its contacts and subsidiaries.

    ``member_ids`` are the ids of every customer the account's roll-up covers
    (the organisation itself, its contacts and its subsidiaries, recursively).
    Return a JSON-safe mapping, shown under your plugin's name in the
    account's 360° view (``crm.accounts.view``), or None to add nothing.
    Collected like :func:`crm_customer_profile`.
    """


@hookspec
def crm_interactions_recorded(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """Interactions were just recorded; ``interactions`` carry their new ids.

    Called inside the recording transaction, once per batch. Automatic
    lifecycle moves caused by the batch (first purchase: prospect to new) have
    already happened. Raising rolls back the whole batch operation, including
    the interactions. Return nothing.
    """


@hookspec
def crm_lifecycle_changed(ctx: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
    """Customers moved between lifecycle stages (explicitly or automatically).

    Called inside the transaction that made the moves, once per batch of
    moves. Initial stages set at creation are reported too, with
    ``from_stage=None``. Raising rolls back the moves and the operation that
    caused them.
    """


# --- validation -------------------------------------------------------------


@hookspec
def crm_validate_customers(
    ctx: UnitOfWork, customers: Sequence[Customer]
) -> Iterable[tuple[int, str]] | None:
    """Check customers before they are written (created or updated).

    Called inside the transaction, after core's own validation and before the
    write, once per batch. Return ``(index, message)`` pairs, ``index`` being
    the position in ``customers`` of the customer at fault, the message naming
    the field and value (``"attributes.vat_id: required for organizations"``).
    Return nothing (or an empty iterable) when all is well. A message aborts
    the operation with a ValidationError, or, where the caller asked to skip
    invalid rows (``on_reject``), rejects that customer only.
    """


# --- views --------------------------------------------------------------------


@hookspec
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Return your section of the customer's 360° view, as JSON-safe data.

    Called by :meth:`CustomerService.profile`, outside any write transaction.
    The section appears under your plugin's name. Return ``None`` to add
    nothing. An exception fails the profile call with a PluginError.
    """


@hookspec
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any] | None:
    """Return your KPIs for ``period`` (a half-open ``[start, end)`` interval).

    Called by the performance report for the period and the previous one.
    Return a flat mapping of metric name to number (or Decimal); compute it
    in SQL. Appears under your plugin's name. Return ``None`` to add nothing.
    """


@hookspec
def crm_report_charts(crm: CRM, period: Period) -> Sequence[ReportChart] | None:
    """Return charts for the performance report's HTML page (``crm report --html``).

    Called once per report, outside any write transaction, with the report's
    period. Return :class:`~crmcore.reporting.ReportChart` values (trend
    lines, a cohort heatmap, an RFM grid ...); compute their data in SQL. They
    also appear, as data, in ``crm report --json``.
    """


@hookspec
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Iterable[ChurnSignal] | None:
    """Return churn signals you know of for these customers.

    Called by churn scoring with a batch of customer ids. Return
    :class:`~crmcore.model.signals.ChurnSignal` values (customer id, source, reason,
    weight in [0, 1]); customers you know nothing bad about are left out.
    """


# --- access control -----------------------------------------------------------


@hookspec(firstresult=True)
def crm_authorize(
    crm: CRM, principal: Principal, action: str, customer: Customer | None
) -> bool | ColumnElement[bool] | None:
    """Decide whether ``principal`` may do ``action`` (on ``customer``, when given).

    Called by every service call of a CRM view made with ``crm.as_user(...)``,
    before the default role policy (:mod:`crmcore.access`). ``action`` is one
    of read, write, delete, erase, export, import, report, audit, grant,
    administer.
    Return ``True`` to allow, ``False`` to deny, ``None`` to leave it to the
    default policy; the first non-``None`` answer wins.

    With ``customer=None`` the question is about every customer at once: for
    listings, iteration, exports and plugin queries (``crm.access.where``) and
    for actions on everything (reports). ``True`` allows every customer,
    ``False`` none, and a SQLAlchemy condition on ``crm_customers`` (e.g.
    ``customers.c.attributes["region"].as_string() == "EU"``) exactly the rows
    it matches (an action on everything is then refused). ``None`` leaves the
    set to the default policy, and then, since the hook may still decide
    customer by customer, every listed row is also asked about one by one (a
    scan: return a condition instead for large tables). A policy that
    restricts a principal to some customers should answer this question too,
    or reports over everyone stay open to them. Keep it fast: it runs on every
    call.
    """


# --- privacy ----------------------------------------------------------------


@hookspec
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Return everything you hold on one customer, JSON-safe (data portability).

    Called by :meth:`CustomerService.export` inside a read transaction, so all
    plugins see one snapshot. Appears under your plugin's name.
    """


@hookspec
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Remove or irreversibly anonymise everything you hold on one customer.

    Called by :meth:`CustomerService.erase` inside its transaction, before core
    anonymises the customer row. Keep only aggregates that identify nobody.
    Raising rolls the erasure back everywhere.
    """


# --- after commit: outside any transaction -----------------------------------


@hookspec
def crm_events_committed(crm: CRM, events: Sequence[Event]) -> None:
    """Domain events whose transaction just committed (``crmcore.events.Event``).

    Called after every unit of work that emitted events has committed,
    outside any transaction, with that unit of work's events in commit
    order (core's: ``customer.created`` ... see docs/events.md; plugins' own
    through ``ctx.emit``); a bulk operation's events come in several calls
    of up to 50 outbox rows each. Use it to notify other systems of
    what is now certain. Each implementation runs in a pluggy call of its
    own: an exception is logged with your plugin's name and reaches neither
    the caller nor the other plugins. This is at most once (a crash right
    after the commit skips it); for at-least-once delivery read the outbox
    (``crm.events.iter(after=...)``) or run ``crm events relay``. Return
    nothing.
    """


# --- demo -------------------------------------------------------------------


@hookspec
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Add your part to ``crm demo`` and print your report.

    Called after core's demo data is loaded, in hook order (see the conventions).
    Generate data deterministically from ``seed``, write it through your own
    service functions, and print a short report to ``console``.
    """
