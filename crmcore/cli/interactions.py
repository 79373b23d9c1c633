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
    print_table,
)
from crmcore.cli.parsing import parse_json_object, parse_timestamp
from crmcore.cli.transfer import import_command
from crmcore.entities import Channel, Direction, InteractionKind
from crmcore.serialization import to_dict

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
@click.option("--limit", type=int, default=50, show_default=True)
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
        "limit": limit,
        "offset": offset,
    }
    page = (
        service.timeline(customer_id, **kwargs)
        if customer_id is not None
        else service.list(**kwargs)
    )
    items = [to_dict(i) for i in page.items]
    if as_json:
        print_json(
            {"total": page.total, "limit": page.limit, "offset": page.offset, "items": items}
        )
        return
    total = sum((i.amount or Decimal(0)) for i in page.items)
    print_table(
        items,
        [
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
        caption=f"{len(items)} of {page.total} shown; amounts on this page sum to {total}",
    )


interactions.add_command(import_command("interactions", default_batch=1000))


@interactions.command()
@click.option("--customer", "customer_id", type=int, help="Only this customer's interactions.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
def export(customer_id: int | None, fmt: str, output: Path | None) -> None:
    """Export interactions as CSV or JSON Lines."""
    from crmcore.exports import export_interactions

    crm = get_crm()
    if output is None:
        export_interactions(crm, sys.stdout, format=fmt, customer_id=customer_id)
        return
    with output.open("w", encoding="utf-8", newline="") as out:
        count = export_interactions(crm, out, format=fmt, customer_id=customer_id)
    click.echo(f"Exported {count} interactions to {output}", err=True)
