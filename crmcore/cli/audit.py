"""``crm audit``: who changed what, and when."""

from __future__ import annotations

import json
from typing import Any

import click

from crmcore.audit import AuditEntry
from crmcore.cli.context import get_crm, json_option
from crmcore.cli.listing import iter_pages, print_listing
from crmcore.cli.parsing import parse_timestamp
from crmcore.model.pagination import Page


@click.command()
@click.option("--actor", "who", help="Only changes by this actor.")
@click.option("--action", help="e.g. customer.update, or a prefix with *: customer.*")
@click.option("--entity", help="customer, interaction, or a plugin's entity.")
@click.option("--customer", "customer_id", type=int, help="Only changes concerning this customer.")
@click.option("--since", help="From this date/time, inclusive (ISO 8601).")
@click.option("--until", help="Before this date/time, exclusive (ISO 8601).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def audit(
    who: str | None,
    action: str | None,
    entity: str | None,
    customer_id: int | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """The audit log, newest first (any --limit: fetched and printed a page at a time)."""
    service = get_crm().audit
    filters: dict[str, Any] = {
        "actor": who,
        "action": action,
        "entity": entity,
        "customer_id": customer_id,
        "since": parse_timestamp(since, "--since") if since else None,
        "until": parse_timestamp(until, "--until") if until else None,
    }

    def fetch(size: int, at: int) -> Page[AuditEntry]:
        return service.query(limit=size, offset=at, **filters)

    print_listing(
        iter_pages(fetch, limit, offset),
        as_json=as_json,
        limit=limit,
        offset=offset,
        row=_entry,
        columns=["at", "actor", "on_behalf_of", "action", "entity_id", "customer_id", "details"],
        title="Audit log",
        caption=lambda shown, total: f"{shown} of {total}",
        table_row=lambda r: {**r, "details": _shown(r["details"])},
    )


def _entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat() if e.at else None,
        "actor": e.actor,
        "on_behalf_of": e.on_behalf_of,
        "action": e.action,
        "entity": e.entity,
        "entity_id": e.entity_id,
        "customer_id": e.customer_id,
        "details": dict(e.details),
    }


def _shown(details: Any, width: int = 160) -> str:
    """Details for the table: batch entries' id lists are cut short (``--json`` has them all)."""
    text = json.dumps(details, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"
