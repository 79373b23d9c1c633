"""``crm customers add|show|list|update|delete|merge|duplicates|import|export|erase``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.cli.duplicates import duplicates_command, rekey_command
from crmcore.cli.files import atomic_output, raw_cells_option, terminal_safe
from crmcore.cli.listing import iter_pages, print_listing
from crmcore.cli.merge import merge_command
from crmcore.cli.output import safe_json, safe_line, safe_text
from crmcore.cli.parsing import parse_json_object, parse_pairs
from crmcore.cli.pool import reassign
from crmcore.cli.transfer import import_command, purge_rejects_command
from crmcore.model.entities import Channel, Customer, CustomerKind, Stage
from crmcore.model.pagination import Page
from crmcore.model.serialization import to_dict

LIST_COLUMNS = ["id", "name", "kind", "email", "phone", "stage", "owner", "tags"]


@click.group()
def customers() -> None:
    """Customers: people and organisations."""


def _row(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**data, "tags": ", ".join(data.get("tags", []))}


@customers.command()
@click.option("--name", required=True, help="Person's full name or organisation's name.")
@click.option("--kind", type=click.Choice([k.value for k in CustomerKind]), default="person")
@click.option("--email")
@click.option("--phone")
@click.option("--address")
@click.option("--owner", help="The responsible salesperson or account manager.")
@click.option("--company-name")
@click.option("--industry")
@click.option("--stage", type=click.Choice([s.value for s in Stage]), default="prospect")
@click.option("--source-channel", type=click.Choice([c.value for c in Channel]))
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--attr", "attrs_", multiple=True, metavar="KEY=VALUE", help="Custom attribute.")
@click.option("--data", metavar="JSON", help="Any other fields, as a JSON object.")
@json_option
def add(
    as_json: bool, tags: tuple[str, ...], attrs_: tuple[str, ...], data: str | None, **fields: Any
) -> None:
    """Register a customer (refused when the email, phone or organisation already exists)."""
    record: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    record.update(parse_json_object(data, "--data") or {})
    if tags:
        record["tags"] = list(tags)
    if attrs_:
        record["attributes"] = {**record.get("attributes", {}), **parse_pairs(attrs_, "--attr")}
    customer = get_crm().customers.create(record, actor=get_actor())
    if as_json:
        print_json(to_dict(customer))
    else:
        get_console().print(f"Created customer {customer.id}: {safe_text(customer.name)}")


@customers.command()
@click.argument("customer_id", type=int)
@json_option
def show(customer_id: int, as_json: bool) -> None:
    """The 360° view of a customer: fields, recent interactions, lifecycle, plugin sections."""
    profile = get_crm().customers.profile(customer_id)
    if as_json:
        print_json(profile)
        return
    print_record(profile["customer"], title=f"Customer {customer_id}")
    print_table(
        profile["recent_interactions"],
        ["occurred_at", "kind", "channel", "amount", "currency", "text"],
        title=f"Recent interactions ({profile['interaction_count']} in all)",
    )
    print_table(profile["lifecycle"], ["at", "from_stage", "to_stage", "reason"], title="Lifecycle")
    for plugin, section in profile["plugins"].items():
        print_record(section, title=f"{plugin}")


@customers.command("list")
@click.option("--name", help="Substring of the name (case- and accent-insensitive).")
@click.option("--email")
@click.option("--phone")
@click.option("--tag")
@click.option("--stage", type=click.Choice([s.value for s in Stage]))
@click.option("--owner")
@click.option("--kind", type=click.Choice([k.value for k in CustomerKind]))
@click.option(
    "--attr", "attrs_", multiple=True, metavar="KEY=VALUE", help="Custom attribute equals."
)
@click.option("--sort", default="id", show_default=True, help="Field, '-' prefix for descending.")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def list_customers(
    as_json: bool, attrs_: tuple[str, ...], limit: int, offset: int, **filters: Any
) -> None:
    """Search and list customers (any --limit: fetched and printed a page at a time)."""
    service = get_crm().customers
    attributes = parse_pairs(attrs_, "--attr")

    def fetch(size: int, at: int) -> Page[Customer]:
        return service.search(attributes=attributes, limit=size, offset=at, **filters)

    print_listing(
        iter_pages(fetch, limit, offset),
        as_json=as_json,
        limit=limit,
        offset=offset,
        row=to_dict,
        columns=LIST_COLUMNS,
        title="Customers",
        caption=lambda shown, total: (
            f"{offset + 1}-{offset + shown} of {total}" if shown else f"0 of {total}"
        ),
        table_row=_row,
    )


@customers.command()
@click.argument("customer_id", type=int)
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Field to change.")
@click.option("--attr", "attrs_", multiple=True, metavar="KEY=VALUE", help="Custom attribute.")
@click.option("--tag", "tags", multiple=True, help="Replace the tags with these (repeatable).")
@json_option
def update(
    customer_id: int,
    sets: tuple[str, ...],
    attrs_: tuple[str, ...],
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change some fields of a customer (stage changes go through `crm lifecycle move`)."""
    changes = parse_pairs(sets, "--set")
    for key, value in list(changes.items()):
        # Values of plain string fields stay strings even when they look like JSON numbers.
        if key in {"phone", "name", "email", "owner", "address", "company_name", "industry"}:
            changes[key] = value if isinstance(value, str) else json.dumps(value)
    if attrs_:
        changes["attributes"] = parse_pairs(attrs_, "--attr")
    if tags:
        changes["tags"] = list(tags)
    change = get_crm().customers.update(customer_id, changes, actor=get_actor())
    if as_json:
        print_json({"changed": list(change.changed), "customer": to_dict(change.after)})
    elif change.changed:
        changed = safe_text(", ".join(change.changed))
        get_console().print(f"Updated customer {customer_id}: {changed}")
    else:
        get_console().print(f"Customer {customer_id} unchanged.")


