"""The loyalty plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``loyalty =
"crmcore_loyalty.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_loyalty.plugin])``: ``crm_plugin_name`` makes both register
under the name ``loyalty``.

Hook bodies import the plugin's modules when they run: ``crm --help`` imports this
module and must start fast (``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_loyalty import __version__, hookspecs

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, Customer, Interaction, Period, UnitOfWork

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "loyalty"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``loyalty_tier_changed``."""
    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the loyalty tables on core's shared metadata."""
    from crmcore_loyalty.tables import register_tables

    register_tables(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the alembic branch ``loyalty``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the schema of ``[plugins.loyalty]`` (the programme definition)."""
    from crmcore_loyalty.programme import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the programme definition once."""
    from crmcore_loyalty.programme import remember_programme

    remember_programme(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm loyalty ...``."""
    add_lazy_command(
        cli,
        "loyalty",
        "crmcore_loyalty.cli:loyalty",
        "Loyalty programme: members, points ledger, tiers, redemption and expiry.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_interactions_recorded(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """Earn points for members' purchases, reverse them for refunds (same transaction)."""
    from crmcore_loyalty.earning import earn_from_interactions

    earn_from_interactions(ctx, interactions)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the loyalty rows of customers about to be deleted."""
    from crmcore_loyalty import service

    service.forget(ctx, [c.id for c in customers if c.id is not None])


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's ledger, lots, tier history and membership to the kept one."""
    from crmcore_loyalty import merging

    assert kept.id is not None and merged.id is not None
    merging.merge_rows(ctx, kept.id, merged.id)


@hookimpl(optionalhook=True)
def complaints_compensation_issued(
    ctx: UnitOfWork, compensations: Sequence[Mapping[str, Any]]
) -> None:
    """Credit ``points`` compensations as ``adjust`` entries, idempotent on their key."""
    from crmcore_loyalty import service

    service.credit_compensations(ctx, compensations)


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add membership, tier, balance and points expiring soon to the 360° view."""
    from crmcore_loyalty import service

    return service.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report the programme's KPIs for the period."""
    from crmcore_loyalty import kpis

    return kpis.metrics(crm, period)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export membership, ledger and tier history."""
    from crmcore_loyalty import service

    return service.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Forfeit the balance, anonymise the ledger, delete the rest."""
    from crmcore_loyalty import service

    service.erase(ctx, customer_id)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Enroll part of the demo customers, replay their purchases, print the report."""
    from crmcore_loyalty import kpis
    from crmcore_loyalty.cli import render_report
    from crmcore_loyalty.demo import run_demo

    summary = run_demo(crm, seed)
    console.print(
        f"loyalty: enrolled {summary['enrolled']} members, replayed their purchases month by "
        f"month ({summary['entries']} ledger entries, {summary['redemptions']} redemptions)."
    )
    console.print(render_report(kpis.programme_report(crm)))
