"""The segmentation plugin's hook implementations: thin, each forwards to a service function.

Registered through the ``crmcore.plugins`` entry point (``segmentation =
"crmcore_segmentation.plugin"``), or in code with ``CRM.open(...,
plugins=[crmcore_segmentation.plugin])``.

Hook bodies import the plugin's modules when they run: ``crm --help`` imports this
module and must start fast (``benchmarks/bench_startup.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.cli.lazy import add_lazy_command
from crmcore.hooks import hookimpl
from crmcore_segmentation import __version__, hookspecs

if TYPE_CHECKING:
    import click
    import pluggy
    from rich.console import Console
    from sqlalchemy import MetaData

    from crmcore import CRM, ChurnSignal, Customer, Period, UnitOfWork
    from crmcore.reporting import ReportChart

#: The name this module registers under when passed to ``CRM.open(plugins=...)``.
crm_plugin_name = "segmentation"

__all__ = ["__version__", "crm_plugin_name"]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


# --- setup -----------------------------------------------------------------------


@hookimpl
def crm_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish the hooks of :mod:`.hookspecs` (membership changes, facts, offers)."""
    pm.add_hookspecs(hookspecs)


@hookimpl
def crm_register_tables(metadata: MetaData) -> None:
    """Define the plugin's tables on core's shared metadata."""
    from crmcore_segmentation.tables import define_tables

    define_tables(metadata)


@hookimpl
def crm_migration_locations() -> str:
    """Return the directory of the plugin's alembic branch ``segmentation``."""
    return str(MIGRATIONS)


@hookimpl
def crm_config_schema() -> Mapping[str, Any]:
    """Return the schema of ``[plugins.segmentation]``."""
    from crmcore_segmentation import settings

    return settings.CONFIG_SCHEMA


@hookimpl
def crm_startup(crm: CRM) -> None:
    """Read and check the validated config once."""
    from crmcore_segmentation import settings

    settings.remember_settings(crm)


@hookimpl
def crm_register_commands(cli: click.Group) -> None:
    """Add ``crm segments ...``."""
    add_lazy_command(
        cli,
        "segments",
        "crmcore_segmentation.commands:segments",
        "RFM, value tiers, Pareto, CLV, saved segments, churn warning and cohorts.",
    )


# --- events ----------------------------------------------------------------------


@hookimpl
def crm_customers_merged(ctx: UnitOfWork, kept: Customer, merged: Customer) -> None:
    """Add the costs up, move churn alerts, recompute the kept customer's stored scores."""
    from crmcore_segmentation import merging

    assert kept.id is not None and merged.id is not None
    merging.merge_rows(ctx, kept.id, merged.id)


@hookimpl
def crm_customers_deleted(ctx: UnitOfWork, customers: Sequence[Customer]) -> None:
    """Drop the plugin's rows about customers about to be deleted."""
    from crmcore_segmentation import report  # numpy/scipy: only when called

    report.forget(ctx, [c.id for c in customers if c.id is not None])


# --- views -----------------------------------------------------------------------


@hookimpl
def crm_customer_profile(crm: CRM, customer: Customer) -> Mapping[str, Any] | None:
    """Add RFM, value, saved segments and the latest churn alert to the 360° view."""
    from crmcore_segmentation import report  # numpy/scipy: only when called

    return report.profile_section(crm, customer)


@hookimpl
def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any]:
    """Report retention, churn, repeat-purchase rate, key-customer share, at-risk counts."""
    from crmcore_segmentation import report  # numpy/scipy: only when called

    return report.metrics(crm, period)


@hookimpl
def crm_report_charts(crm: CRM, period: Period) -> Sequence[ReportChart]:
    """Contribute the RFM grid, the cohort heatmap and the retention trend."""
    from crmcore_segmentation import report  # numpy/scipy: only when called

    return report.charts(crm, period)


@hookimpl
def crm_churn_signals(crm: CRM, customer_ids: Sequence[int]) -> Sequence[ChurnSignal]:
    """A low probability of being alive in the stored BG/NBD scores is a churn signal."""
    from crmcore_segmentation.predictive_signals import alive_signals

    return alive_signals(crm, customer_ids)


# --- offers (this plugin's own hooks) --------------------------------------------


@hookimpl
def segmentation_recommendations(
    crm: CRM, customer_ids: Sequence[int], limit: int
) -> Mapping[int, Sequence[Mapping[str, Any]]]:
    """Answer with :func:`~crmcore_segmentation.recommend.recommendations`."""
    from crmcore_segmentation.recommend import recommendations

    found = recommendations(crm, customer_ids, limit=limit)
    return {cid: [o.as_dict() for o in offers] for cid, offers in found.items()}


@hookimpl
def segmentation_likely_buyers(crm: CRM, item: str, limit: int) -> Sequence[Mapping[str, Any]]:
    """Answer with :func:`~crmcore_segmentation.recommend.likely_buyers`."""
    from crmcore_segmentation.recommend import likely_buyers

    return likely_buyers(crm, item, limit=limit)


# --- privacy ---------------------------------------------------------------------


@hookimpl
def crm_export_customer(ctx: UnitOfWork, customer_id: int) -> Mapping[str, Any] | None:
    """Export segment memberships and history, churn alerts and costs."""
    from crmcore_segmentation import report  # numpy/scipy: only when called

    return report.export(ctx, customer_id)


@hookimpl
def crm_erase_customer(ctx: UnitOfWork, customer_id: int) -> None:
    """Delete every row about the customer."""
    from crmcore_segmentation import report  # numpy/scipy: only when called

    report.forget(ctx, [customer_id])


# --- demo ------------------------------------------------------------------------


@hookimpl(trylast=True)
def crm_demo(crm: CRM, seed: int, console: Console) -> None:
    """Score the demo data: RFM grid, key customers, churn warnings, a saved segment.

    Runs last, so that churn scoring sees the other plugins' demo data (complaints,
    low survey scores) through their churn signals.
    """
    from crmcore_segmentation.demo import run_demo

    run_demo(crm, seed, console)
