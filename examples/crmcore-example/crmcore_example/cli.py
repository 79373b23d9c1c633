"""``crm example ...``: parse, call a service function, print."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.table import Table

from crmcore.cli.context import get_crm, json_option, print_json, print_record
from crmcore_example import service


@click.group()
def example() -> None:
    """Show what the example plugin counts: touches (interactions) per customer."""


@example.command("touches")
@click.argument("customer_id", metavar="ID", type=int)
@json_option
def touches(customer_id: int, as_json: bool) -> None:
    """Show how often customer ID was touched, and when last."""
    data = service.touches_of(get_crm(), customer_id)
    if as_json:
        print_json(data)
    else:
        print_record(data, title=f"customer {customer_id}: touches")


def render_top_touched(rows: Sequence[Mapping[str, Any]]) -> Table:
    """Build a rich table of the most touched customers (for ``crm demo``)."""
    table = Table(title="example: most touched customers")
    for column in ("customer", "name", "touches", "last touch"):
        table.add_column(column)
    for row in rows:
        last = row["last_touch_at"]
        table.add_row(
            str(row["customer_id"]),
            row["name"],
            str(row["touches"]),
            last.strftime("%Y-%m-%d %H:%M") if last else "",
        )
    return table