@customers.command()
@click.argument("customer_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show who would be deleted; change nothing.")
def delete(customer_id: int, yes: bool, dry_run: bool) -> None:
    """Delete a customer with their interactions and history."""
    if dry_run:
        crm = get_crm()
        customer = crm.customers.delete(customer_id, actor=get_actor(), dry_run=True)
        count = crm.interactions.timeline(customer_id, limit=1).total
        get_console().print(
            f"Dry run: would delete customer {customer_id}: {safe_text(customer.name)}, "
            f"with {count} interaction(s) and their lifecycle history. Nothing was changed."
        )
        return
    if not yes:
        click.confirm(f"Delete customer {customer_id} and all their data?", abort=True)
    customer = get_crm().customers.delete(customer_id, actor=get_actor())
    get_console().print(f"Deleted customer {customer_id}: {safe_text(customer.name)}")


@customers.command()
@click.argument("customer_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--vacuum",
    type=click.Choice(["auto", "full", "none"]),
    default="auto",
    show_default=True,
    help="After the erasure: auto = VACUUM (PostgreSQL) / WAL checkpoint (SQLite); "
    "full = rewrite every table (VACUUM FULL: no old version left in any table file; "
    "locks the tables while it runs); none = leave it to autovacuum.",
)
@click.option("--dry-run", is_flag=True, help="Check the erasure would succeed; change nothing.")
def erase(customer_id: int, yes: bool, vacuum: str, dry_run: bool) -> None:
    """Right to erasure: anonymise a customer in core and every plugin.

    Rejects files of earlier imports may still hold the customer's rows:
    see `crm customers purge-rejects`.
    """
    if dry_run:
        crm = get_crm()
        customer = crm.customers.get(customer_id)
        crm.customers.erase(customer_id, actor=get_actor(), dry_run=True)
        get_console().print(
            f"Dry run: would erase the personal data of customer {customer_id}: "
            f"{safe_text(customer.name)} (in core and every plugin). Nothing was changed."
        )
        return
    if not yes:
        click.confirm(f"Irreversibly erase customer {customer_id}'s personal data?", abort=True)
    get_crm().customers.erase(customer_id, actor=get_actor(), vacuum=vacuum)
    get_console().print(f"Erased customer {customer_id}.")


customers.add_command(import_command("customers", default_batch=500))
customers.add_command(purge_rejects_command)
customers.add_command(merge_command)
customers.add_command(duplicates_command)
customers.add_command(rekey_command)
customers.add_command(reassign)


@customers.command()
@click.argument("customer_id", type=int, required=False)
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
    """Export all customers (CSV/JSONL), or with CUSTOMER_ID everything held on one (JSON).

    CSV text cells starting with = + - @ (tab, CR) get a leading ' so spreadsheets
    do not run them as formulas (docs/security.md); --raw-cells turns that off.
    """
    crm = get_crm()
    if customer_id is not None:
        data = safe_json(crm.customers.export(customer_id))  # exact JSON, terminal-safe
        if output:
            with atomic_output(output) as out:
                out.write(data + "\n")
        else:
            click.echo(data)
        return
    from crmcore.io.exports import export_customers

    if output is None:
        export_customers(crm, terminal_safe(sys.stdout), format=fmt, raw_cells=raw_cells)
        return
    with atomic_output(output) as out:
        count = export_customers(crm, out, format=fmt, raw_cells=raw_cells)
    click.echo(safe_line(f"Exported {count} customers to {output}"), err=True)
