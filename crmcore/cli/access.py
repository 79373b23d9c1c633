"""``crm access grant|revoke``: let an agent work on a customer they do not own."""

from __future__ import annotations

import click

from crmcore.cli.context import get_console, get_crm
from crmcore.cli.output import safe_text


@click.group()
def access() -> None:
    """Access grants (roles: admin, manager, agent; see `crm --help` for --user/--role)."""


@access.command()
@click.argument("customer_id", type=int)
@click.argument("user")
def grant(customer_id: int, user: str) -> None:
    """Let USER read and write customer CUSTOMER_ID."""
    get_crm().access.grant(customer_id, user)
    get_console().print(f"{safe_text(user)} may now work on customer {customer_id}.")


@access.command()
@click.argument("customer_id", type=int)
@click.argument("user")
def revoke(customer_id: int, user: str) -> None:
    """Withdraw USER's grant on customer CUSTOMER_ID."""
    get_crm().access.revoke(customer_id, user)
    get_console().print(f"{safe_text(user)} no longer has a grant on customer {customer_id}.")
