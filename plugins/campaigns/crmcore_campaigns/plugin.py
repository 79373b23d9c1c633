"""The campaigns plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``campaigns =
"crmcore_campaigns.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_campaigns.plugin])``. Service modules are imported inside the
hook bodies, so that ``crm --help`` (which imports every plugin) stays fast.

Messages go out through the messaging plugin; campaigns opens without it (a
launch that sends then refuses with "install crmcore-messaging").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_campaigns import __version__

if TYPE_CHECKING:
    import click
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, Customer, Period, UnitOfWork

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "campaigns"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the ``campaigns_*`` tables on core's shared metadata."""
    from crmcore_campaigns.tables import register

    register(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``campaigns``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of ``[plugins.campaigns]``."""
    from crmcore_campaigns.settings import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read the configuration once."""
    from crmcore_campaigns.settings import remember_settings

    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm campaigns ...``."""
    add_lazy_command(
        cli,
        "campaigns",
        "crmcore_campaigns.cli:campaigns",
        "Campaigns: audiences, variants, control groups, reminders, budgets and uplift.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's campaign rows to the kept one."""
    from crmcore_campaigns import privacy

    assert kept.id is not None and merged.id is not None
    privacy.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the campaign rows of customers about to be deleted."""
    from crmcore_campaigns import privacy

    privacy.forget(ctx, [c.id for c in customers if c.id is not None])


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """List the campaigns the customer received (group, variant, messages)."""
    from crmcore_campaigns import views

    return views.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report campaigns launched, conversions of treated and control, uplift."""
    from crmcore_campaigns import views

    return views.metrics(crm, period)


@hookimpl(optionalhook=True)
def messaging_template_variables(
    ctx: UnitOfWork, customer: Customer, ref_type: str | None, ref_id: str | None
) -> Mapping[str, Any] | None:
    """Give a campaign's templates its id, name and the customer's variant."""
    from crmcore_campaigns import views

    return views.template_variables(ctx, customer, ref_type, ref_id)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's campaign assignments and messages."""
    from crmcore_campaigns import privacy

    return privacy.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Delete the customer's campaign message rows (assignments stay, anonymous)."""
    from crmcore_campaigns import privacy

    privacy.erase(ctx, customer_id)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Run a win-back campaign with a control group over the demo's at-risk customers."""
    from crmcore_campaigns import demo

    demo.run(crm, seed, console)
