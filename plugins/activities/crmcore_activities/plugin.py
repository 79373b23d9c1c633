"""The activities plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``activities =
"crmcore_activities.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_activities.plugin])``. Service modules are imported inside
the hook bodies, so that ``crm --help`` (which imports every plugin) stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_activities import __version__

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, ChurnSignal, Customer, Period, UnitOfWork

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "activities"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``activities_reminders_due``."""
    from crmcore_activities import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the ``activities_*`` tables on core's shared metadata."""
    from crmcore_activities.tables import register

    register(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``activities``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of ``[plugins.activities]``."""
    from crmcore_activities.settings import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the configuration once (time zones, kinds, users)."""
    from crmcore_activities.settings import remember_settings

    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm activities ...``."""
    add_lazy_command(
        cli,
        "activities",
        "crmcore_activities.cli:activities",
        "Activities: tasks, the workbench, reminders, cadence and care rules, plan, report.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's activities to the kept one."""
    from crmcore_activities import privacy

    assert kept.id is not None and merged.id is not None
    privacy.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the activities of customers about to be deleted."""
    from crmcore_activities import privacy

    privacy.forget(ctx, [c.id for c in customers if c.id is not None])


# --- follow-ups from other plugins (each optional) ---------------------------------


@hookimpl(optionalhook=True)
def segmentation_churn_alerts_raised(ctx: UnitOfWork, alerts: Sequence[Mapping[str, Any]]) -> None:
    """A churn early-warning alert becomes a retention call for the owner."""
    from crmcore_activities import followups

    followups.churn_alerts(ctx, alerts)


@hookimpl(optionalhook=True)
def complaints_sla_breached(ctx: UnitOfWork, breaches: Sequence[Mapping[str, Any]]) -> None:
    """An SLA breach becomes an escalation task for the owner's manager."""
    from crmcore_activities import followups

    followups.sla_breaches(ctx, breaches)


@hookimpl(optionalhook=True)
def surveys_low_score(ctx: UnitOfWork, responses: Sequence[Mapping[str, Any]]) -> None:
    """A detractor response becomes a call-back."""
    from crmcore_activities import followups

    followups.detractors(ctx, responses)


@hookimpl(optionalhook=True)
def sales_contracts_due_for_renewal(
    ctx: UnitOfWork, contracts: Sequence[Mapping[str, Any]]
) -> None:
    """A contract due for renewal becomes a renewal call for its owner."""
    from crmcore_activities import followups

    followups.renewals(ctx, contracts)


@hookimpl(optionalhook=True)
def sales_instalments_overdue(ctx: UnitOfWork, instalments: Sequence[Mapping[str, Any]]) -> None:
    """An overdue payment becomes a collection call for the contract's owner."""
    from crmcore_activities import followups

    followups.overdue_payments(ctx, instalments)


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add the next planned and the last completed activities to the 360° view."""
    from crmcore_activities import measures

    return measures.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report activities planned, done, overdue rate, median lateness, cadence coverage."""
    from crmcore_activities import measures

    return measures.metrics(crm, period)


@hookimpl
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Iterable[ChurnSignal]:
    """Signal key customers not contacted for ``no_contact_days``."""
    from crmcore_activities import measures

    return measures.churn_signals(crm, customer_ids)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's activities."""
    from crmcore_activities import privacy

    return privacy.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Delete the customer's activities (and clear them as a contact person)."""
    from crmcore_activities import privacy

    privacy.erase(ctx, customer_id)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Add cadence rules and a month of activities; print one salesperson's workbench."""
    from crmcore_activities import demo

    demo.run(crm, seed, console)
