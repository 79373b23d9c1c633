"""``crm sales ...``: parse, call the service functions, print (tables, or JSON with ``--json``)."""

from __future__ import annotations

import click

from crmcore.cli.context import get_crm, json_option, print_json, print_table
from crmcore_sales.settings import settings_of


@click.group()
def sales() -> None:
    """Sales: deals and pipelines, forecast, funnel, targets, contracts and collection."""


@sales.command("pipelines")
@json_option
def pipelines_command(as_json: bool) -> None:
    """List the configured pipelines and their stages (probability, stale days, category)."""
    rows = [
        {
            "pipeline": p.name,
            "order": s.order,
            "stage": s.name,
            "probability": s.probability,
            "stale_days": s.stale_days,
            "category": s.category,
            "moves_to": ", ".join(sorted(p.moves[s.name])),
        }
        for p in settings_of(get_crm()).pipelines.values()
        for s in p.stages
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, list(rows[0]) if rows else ["pipeline"], title="pipelines")
