"""The surveys plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``surveys =
"crmcore_surveys.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_surveys.plugin])``; ``crm_plugin_name`` makes both register as
``surveys``.

Hook bodies import the plugin's modules when they run: ``crm --help`` imports this
module and must start fast (``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_surveys import __version__, hookspecs

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, ChurnSignal, Customer, Interaction, Period, UnitOfWork
    from crmcore.reporting import ReportChart

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "surveys"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``surveys_low_score`` for other plugins."""
    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the ``surveys_*`` tables on core's shared metadata."""
    from crmcore_surveys.tables import register_tables

    register_tables(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``surveys``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the schema of ``[plugins.surveys]``."""
    from crmcore_surveys.settings import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read the validated config once."""
    from crmcore_surveys.settings import remember_settings

    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm surveys ...``."""
    add_lazy_command(
        cli,
        "surveys",
        "crmcore_surveys.cli:surveys",
        "Satisfaction surveys: definitions, invitations, responses and scores.",
    )


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's survey invitations and responses to the kept one."""
    from crmcore_surveys import merging

    assert kept.id is not None and merged.id is not None
    merging.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the survey data of customers about to be deleted."""
    from crmcore_surveys import service

    service.forget(ctx, [c.id for c in customers if c.id is not None])


@hookimpl
def crm_interactions_recorded(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """Record the relationship scores of B2B assessment responses (``crm.accounts``)."""
    from crmcore_surveys import relationship

    relationship.record_relationship_scores(ctx, interactions)


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add the customer's latest scores to the 360° view."""
    from crmcore_surveys import service

    return service.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report NPS, CSAT, CES, responses and response rate for the period."""
    from crmcore_surveys import service

    return service.metrics(crm, period)


@hookimpl
def crm_report_charts(crm: CRM, period: Period) -> Sequence[ReportChart]:
    """An importance-performance grid per survey with dimension answers in the period."""
    from crmcore_surveys import scoring

    return scoring.report_charts(crm, period)


@hookimpl
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Iterable[ChurnSignal]:
    """Signal customers with recent low scores."""
    from crmcore_surveys import service

    return service.churn_signals(crm, customer_ids)


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's invitations and responses."""
    from crmcore_surveys import service

    return service.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Unlink the customer's responses and delete personal survey data."""
    from crmcore_surveys import service

    service.erase(ctx, customer_id)


@hookimpl(tryfirst=True)
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Run an NPS and a multi-dimension survey over the demo customers; print the report.

    Runs first, so that the complaints plugin can follow up the low scores it fires.
    """
    from crmcore_surveys.demo import run_demo

    run_demo(crm, seed, console)
