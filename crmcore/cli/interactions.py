"""``crm interactions add|list|import|export``."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
)
from crmcore.cli.files import atomic_output, raw_cells_option, terminal_safe
from crmcore.cli.listing import iter_pages, print_listing
from crmcore.cli.output import safe_line
from crmcore.cli.parsing import parse_json_object, parse_timestamp
from crmcore.cli.transfer import import_command
from crmcore.model.entities import Channel, Direction, Interaction, InteractionKind
from crmcore.model.pagination import Page
from crmcore.model.serialization import to_dict

KINDS = [k.value for k in InteractionKind]
CHANNELS = [c.value for c in Channel]


@click.group()
def interactions() -> None:
    """Interactions: purchases, calls, emails, visits, complaints ..."""


@interactions.command()
@click.option("--customer", "customer_id", type=int, required=True, help="Customer id.")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--channel", type=click.Choice(CHANNELS), default="other", show_default=True)
@click.option("--direction", type=click.Choice([d.value for d in Direction]), default="inbound")
@click.option("--at", "occurred_at", help="When (ISO 8601; no offset = UTC). Default: now.")
@click.option("--amount", help="Amount, for purchases and refunds (e.g. 19.90).")
@click.option("--currency", help="ISO 4217 code, e.g. EUR.")
@click.option("--text")
@click.option("--handled-by")
@click.option("--response-seconds", type=float)
@click.option("--payload", metavar="JSON", help="Extra data, as a JSON object.")
@json_option
def add(
    as_json: bool, occurred_at: str | None, amount: str | None, payload: str | None, **fields: Any
) -> None:
    """Record one interaction."""
    crm = get_crm()
    record: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    record["occurred_at"] = parse_timestamp(occurred_at, "--at") if occurred_at else crm.clock()
    if amount is not None:
        record["amount"] = amount
    if payload is not None:
        record["payload"] = parse_json_object(payload, "--payload")
    interaction = crm.interactions.record(record, actor=get_actor())
    if as_json:
        print_json(to_dict(interaction))
    else:
        get_console().print(
            f"Recorded {interaction.kind.value} {interaction.id} "
            f"for customer {interaction.customer_id}"
        )


@interactions.command("list")
@click.option("--customer", "customer_id", type=int, help="Only this customer's timeline.")
@click.option("--kind", "kinds", type=click.Choice(KINDS), multiple=True, help="Repeatable.")
@click.option(
    "--channel", "channels", type=click.Choice(CHANNELS), multiple=True, help="Repeatable."
)
@click.option("--since", help="From this date/time, inclusive (ISO 8601).")
@click.option("--until", help="Before this date/time, exclusive (ISO 8601).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def list_interactions(
    customer_id: int | None,
    kinds: tuple[str, ...],
    channels: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """Interactions, newest first, filtered by customer, kind, channel and dates."""
    service = get_crm().interactions
    kwargs: dict[str, Any] = {
        "kinds": kinds or None,
        "channels": channels or None,
        "since": parse_timestamp(since, "--since") if since else None,
        "until": parse_timestamp(until, "--until") if until else None,
    }
    amounts = [Decimal(0)]

    def fetch(size: int, at: int) -> Page[Interaction]:
        if customer_id is not None:
            return service.timeline(customer_id, limit=size, offset=at, **kwargs)
        return service.list(limit=size, offset=at, **kwargs)

    def row(interaction: Interaction) -> dict[str, Any]:
        amounts[0] += interaction.amount or Decimal(0)
        return to_dict(interaction)

    print_listing(
        iter_pages(fetch, limit, offset),
        as_json=as_json,
        limit=limit,
        offset=offset,
        row=row,
        columns=[
            "id",
            "occurred_at",
            "customer_id",
            "kind",
            "channel",
            "direction",
            "amount",
            "currency",
            "text",
        ],
        title="Interactions",
        caption=lambda shown, total: f"{shown} of {total} shown; amounts shown sum to {amounts[0]}",
    )


interactions.add_command(import_command("interactions", default_batch=1000))


@interactions.command()
@click.option("--customer", "customer_id", type=int, help="Only this customer's interactions.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Default: stdout. Written only when the export succeeds (an existing file is kept "
    "intact otherwise).",
)
@raw_cells_option
def export(customer_id: int | None, fmt: str, output: Path | None, raw_cells: bool) -> None:
    """Export interactions as CSV or JSON Lines (CSV formula cells neutralised, see customers)."""
    from crmcore.io.exports import export_interactions

    crm = get_crm()
    options: dict[str, Any] = {"format": fmt, "customer_id": customer_id, "raw_cells": raw_cells}
    if output is None:
        export_interactions(crm, terminal_safe(sys.stdout), **options)
        return
    with atomic_output(output) as out:
        count = export_interactions(crm, out, **options)
    click.echo(safe_line(f"Exported {count} interactions to {output}"), err=True)
