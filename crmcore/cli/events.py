"""``crm events list|tail|relay``: the outbox of committed domain events."""

from __future__ import annotations

import time
from typing import Any

import click

from crmcore.cli.context import get_crm, json_option, print_json, print_table
from crmcore.cli.output import safe_json, safe_line
from crmcore.events.model import Event
from crmcore.model.limits import INT64_MAX

_COLUMNS = ("position", "id", "type", "customer_id", "at", "data")


def _row(event: Event) -> dict[str, Any]:
    data = event.to_json()
    data["data"] = safe_json(data["data"], indent=None)
    return data


@click.group()
def events() -> None:
    """Committed domain events (the outbox) and their relay to a message broker."""


@events.command("list")
@click.option("--after", type=click.IntRange(0, None), default=0, help="Outbox position.")
@click.option("--type", "event_type", help="Only events of this type (customer.created ...).")
@click.option("--customer", "customer_id", type=click.IntRange(1, INT64_MAX))
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@json_option
def list_events(
    after: int, event_type: str | None, customer_id: int | None, limit: int, as_json: bool
) -> None:
    """Committed events after a position, oldest first (admins and managers)."""
    found = get_crm().events.list(
        after=after, type=event_type, customer_id=customer_id, limit=limit
    )
    if as_json:
        print_json([e.to_json() for e in found])
    else:
        print_table([_row(e) for e in found], _COLUMNS)


@events.command()
@click.option("--after", type=click.IntRange(0, None), default=0, help="Outbox position.")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new events.")
@click.option("--poll", type=click.FloatRange(0.05, 60), default=1.0, show_default=True)
def tail(after: int, follow: bool, poll: float) -> None:
    """Print committed events as JSON lines, one per event; with --follow, as they commit."""
    crm = get_crm()
    position = after
    while True:
        for event in crm.events.iter(after=position):
            click.echo(safe_json(event.to_json(), indent=None))
            position = event.position
        if not follow:
            return
        time.sleep(poll)


@events.command()
@click.option("--to", "url", required=True, help="Broker URL: amqp://user:password@host:5672/")
@click.option("--exchange", default="crm.events", show_default=True, help="Topic exchange.")
@click.option("--name", default="amqp", show_default=True, help="The relay's cursor name.")
@click.option("--once", is_flag=True, help="Publish what is there, then stop.")
@click.option("--poll", type=click.FloatRange(0.05, 60), default=1.0, show_default=True)
def relay(url: str, exchange: str, name: str, once: bool, poll: float) -> None:
    """Publish committed events to RabbitMQ, at least once, in commit order.

    Each event is a persistent JSON message whose routing key is its type
    and whose message_id is its stable id (consumers de-duplicate on it).
    The relay remembers its position; restarted, it resumes there.
    """
    from crmcore.events.relay import relay as run_relay

    count = run_relay(get_crm(), url, exchange=exchange, name=name, once=once, poll=poll)
    click.echo(safe_line(f"Published {count} event(s) to {exchange}."))
