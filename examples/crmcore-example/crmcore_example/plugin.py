"""The example plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``example =
"crmcore_example.plugin"``), or in code with ``CRM.open(...,
plugins=[crmcore_example.plugin])``: ``crm_plugin_name`` makes both register
under the name ``example``.

Hook bodies import the plugin's modules when they run: ``crm --help`` imports this
module and must start fast (``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_example import __version__, hookspecs

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import (
        CRM,
        ChurnSignal,
        Customer,
        CustomerChange,
        Event,
        Interaction,
        LifecycleEvent,
        Period,
        UnitOfWork,
    )
    from crmcore.access import Principal
    from crmcore.reporting import ReportChart

#: The name this module registers under when passed to ``CRM.open(plugins=...)``
#: (an entry point registers under its own name, ``example``).
crm_plugin_name = "example"

# ``__version__`` is what ``crm.plugins()`` shows for a plugin registered in
# code; for an installed one it reads the distribution's version.
__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``example_touch_milestone`` for other plugins."""
    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define ``example_touches`` on core's shared metadata."""
    from crmcore_example.tables import touches_table

    touches_table(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``example``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the schema of ``[plugins.example]``: ``milestone``, ``blocked_domain``."""
    from crmcore_example import service

    return service.CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read the validated config once."""
    from crmcore_example import service

    service.remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm example ...``."""
    add_lazy_command(
        cli,
        "example",
        "crmcore_example.cli:example",
        "Show what the example plugin counts: touches (interactions) per customer.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_created(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Start counting for the new customers."""
    from crmcore_example import service

    service.start_tracking(ctx, [c.id for c in customers if c.id is not None])


@hookimpl
def crm_customers_updated(ctx: UnitOfWork, changes: Sequence[CustomerChange]) -> None:
    """Count the updates."""
    from crmcore_example import service

    service.count_updates(ctx, changes)


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Add the merged customer's counters to the kept one's."""
    from crmcore_example import service

    assert kept.id is not None and merged.id is not None
    service.merge_counts(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Drop the rows of customers about to be deleted."""
    from crmcore_example import service

    service.stop_tracking(ctx, [c.id for c in customers if c.id is not None])


@hookimpl
def crm_interactions_recorded(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """Count the touches."""
    from crmcore_example import service

    service.record_touches(ctx, interactions)


@hookimpl
def crm_lifecycle_changed(ctx: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
    """Count the moves."""
    from crmcore_example import service

    service.count_moves(ctx, events)


@hookimpl
def crm_relationships_changed(ctx: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
    """Note contacts, hierarchy, links and team changes as an event per account."""
    from crmcore_example import service

    service.note_relationships(ctx, changes)


# --- validation ------------------------------------------------------------------


@hookimpl
def crm_validate_customers(
    ctx: UnitOfWork, customers: Sequence[Customer]
) -> Iterable[tuple[int, str]]:
    """Refuse emails in the configured ``blocked_domain``."""
    from crmcore_example import service

    return service.blocked_emails(ctx.crm, customers)


# --- access control ---------------------------------------------------------------


@hookimpl
def crm_authorize(
    crm: CRM, principal: Principal, action: str, customer: Customer | None
) -> bool | None:
    """Let ``read_only_users`` (config) read, and nothing else; no opinion on anyone else."""
    from crmcore_example import service

    return service.authorize(crm, principal.user, action)


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add ``{"touches": n, "last_touch_at": iso}`` to the profile."""
    from crmcore_example import service

    return service.profile_section(crm, customer)


@hookimpl
def crm_account_rollup(
    crm: CRM, account_id: int, member_ids: Sequence[int]
) -> Mapping[str, Any] | None:
    """Add ``{"touches": n, "members_touched": m}`` summed over the account's members."""
    from crmcore_example import service

    return service.account_touches(crm, account_id, member_ids)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report ``touches_in_period`` and ``customers_touched``."""
    from crmcore_example import service

    return service.metrics(crm, period)


@hookimpl
def crm_report_charts(crm: CRM, period: Period) -> Sequence[ReportChart]:
    """Chart the period's touches per channel."""
    from crmcore_example import service

    return [service.touches_by_channel_chart(crm, period)]


@hookimpl
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Iterable[ChurnSignal]:
    """Signal the customers never touched."""
    from crmcore_example import service

    return service.never_touched(crm, customer_ids)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's counts."""
    from crmcore_example import service

    return service.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Delete the customer's counts."""
    from crmcore_example import service

    service.erase(ctx, customer_id)


# --- after commit ----------------------------------------------------------------


@hookimpl
def crm_events_committed(crm: CRM, events: Sequence[Event]) -> None:
    """Remember the committed events (where a real plugin would call a webhook)."""
    from crmcore_example import notifications

    notifications.note_committed(events)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Print the most touched customers of the demo data."""
    from crmcore_example import service
    from crmcore_example.cli import render_top_touched

    console.print(render_top_touched(service.top_touched(crm)))
