"""``crm pool list|claim|release|recycle`` and ``crm customers reassign``."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli.confirm import confirm, yes_option
from crmcore.cli.context import get_actor, get_console, get_crm, json_option, print_json
from crmcore.cli.listing import iter_pages, print_listing
from crmcore.cli.output import safe_text
from crmcore.model.serialization import to_dict


@click.group()
def pool() -> None:
    """Customers without an owner: list them, claim one, give one back, recycle."""


@pool.command("list")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def list_pool(limit: int, offset: int, as_json: bool) -> None:
    """The unowned customers, oldest first, with the fields [pool] visible_fields shows."""
    crm = get_crm()
    fields = ["id", *crm.pool.settings.visible_fields]
    print_listing(
        iter_pages(lambda n, at: crm.pool.list(limit=n, offset=at), limit, offset),
        as_json=as_json,
        limit=limit,
        offset=offset,
        row=lambda item: item,
        columns=fields,
        title="Customer pool",
    )


@pool.command()
@click.argument("customer_id", type=int)
@click.option("--for", "user", help="Claim for this user (managers and the system; default: you).")
@json_option
def claim(customer_id: int, user: str | None, as_json: bool) -> None:
    """Become the owner of a pool customer (refused if someone else already is)."""
    customer = get_crm().pool.claim(customer_id, user=user, actor=get_actor())
    if as_json:
        print_json(to_dict(customer))
    else:
        get_console().print(
            f"Customer {customer_id} ({safe_text(customer.name)}) is now owned by "
            f"{safe_text(customer.owner)}."
        )


@pool.command()
@click.argument("customer_id", type=int)
def release(customer_id: int) -> None:
    """Put an owned customer back into the pool (managers)."""
    get_crm().pool.release(customer_id, actor=get_actor())
    get_console().print(f"Customer {customer_id} is back in the pool.")


def _handover(result: Any, as_json: bool, what: str) -> None:
    if as_json:
        print_json({"customer_ids": list(result.customer_ids), "dry_run": result.dry_run})
        return
    verb = "Dry run: would move" if result.dry_run else "Moved"
    tail = " Nothing was changed." if result.dry_run else ""
    get_console().print(f"{verb} {result.count} customer(s) {what}.{tail}")


@pool.command()
@click.option("--days", type=int, help="Uncontacted for this many days (default [pool]).")
@click.option("--dry-run", is_flag=True, help="List who would go back; change nothing.")
@json_option
def recycle(days: int | None, dry_run: bool, as_json: bool) -> None:
    """Put owned customers with no interaction in --days back into the pool (idempotent)."""
    result = get_crm().pool.recycle(days, actor=get_actor(), dry_run=dry_run)
    _handover(result, as_json, "back into the pool")


@click.command("reassign")
@click.option("--from", "from_owner", required=True, help="The owner handing over (leaving).")
@click.option("--to", "to_owner", required=True, help="The owner taking over.")
@click.option("--dry-run", is_flag=True, help="Count who would move; change nothing.")
@yes_option
@json_option
def reassign(from_owner: str, to_owner: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Hand every customer of one owner to another, in one audited transaction."""
    crm = get_crm()
    if not dry_run:
        confirm(f"Give every customer of {from_owner!r} to {to_owner!r}?", yes=yes)
    result = crm.pool.reassign(from_owner, to_owner, actor=get_actor(), dry_run=dry_run)
    _handover(result, as_json, f"from {safe_text(from_owner)} to {safe_text(to_owner)}")


__all__ = ["pool", "reassign"]
