"""The messaging plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``messaging =
"crmcore_messaging.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_messaging.plugin])``. Service modules are imported inside
the hook bodies, so that ``crm --help`` (which imports every plugin) stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_messaging import __version__

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, Customer, Period, UnitOfWork

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "messaging"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish ``messaging_channel_types``, ``messaging_message_sent`` and the template hooks."""
    from crmcore_messaging import hookspecs, template_hookspecs

    pm.add_hookspecs(hookspecs)
    pm.add_hookspecs(template_hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the ``messaging_*`` tables on core's shared metadata."""
    from crmcore_messaging.tables import register

    register(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``messaging``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of ``[plugins.messaging]``."""
    from crmcore_messaging.settings import CONFIG_SCHEMA

    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the configuration once and build the channels."""
    from crmcore_messaging.settings import remember_settings

    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm messages ...``."""
    add_lazy_command(
        cli,
        "messages",
        "crmcore_messaging.cli:messages",
        "Messages to customers and staff: channels, send the queue, list, status, templates.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Move the merged customer's messages and unsubscribes to the kept one."""
    from crmcore_messaging import privacy

    assert kept.id is not None and merged.id is not None
    privacy.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Delete the messages of customers about to be deleted."""
    from crmcore_messaging import privacy

    privacy.forget(ctx, [c.id for c in customers if c.id is not None])


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add the messages the customer received (latest first) to the 360° view."""
    from crmcore_messaging import measures

    return measures.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report messages sent by channel, failures, refusals and opt-outs in the period."""
    from crmcore_messaging import measures

    return measures.metrics(crm, period)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export the customer's messages, clicks and unsubscribes."""
    from crmcore_messaging import privacy

    return privacy.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Empty the customer's messages and refuse those not sent yet (reason ``erased``)."""
    from crmcore_messaging import privacy

    privacy.erase(ctx, customer_id)


# --- messages the other plugins ask for (each optional) ----------------------------


@hookimpl(optionalhook=True)
def surveys_invitations_created(ctx: UnitOfWork, invitations: Sequence[Mapping[str, Any]]) -> None:
    """Queue each new survey invitation with its personal link."""
    from crmcore_messaging import integrations

    integrations.survey_invitations(ctx, invitations)


@hookimpl(optionalhook=True)
def complaints_progress(ctx: UnitOfWork, updates: Sequence[Mapping[str, Any]]) -> None:
    """Tell the customer their complaint was acknowledged or resolved."""
    from crmcore_messaging import integrations

    integrations.complaint_progress(ctx, updates)


@hookimpl(optionalhook=True)
def activities_reminders_due(ctx: UnitOfWork, reminders: Sequence[Mapping[str, Any]]) -> None:
    """Send activity reminders to their assignees."""
    from crmcore_messaging import integrations

    integrations.reminders(ctx, reminders)


@hookimpl(optionalhook=True)
def activities_care_messages(ctx: UnitOfWork, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
    """Take over care tasks as greetings to the customers; return the ids taken."""
    from crmcore_messaging import integrations

    return integrations.care_messages(ctx, tasks)


# --- demo ------------------------------------------------------------------------


@hookimpl
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Queue and send a few messages through a folder channel; print the outcome."""
    from crmcore_messaging import demo

    demo.run(crm, seed, console)
