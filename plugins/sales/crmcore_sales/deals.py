"""Opportunities (deals): add, update, read, list, history.

Every function takes the CRM first and is declared with ``@requires``: an
agent adds, reads and changes deals of customers they may see (their own,
granted ones, and accounts whose team they are on, through core's access
control). Each write runs in one unit of work (``ctx=`` joins an open one):
the deal, its history, the audit entry and the ``sales.*`` event commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, update

from crmcore import CRM, CustomerKind, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.unit_of_work import acting_user
from crmcore_sales import resolvers, store
from crmcore_sales.entities import Deal, HistoryEntry
from crmcore_sales.settings import CATEGORIES, Pipeline, settings_of
from crmcore_sales.tables import deal_contacts_table, deal_items_table, deals_table
from crmcore_sales.validation import (
    bad,
    choice,
    currency,
    day,
    identifier,
    integer,
    moment,
    money,
    text,
)

#: Fields ``add_deal`` accepts.
FIELDS = (
    "customer_id",
    "title",
    "pipeline",
    "stage",
    "amount",
    "currency",
    "expected_close",
    "probability",
    "category",
    "owner",
    "team",
    "channel",
    "campaign_id",
    "next_step",
    "notes",
    "contacts",
    "items",
)
#: Fields ``update_deal`` may change (the stage moves through :mod:`crmcore_sales.stages`).
UPDATABLE = (
    "title",
    "amount",
    "currency",
    "expected_close",
    "probability",
    "category",
    "owner",
    "team",
    "channel",
    "campaign_id",
    "next_step",
    "notes",
    "contacts",
    "items",
)
_MAX_LINES = 500


def _data_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> list[int]:
    data = arguments.get("data")
    cid = data.get("customer_id") if isinstance(data, Mapping) else None
    return [cid] if isinstance(cid, int) and not isinstance(cid, bool) else []


def _unknown(data: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    if not isinstance(data, Mapping):
        bad(what, f"expected a mapping of fields, got {type(data).__name__}", data)
    for key in data:
        if key not in allowed:
            bad(str(key), f"is not a field of a deal ({what} accepts: {', '.join(allowed)})")


def _items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple) or len(value) > _MAX_LINES:
        bad("items", f"expected a list of at most {_MAX_LINES} lines", value)
    lines = []
    for n, item in enumerate(value):
        if not isinstance(item, Mapping):
            bad(f"items[{n}]", "expected a mapping with product, quantity, unit_price", item)
        lines.append(
            {
                "product": text(f"items[{n}].product", item.get("product"), 200, required=True),
                "quantity": integer(f"items[{n}].quantity", item.get("quantity", 1), 1, 10**9),
                "unit_price": money(f"items[{n}].unit_price", item.get("unit_price")),
            }
        )
    return lines


def _contacts(uow: UnitOfWork, customer_id: int, value: Any) -> list[dict[str, Any]]:
    """Contact persons of the deal: current contacts of the organisation, roles from accounts."""
    if not isinstance(value, list | tuple) or len(value) > _MAX_LINES:
        bad("contacts", f"expected a list of at most {_MAX_LINES} contacts", value)
    if not value:
        return []
    customer = uow.crm.customers.get(customer_id, ctx=uow)
    if customer.kind is not CustomerKind.ORGANIZATION:
        bad("contacts", f"customer {customer_id} is a person; contacts belong to organisations")
    current = {c.person_id: c for c in uow.crm.accounts.contacts(customer_id, ctx=uow)}
    roles = uow.crm.config.accounts.contact_roles
    found: list[dict[str, Any]] = []
    for n, given in enumerate(value):
        entry = given if isinstance(given, Mapping) else {"contact_id": given}
        person = identifier(f"contacts[{n}].contact_id", entry.get("contact_id"))
        if person not in current:
            bad(
                f"contacts[{n}].contact_id",
                f"{person} is not a current contact of customer {customer_id}",
                person,
            )
        if person in {f["contact_id"] for f in found}:
            bad(f"contacts[{n}].contact_id", f"{person} is listed twice", person)
        role = entry.get("role", current[person].role)
        if role is not None:
            choice(f"contacts[{n}].role", role, roles)
        found.append({"contact_id": person, "role": role})
    return found


def _pipeline(crm: CRM, name: Any) -> Pipeline:
    pipelines = settings_of(crm).pipelines
    return pipelines[choice("pipeline", name, list(pipelines))]


def _write_lines(
    uow: UnitOfWork, deal_id: int, contacts: list[dict[str, Any]] | None, items: Any
) -> None:
    metadata = uow.crm.metadata
    if contacts is not None:
        table = deal_contacts_table(metadata)
        uow.connection.execute(delete(table).where(table.c.deal_id == deal_id))
        if contacts:
            uow.connection.execute(insert(table), [{"deal_id": deal_id, **c} for c in contacts])
    if items is not None:
        table = deal_items_table(metadata)
        uow.connection.execute(delete(table).where(table.c.deal_id == deal_id))
        if items:
            uow.connection.execute(insert(table), [{"deal_id": deal_id, **i} for i in items])


def _amount(data: Mapping[str, Any], items: list[dict[str, Any]] | None) -> Decimal | None:
    if "amount" in data:
        return money("amount", data["amount"])
    if items is not None:
        return sum((i["unit_price"] * i["quantity"] for i in items), Decimal(0))
    return None


@requires(Action.WRITE, customer=_data_customer)
def add_deal(
    crm: CRM,
    data: Mapping[str, Any],
    *,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Deal:
    """Add an opportunity; return it with its id.

    ``data`` holds ``customer_id``, ``title`` and ``expected_close``
    (required), ``amount`` (Decimal; default the sum of ``items``, else 0),
    ``currency`` (default the configured one), ``pipeline`` (default the
    configured one), ``stage`` (default its first), ``probability`` (default
    the stage's), ``category`` (default the stage's), ``owner`` (default the
    acting user), ``team``, ``channel``, ``campaign_id``, ``next_step``,
    ``notes``, ``contacts`` (``[{"contact_id", "role"}]``: current contacts of
    the organisation) and ``items`` (``[{"product", "quantity",
    "unit_price"}]``). ``at`` back-dates the creation (imports, the demo).
    Raises ValidationError naming the field; nothing is stored then.
    """
    _unknown(data, FIELDS, "add_deal")
    settings = settings_of(crm)
    customer_id = identifier("customer_id", data.get("customer_id"))
    title = text("title", data.get("title"), 200, required=True)
    pipeline = _pipeline(crm, data.get("pipeline", settings.default_pipeline))
    stage = pipeline.stages[0] if "stage" not in data else None
    if stage is None:
        stage = pipeline.stage(choice("stage", data["stage"], pipeline.stage_names))
    items = _items(data["items"]) if "items" in data else None
    amount = _amount(data, items) or Decimal(0)
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "title": title,
        "pipeline": pipeline.name,
        "stage": stage.name,
        "status": "open",
        "probability": integer("probability", data.get("probability", stage.probability), 0, 100),
        "category": choice("category", data.get("category", stage.category), CATEGORIES),
        "amount": amount,
        "currency": currency("currency", data.get("currency", settings.currency)),
        "expected_close": day("expected_close", data.get("expected_close")),
        "team": text("team", data.get("team"), 200),
        "channel": text("channel", data.get("channel"), 40),
        "campaign_id": text("campaign_id", data.get("campaign_id"), 100),
        "next_step": text("next_step", data.get("next_step"), 2000),
        "notes": text("notes", data.get("notes"), 100_000),
        "reopen_count": 0,
    }
    with crm.unit_of_work(actor, ctx) as uow:
        when = moment(uow, at)
        owner = text("owner", data.get("owner", acting_user(uow)), 200)
        crm.customers.get(customer_id, ctx=uow)  # NotFoundError for an unknown customer
        contacts = _contacts(uow, customer_id, data.get("contacts", []))
        values.update(
            owner=owner, created_at=when, updated_at=when, stage_changed_at=when, closed_at=None
        )
        deals = deals_table(crm.metadata)
        inserted = uow.connection.execute(insert(deals).values(values)).inserted_primary_key
        assert inserted is not None
        deal_id = int(inserted[0])
        _write_lines(uow, deal_id, contacts, items)
        store.write_history(uow, deal_id, [(f, None, values[f]) for f in store.TRACKED], when)
        store.audit(uow, "deal_add", "deal", deal_id, customer_id, pipeline=pipeline.name)
        uow.emit("sales.deal_added", customer_id, {"deal_id": deal_id, "stage": stage.name})
        return store.load_deal(uow, deal_id)


@requires(Action.WRITE, customer=resolvers.deal_customer)
def update_deal(
    crm: CRM,
    deal_id: int,
    changes: Mapping[str, Any],
    *,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Deal:
    """Change fields of a deal (:data:`UPDATABLE`); every tracked change goes to the history.

    ``items`` replaces the lines (and, without ``amount``, sets the amount to
    their sum); ``contacts`` replaces the contacts. Stage moves are
    :func:`crmcore_sales.stages.move_deal`. A closed deal's amount, currency and
    probability are fixed (reopen it first).
    """
    _unknown(changes, UPDATABLE, "update_deal")
    with crm.unit_of_work(actor, ctx) as uow:
        deal = store.load_deal(uow, deal_id, lock=True)
        when = moment(uow, at)
        if when < deal.updated_at:
            bad("at", f"{when.isoformat()} is before the deal's last change", at)
        items = _items(changes["items"]) if "items" in changes else None
        values: dict[str, Any] = {}
        amount = _amount(changes, items)
        if amount is not None:
            values["amount"] = amount
        checks: dict[str, Callable[[Any], Any]] = {
            "title": lambda v: text("title", v, 200, required=True),
            "currency": lambda v: currency("currency", v),
            "expected_close": lambda v: day("expected_close", v),
            "probability": lambda v: integer("probability", v, 0, 100),
            "category": lambda v: choice("category", v, CATEGORIES),
            "owner": lambda v: text("owner", v, 200),
            "team": lambda v: text("team", v, 200),
            "channel": lambda v: text("channel", v, 40),
            "campaign_id": lambda v: text("campaign_id", v, 100),
            "next_step": lambda v: text("next_step", v, 2000),
            "notes": lambda v: text("notes", v, 100_000),
        }
        for name, check in checks.items():
            if name in changes:
                values[name] = check(changes[name])
        if deal.status != "open":
            for frozen_field in ("amount", "currency", "probability", "category"):
                if frozen_field in values and values[frozen_field] != getattr(deal, frozen_field):
                    bad(frozen_field, f"deal {deal.id} is {deal.status}; reopen it to change it")
        contacts = None
        if "contacts" in changes:
            if deal.customer_id is None:
                bad("contacts", f"deal {deal.id} belongs to an erased customer")
            contacts = _contacts(uow, deal.customer_id, changes["contacts"])
        values["updated_at"] = when
        deals = deals_table(crm.metadata)
        uow.connection.execute(update(deals).where(deals.c.id == deal.id).values(values))
        _write_lines(uow, deal.id, contacts, items)
        changed = store.write_history(
            uow,
            deal.id,
            [(f, getattr(deal, f), values[f]) for f in store.TRACKED if f in values],
            when,
        )
        store.audit(
            uow,
            "deal_update",
            "deal",
            deal.id,
            deal.customer_id,
            fields=sorted(k for k in changes),
            tracked=[c["field"] for c in changed],
        )
        return store.load_deal(uow, deal.id)


@requires(Action.READ, customer=resolvers.deal_customer)
def get_deal(crm: CRM, deal_id: int, *, ctx: UnitOfWork | None = None) -> Deal:
    """The deal ``deal_id`` with its contacts, items, last activity and stale flag."""
    with crm.reading(ctx) as uow:
        return store.load_deal(uow, deal_id)


@requires(Action.READ, customer=resolvers.deal_customer)
def deal_history(crm: CRM, deal_id: int, *, ctx: UnitOfWork | None = None) -> list[HistoryEntry]:
    """Every recorded change of the deal (field, old, new, at, actor), oldest first."""
    with crm.reading(ctx) as uow:
        store.load_deal(uow, deal_id)
        return store.history_of(uow, deal_id)


@requires(Action.READ, scoped=True)
def list_deals(
    crm: CRM,
    *,
    customer_id: int | None = None,
    pipeline: str | None = None,
    status: str | None = None,
    stage: str | None = None,
    owner: str | None = None,
    stale: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    ctx: UnitOfWork | None = None,
) -> list[Deal]:
    """Deals of customers the acting user may read, newest first, filtered as given."""
    deals = deals_table(crm.metadata)
    query = store.deal_query(crm.metadata, crm.engine.dialect.name).where(
        crm.access.where(deals.c.customer_id)
    )
    if customer_id is not None:
        query = query.where(deals.c.customer_id == identifier("customer_id", customer_id))
    if pipeline is not None:
        query = query.where(deals.c.pipeline == _pipeline(crm, pipeline).name)
    if status is not None:
        query = query.where(deals.c.status == choice("status", status, ("open", "won", "lost")))
    if stage is not None:
        query = query.where(deals.c.stage == text("stage", stage, 40, required=True))
    if owner is not None:
        query = query.where(deals.c.owner == text("owner", owner, 200, required=True))
    limit = integer("limit", limit, 1, 10_000)
    offset = integer("offset", offset, 0, 2**62)
    with crm.reading(ctx) as uow:
        if stale is not None:
            condition = store.stale_condition(
                crm.metadata, crm.engine.dialect.name, settings_of(crm), uow.now
            )
            query = query.where(condition if stale else ~condition)
        rows = uow.connection.execute(
            query.order_by(deals.c.id.desc()).limit(limit).offset(offset)
        ).all()
        return store.deals_from_rows(uow, rows)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
