"""``crm sales ...``: parse, call the service functions, print (tables, or JSON with ``--json``).

Deals and pipelines here; contracts, payments, receivables and the sweep in
:mod:`crmcore_sales.cli_collection`; forecast, funnel, targets and performance in
:mod:`crmcore_sales.cli_reports`.
"""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.errors import ValidationError
from crmcore_sales import deals, stages
from crmcore_sales.cli_collection import register_collection
from crmcore_sales.cli_reports import register_reports
from crmcore_sales.entities import Deal
from crmcore_sales.settings import settings_of

_LIST_COLUMNS = [
    "id",
    "customer_id",
    "title",
    "pipeline",
    "stage",
    "amount",
    "currency",
    "probability",
    "expected_close",
    "owner",
    "stale",
]
#: Fields of ``deals update --set`` whose values are whole numbers.
_INTEGER_FIELDS = frozenset({"probability"})


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


@sales.group("deals")
def deals_group() -> None:
    """Opportunities: add, show, list, update, move, win, lose, reopen."""


def _show(deal: Deal, as_json: bool, title: str) -> None:
    data = deal.to_json()
    if as_json:
        print_json(data)
    else:
        print_record(data, title=title)


def _contact(value: str) -> dict[str, Any]:
    person, _, role = value.partition(":")
    try:
        contact_id = int(person)
    except ValueError:
        raise ValidationError(
            f"--contact: expected ID or ID:ROLE, got {value!r}", field="--contact"
        ) from None
    return {"contact_id": contact_id, **({"role": role} if role else {})}


def _item(value: str) -> dict[str, Any]:
    parts = value.rsplit(":", 2)
    if len(parts) != 3:
        raise ValidationError(
            f"--item: expected PRODUCT:QUANTITY:UNIT_PRICE, got {value!r}", field="--item"
        )
    product, quantity, price = parts
    try:
        count = int(quantity)
    except ValueError:
        raise ValidationError(
            f"--item: quantity {quantity!r} is not a whole number", field="--item"
        ) from None
    return {"product": product, "quantity": count, "unit_price": price}


@deals_group.command("add")
@click.option("--customer", "customer_id", type=int, required=True, help="Customer id.")
@click.option("--title", required=True, help="What is being sold.")
@click.option("--close", "expected_close", required=True, help="Expected close date (YYYY-MM-DD).")
@click.option("--amount", help="Amount (default: the sum of the items, else 0).")
@click.option("--currency", help="ISO currency code (default: the configured one).")
@click.option("--pipeline", help="Pipeline (default: the configured one).")
@click.option("--stage", help="Open stage (default: the pipeline's first).")
@click.option("--probability", type=click.IntRange(0, 100), help="Percent (default: the stage's).")
@click.option("--owner", help="Salesperson (default: the acting user).")
@click.option("--team", help="Sales team.")
@click.option("--channel", help="Source channel.")
@click.option("--campaign", "campaign_id", help="Campaign id the deal came from.")
@click.option("--next-step", help="The next step agreed.")
@click.option("--notes", help="Free-text notes.")
@click.option("--contact", "contacts", multiple=True, help="Contact person ID[:ROLE] (repeatable).")
@click.option("--item", "items", multiple=True, help="PRODUCT:QUANTITY:UNIT_PRICE (repeatable).")
@json_option
def add_command(
    contacts: tuple[str, ...], items: tuple[str, ...], as_json: bool, **given: Any
) -> None:
    """Add a deal on a customer."""
    data = {k: v for k, v in given.items() if v is not None}
    if contacts:
        data["contacts"] = [_contact(c) for c in contacts]
    if items:
        data["items"] = [_item(i) for i in items]
    deal = deals.add_deal(get_crm(), data, actor=get_actor())
    _show(deal, as_json, f"deal {deal.id}")


