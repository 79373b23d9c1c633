"""The sales plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``sales =
"crmcore_sales.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_sales.plugin])``; ``crm_plugin_name`` makes both register
under the name ``sales``.

Hook bodies import the plugin's modules when they run: ``crm --help`` imports this
module and must start fast (``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_sales import __version__, hookspecs

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, ChurnSignal, Customer, Period, UnitOfWork

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "sales"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``sales_instalments_overdue`` and ``sales_contracts_due_for_renewal``."""
    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the ``sales_*`` tables on core's shared metadata."""
    from crmcore_sales.tables import register

    register(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``sales``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of ``[plugins.sales]``."""
    from crmcore_sales.settings import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the configuration once (pipelines, stages, moves, reasons)."""
    from crmcore_sales.settings import remember_settings

    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm sales ...``."""
    add_lazy_command(
        cli,
        "sales",
        "crmcore_sales.cli:sales",
        "Sales: deals and pipelines, forecast, funnel, targets, contracts and collection.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's deals, contracts, instalments and payments to the kept one."""
    from crmcore_sales import privacy

    assert kept.id is not None and merged.id is not None
    privacy.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the deals and contracts of customers about to be deleted."""
    from crmcore_sales import privacy

    privacy.forget(ctx, [c.id for c in customers if c.id is not None])


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add open deals, the last won, the latest contract and receivables to the 360° view."""
    from crmcore_sales import views

    return views.profile_section(crm, customer)


@hookimpl
def crm_account_rollup(
    crm: CRM, account_id: int, member_ids: Sequence[int]
) -> Mapping[str, Any] | None:
    """Sum deals and receivables over the account's organisation, contacts and subsidiaries."""
    from crmcore_sales import views

    return views.account_rollup(crm, account_id, member_ids)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report won revenue, win rate, pipeline, forecast, collection rate, overdue receivables."""
    from crmcore_sales import kpis

    return kpis.metrics(crm, period)


@hookimpl
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Iterable[ChurnSignal]:
    """Signal lost renewals, lost deals and overdue payments."""
    from crmcore_sales import views

    return views.churn_signals(crm, customer_ids)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's deals with history, contracts and payments."""
    from crmcore_sales import privacy

    return privacy.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Detach the customer's deals, contracts and payments and strip their free text."""
    from crmcore_sales import privacy

    privacy.erase(ctx, customer_id)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Add a year of deals, contracts and payments to the demo; print pipeline and forecast."""
    from crmcore_sales import demo

    demo.run(crm, seed, console)
