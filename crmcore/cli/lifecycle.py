"""``crm lifecycle move|history|graph``."""

from __future__ import annotations

import click

from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_table,
)
from crmcore.model.serialization import to_dict
from crmcore.services.lifecycle import TRANSITIONS


@click.group()
def lifecycle() -> None:
    """Customer lifecycle stages: prospect, new, active, loyal, at_risk, churned."""


@lifecycle.command()
@click.argument("customer_id", type=int)
@click.argument("stage")
@click.option("--reason", help="Why the customer moves (kept in the history).")
@json_option
def move(customer_id: int, stage: str, reason: str | None, as_json: bool) -> None:
    """Move a customer to STAGE (only moves the stage graph allows)."""
    event = get_crm().lifecycle.move(customer_id, stage, reason=reason, actor=get_actor())
    if as_json:
        print_json(to_dict(event))
    else:
        assert event.from_stage is not None
        get_console().print(
            f"Customer {customer_id}: {event.from_stage.value} -> {event.to_stage.value}"
        )


@lifecycle.command()
@click.argument("customer_id", type=int)
@json_option
def history(customer_id: int, as_json: bool) -> None:
    """Every stage a customer has been in, oldest first."""
    events = [to_dict(e) for e in get_crm().lifecycle.history(customer_id)]
    if as_json:
        print_json(events)
    else:
        print_table(
            events,
            ["at", "from_stage", "to_stage", "reason", "actor"],
            title=f"Lifecycle of customer {customer_id}",
        )


@lifecycle.command()
def graph() -> None:
    """The allowed moves between stages."""
    rows = [
        {"from": s.value, "to": ", ".join(sorted(t.value for t in targets))}
        for s, targets in TRANSITIONS.items()
    ]
    print_table(rows, ["from", "to"], title="Allowed lifecycle moves")