@deals_group.command("show")
@click.argument("deal_id", metavar="ID", type=int)
@json_option
def show_command(deal_id: int, as_json: bool) -> None:
    """Show a deal and its history."""
    crm = get_crm()
    deal = deals.get_deal(crm, deal_id)
    history = [h.to_json() for h in deals.deal_history(crm, deal_id)]
    if as_json:
        print_json({**deal.to_json(), "history": history})
        return
    print_record(deal.to_json(), title=f"deal {deal.id}")
    print_table(history, ["at", "field", "old", "new", "actor"], title="history")


@deals_group.command("list")
@click.option("--customer", "customer_id", type=int, help="Only this customer's deals.")
@click.option("--pipeline", help="Only this pipeline.")
@click.option("--status", type=click.Choice(["open", "won", "lost"]), help="Only this status.")
@click.option("--stage", help="Only this stage.")
@click.option("--owner", help="Only this salesperson's deals.")
@click.option("--stale/--fresh", "stale", default=None, help="Only stale (or only fresh) deals.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def list_command(as_json: bool, **filters: Any) -> None:
    """List deals of customers you may read, newest first."""
    found = deals.list_deals(get_crm(), **filters)
    rows = [d.to_json() for d in found]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, _LIST_COLUMNS, title=f"deals ({len(rows)})")


def _changes(pairs: tuple[str, ...]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set: expected field=value, got {pair!r}", field="--set")
        name = key.strip()
        if name in _INTEGER_FIELDS:
            try:
                changes[name] = int(value)
            except ValueError:
                raise ValidationError(
                    f"{name}: {value!r} is not a whole number", field=name
                ) from None
        else:
            changes[name] = value if value != "" else None
    return changes


@deals_group.command("update")
@click.argument("deal_id", metavar="ID", type=int)
@click.option("--set", "pairs", multiple=True, required=True, help="field=value (repeatable).")
@json_option
def update_command(deal_id: int, pairs: tuple[str, ...], as_json: bool) -> None:
    """Change fields of a deal (amount, expected_close, probability, owner, notes ...)."""
    deal = deals.update_deal(get_crm(), deal_id, _changes(pairs), actor=get_actor())
    _show(deal, as_json, f"deal {deal.id}")


@deals_group.command("move")
@click.argument("deal_id", metavar="ID", type=int)
@click.argument("stage")
@click.option("--probability", type=click.IntRange(0, 100), help="Override the stage's default.")
@json_option
def move_command(deal_id: int, stage: str, probability: int | None, as_json: bool) -> None:
    """Move an open deal to another open STAGE of its pipeline."""
    deal = stages.move_deal(get_crm(), deal_id, stage, probability=probability, actor=get_actor())
    _show(deal, as_json, f"deal {deal.id}: {deal.stage}")


@deals_group.command("win")
@click.argument("deal_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="One of the pipeline's won reasons.")
@json_option
def win_command(deal_id: int, reason: str, as_json: bool) -> None:
    """Close a deal as won."""
    deal = stages.win_deal(get_crm(), deal_id, reason=reason, actor=get_actor())
    _show(deal, as_json, f"deal {deal.id}: won")


@deals_group.command("lose")
@click.argument("deal_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="One of the pipeline's lost reasons.")
@click.option("--competitor", help="Who won it instead.")
@json_option
def lose_command(deal_id: int, reason: str, competitor: str | None, as_json: bool) -> None:
    """Close a deal as lost."""
    deal = stages.lose_deal(
        get_crm(), deal_id, reason=reason, competitor=competitor, actor=get_actor()
    )
    _show(deal, as_json, f"deal {deal.id}: lost")


@deals_group.command("reopen")
@click.argument("deal_id", metavar="ID", type=int)
@click.option("--stage", help="Open stage to reopen at (default: the pipeline's last).")
@json_option
def reopen_command(deal_id: int, stage: str | None, as_json: bool) -> None:
    """Reopen a won or lost deal."""
    deal = stages.reopen_deal(get_crm(), deal_id, stage=stage, actor=get_actor())
    _show(deal, as_json, f"deal {deal.id}: reopened")


register_collection(sales)
register_reports(sales)
