"""The complaints plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``complaints =
"crmcore_complaints.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_complaints.plugin])``; ``crm_plugin_name`` makes both
register under the name ``complaints``.

Hook bodies import the plugin's modules when they run: ``crm --help`` imports this
module and must start fast (``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_complaints import __version__, hookspecs

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, ChurnSignal, Customer, Period, UnitOfWork

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "complaints"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``complaints_compensation_issued`` and ``complaints_sla_breached``."""
    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the ``complaints_*`` tables on core's shared metadata."""
    from crmcore_complaints.tables import register

    register(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``complaints``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of ``[plugins.complaints]``."""
    from crmcore_complaints.settings import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the configuration once (SLA targets, tree, business hours)."""
    from crmcore_complaints.settings import remember_settings

    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm complaints ...``."""
    add_lazy_command(
        cli,
        "complaints",
        "crmcore_complaints.cli:complaints",
        "Complaint handling: intake, workflow, SLA sweep, resolution and analytics.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's complaints, compensations and SLA breaches to the kept one."""
    from crmcore_complaints import merging

    assert kept.id is not None and merged.id is not None
    merging.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the complaints of customers about to be deleted."""
    from crmcore_complaints import privacy

    privacy.forget(ctx, [c.id for c in customers if c.id is not None])


# --- other plugins' hooks ----------------------------------------------------------


@hookimpl(optionalhook=True)
def surveys_low_score(ctx: UnitOfWork, responses: Sequence[Mapping[str, Any]]) -> None:
    """Open a follow-up complaint per low survey score (once per response)."""
    from crmcore_complaints import followups

    followups.open_followups(ctx, responses)


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add the customer's complaints to the 360° view."""
    from crmcore_complaints import views

    return views.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report complaint rates, response and resolution times, SLA compliance, reopen rate."""
    from crmcore_complaints import analytics

    return analytics.metrics(crm, period)


@hookimpl
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Iterable[ChurnSignal]:
    """Signal customers with recent or repeated complaints."""
    from crmcore_complaints import views

    return views.churn_signals(crm, customer_ids)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's complaints with history, compensation and breaches."""
    from crmcore_complaints import privacy

    return privacy.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Detach the customer's complaints and strip their personal details."""
    from crmcore_complaints import privacy

    privacy.erase(ctx, customer_id)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Add complaints with realistic timings to the demo and print the complaints report."""
    from crmcore_complaints import analytics, demo
    from crmcore_complaints.cli import render_report

    now = crm.clock()
    count = demo.load(crm, seed, now)
    console.print(f"complaints: opened {count} demo complaints (handled, swept at {now:%Y-%m-%d}).")
    render_report(analytics.report(crm, demo.demo_period(now)), console)
