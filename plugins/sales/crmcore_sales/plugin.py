"""The sales plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``sales =
"crmcore_sales.plugin"``) or in code with ``CRM.open(...,
plugins=[crmcore_sales.plugin])``; ``crm_plugin_name`` makes both register
under the name ``sales``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookimpl
from crmcore_sales import __version__, hookspecs
from crmcore_sales.settings import CONFIG_SCHEMA, PLUGIN_NAME, remember_settings
from crmcore_sales.tables import register

if TYPE_CHECKING:
    import click
    import pluggy
    from sqlalchemy import MetaData

    from crmcore import CRM

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = PLUGIN_NAME

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
    register(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``sales``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the JSON Schema of ``[plugins.sales]``."""
    return CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the configuration once (pipelines, stages, moves, reasons)."""
    remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm sales ...``."""
    from crmcore_sales.cli import sales

    cli.add_command(sales)
