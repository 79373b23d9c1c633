"""Contracts, payment schedules and payments received.

A won deal may become a contract (value, start, end, renewal date, payment
terms) with a schedule of instalments. A payment (amount, day received,
reference) is idempotent by its reference: recording the same reference
again returns the stored payment and records nothing; the same reference
with another contract, amount or day is a ConflictError. Each payment
records one ``purchase`` interaction through core
(``crm.interactions.record(..., ctx=uow)``, ``source="sales"``,
``external_id="payment:<reference>"``) in the same unit of work, so RFM,
lifetime value, loyalty points and the report count the revenue exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import insert, select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.errors import ConflictError, NotFoundError
from crmcore.scoping import enforce_declared, requires
from crmcore_sales import resolvers, store
from crmcore_sales.ledger import outstanding_query, to_money
from crmcore_sales.tables import contracts_table, instalments_table, payments_table
from crmcore_sales.validation import bad, currency, day, identifier, integer, money, text

#: Fields ``create_contract`` accepts.
CONTRACT_FIELDS = (
    "value",
    "currency",
    "start_date",
    "end_date",
    "renewal_date",
    "payment_terms_days",
    "instalments",
    "instalment_count",
)
_MAX_INSTALMENTS = 600


def _add_months(start: date, months: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    first = date(start.year + year, month + 1, 1)
    last = (date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1)).day
    return first.replace(day=min(start.day, last))


def equal_schedule(value: Decimal, first_due: date, count: int) -> list[dict[str, Any]]:
    """``count`` monthly instalments from ``first_due``, equal to the cent (the last: the rest)."""
    share = (value / count).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    amounts = [share] * (count - 1) + [value - share * (count - 1)]
    return [
        {"seq": n + 1, "due_date": _add_months(first_due, n), "amount": amount}
        for n, amount in enumerate(amounts)
    ]


def _schedule(data: Mapping[str, Any], value: Decimal, first_due: date) -> list[dict[str, Any]]:
    if "instalments" in data and "instalment_count" in data:
        bad("instalments", "give either instalments or instalment_count, not both")
    if "instalments" not in data:
        count = integer("instalment_count", data.get("instalment_count", 1), 1, _MAX_INSTALMENTS)
        return equal_schedule(value, first_due, count)
    given = data["instalments"]
    if not isinstance(given, list | tuple) or not 1 <= len(given) <= _MAX_INSTALMENTS:
        bad("instalments", f"expected a list of 1 to {_MAX_INSTALMENTS} instalments", given)
    rows: list[dict[str, Any]] = []
    for n, item in enumerate(given):
        if not isinstance(item, Mapping):
            bad(f"instalments[{n}]", "expected a mapping with due_date and amount", item)
        rows.append(
            {
                "seq": n + 1,
                "due_date": day(f"instalments[{n}].due_date", item.get("due_date")),
                "amount": money(f"instalments[{n}].amount", item.get("amount"), positive=True),
            }
        )
    total = sum((r["amount"] for r in rows), Decimal(0))
    if total != value:
        bad("instalments", f"the instalments add up to {total}, not the contract value {value}")
    return rows


@requires(Action.WRITE, customer=resolvers.deal_customer)
def create_contract(
    crm: CRM,
    deal_id: int,
    data: Mapping[str, Any],
    *,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Turn a won deal into a contract with its payment schedule; return the contract.

    ``data``: ``start_date`` and ``end_date`` (required), ``value`` and
    ``currency`` (default the deal's), ``renewal_date`` (default
    ``end_date``), ``payment_terms_days`` (default 30), and either
    ``instalments`` (``[{"due_date", "amount"}]`` adding up to the value) or
    ``instalment_count`` (equal monthly instalments, the first due
    ``payment_terms_days`` after the start; default one).
    """
    if not isinstance(data, Mapping):
        bad("data", "expected a mapping of contract fields", data)
    for key in data:
        if key not in CONTRACT_FIELDS:
            bad(str(key), f"is not a field of a contract (accepted: {', '.join(CONTRACT_FIELDS)})")
    start = day("start_date", data.get("start_date"))
    end = day("end_date", data.get("end_date"))
    if end < start:
        bad("end_date", f"{end} is before start_date {start}", end)
    renewal = day("renewal_date", data["renewal_date"]) if data.get("renewal_date") else end
    terms = integer("payment_terms_days", data.get("payment_terms_days", 30), 0, 3650)
    with crm.unit_of_work(actor, ctx) as uow:
        deal = store.load_deal(uow, deal_id, lock=True)
        if deal.status != "won":
            bad("deal_id", f"deal {deal.id} is {deal.status}; only won deals become contracts")
        value = money("value", data.get("value", deal.amount), positive=True)
        code = currency("currency", data.get("currency", deal.currency))
        schedule = _schedule(data, value, start + timedelta(days=terms))
        contracts = contracts_table(crm.metadata)
        inserted = uow.connection.execute(
            insert(contracts).values(
                deal_id=deal.id,
                customer_id=deal.customer_id,
                value=value,
                currency=code,
                start_date=start,
                end_date=end,
                renewal_date=renewal,
                payment_terms_days=terms,
                owner=deal.owner,
                created_at=uow.now,
            )
        ).inserted_primary_key
        assert inserted is not None
        contract_id = int(inserted[0])
        uow.connection.execute(
            insert(instalments_table(crm.metadata)),
            [{"contract_id": contract_id, "customer_id": deal.customer_id, **r} for r in schedule],
        )
        store.audit(
            uow, "contract_create", "contract", contract_id, deal.customer_id, deal_id=deal.id
        )
        uow.emit("sales.contract_created", deal.customer_id, {"contract_id": contract_id})
        return _contract(uow, contract_id)


def _contract(uow: UnitOfWork, contract_id: int) -> dict[str, Any]:
    crm = uow.crm
    contracts, payments = contracts_table(crm.metadata), payments_table(crm.metadata)
    row = uow.connection.execute(select(contracts).where(contracts.c.id == contract_id)).first()
    if row is None:
        raise NotFoundError(f"contract {contract_id} does not exist")
    due = outstanding_query(crm.metadata, uow.now.date()).subquery()
    lines = uow.connection.execute(
        select(due).where(due.c.contract_id == contract_id).order_by(due.c.seq)
    ).all()
    paid = uow.connection.execute(
        select(payments).where(payments.c.contract_id == contract_id).order_by(payments.c.id)
    ).all()
    return {
        "id": row.id,
        "deal_id": row.deal_id,
        "customer_id": row.customer_id,
        "value": str(row.value),
        "currency": row.currency,
        "start_date": row.start_date.isoformat(),
        "end_date": row.end_date.isoformat(),
        "renewal_date": None if row.renewal_date is None else row.renewal_date.isoformat(),
        "payment_terms_days": row.payment_terms_days,
        "owner": row.owner,
        "outstanding": str(to_money(sum(int(r.outstanding) for r in lines))),
        "instalments": [
            {
                "id": r.id,
                "seq": r.seq,
                "due_date": r.due_date.isoformat(),
                "amount": str(to_money(r.amount)),
                "outstanding": str(to_money(r.outstanding)),
            }
            for r in lines
        ],
        "payments": [payment_json(p) for p in paid],
    }


def payment_json(row: Any) -> dict[str, Any]:
    """A payment row, JSON-safe."""
    return {
        "id": row.id,
        "contract_id": row.contract_id,
        "customer_id": row.customer_id,
        "amount": str(row.amount),
        "currency": row.currency,
        "received_on": row.received_on.isoformat(),
        "reference": row.reference,
        "interaction_id": row.interaction_id,
    }


@requires(Action.READ, customer=resolvers.contract_customer)
def get_contract(crm: CRM, contract_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """The contract with its instalments (outstanding today) and payments."""
    with crm.reading(ctx) as uow:
        return _contract(uow, identifier("contract_id", contract_id))


@requires(Action.READ, scoped=True)
def list_contracts(
    crm: CRM, *, customer_id: int | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Contracts of customers the acting user may read (of one customer when given)."""
    contracts = contracts_table(crm.metadata)
    query = select(contracts.c.id).where(crm.access.where(contracts.c.customer_id))
    if customer_id is not None:
        query = query.where(contracts.c.customer_id == identifier("customer_id", customer_id))
    with crm.reading(ctx) as uow:
        ids = list(uow.connection.execute(query.order_by(contracts.c.id)).scalars())
        return [_contract(uow, cid) for cid in ids]


@requires(Action.READ, scoped=True)
def list_payments(
    crm: CRM,
    *,
    contract_id: int | None = None,
    customer_id: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Payments on contracts of customers the acting user may read, oldest first."""
    payments = payments_table(crm.metadata)
    query = select(payments).where(crm.access.where(payments.c.customer_id))
    if contract_id is not None:
        query = query.where(payments.c.contract_id == identifier("contract_id", contract_id))
    if customer_id is not None:
        query = query.where(payments.c.customer_id == identifier("customer_id", customer_id))
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(query.order_by(payments.c.id)).all()
    return [payment_json(r) for r in rows]


def _same(row: Any, contract_id: int, amount: Decimal, received: date) -> bool:
    return bool(
        row.contract_id == contract_id and row.amount == amount and row.received_on == received
    )


@requires(Action.WRITE, customer=resolvers.contract_customer)
def record_payment(
    crm: CRM,
    contract_id: int,
    amount: Any,
    *,
    reference: str,
    received_on: Any = None,
    channel: str = "other",
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Record a payment on a contract, once per ``reference``; return the payment.

    ``received_on`` defaults to today (UTC) and may not be in the future or
    before the contract starts. The amount may not exceed what is still
    outstanding on the contract. The purchase interaction is recorded at
    midnight UTC of ``received_on`` (or now, for a payment received today).
    """
    ref = text("reference", reference, 200, required=True)
    paid = money("amount", amount, positive=True)
    contracts, payments = contracts_table(crm.metadata), payments_table(crm.metadata)
    with crm.unit_of_work(actor, ctx) as uow:
        today = uow.now.date()
        received = today if received_on is None else day("received_on", received_on)
        if received > today:
            bad("received_on", f"{received} is in the future", received_on)
        query = select(contracts).where(contracts.c.id == identifier("contract_id", contract_id))
        if uow.connection.dialect.name == "postgresql":
            query = query.with_for_update()
        contract = uow.connection.execute(query).first()
        if contract is None:
            raise NotFoundError(f"contract {contract_id} does not exist")
        stored = uow.connection.execute(select(payments).where(payments.c.reference == ref)).first()
        if stored is not None:
            if _same(stored, contract.id, paid, received):
                return payment_json(stored)
            raise ConflictError(
                f"reference: payment {ref!r} is already recorded with another contract, "
                "amount or day"
            )
        if contract.customer_id is None:
            bad("contract_id", f"contract {contract.id} belongs to an erased customer")
        if received < contract.start_date:
            bad("received_on", f"{received} is before the contract starts ({contract.start_date})")
        owed = _contract(uow, contract.id)
        if paid > Decimal(owed["outstanding"]):
            bad("amount", f"{paid} exceeds the {owed['outstanding']} outstanding", amount)
        occurred = uow.now if received == today else datetime.combine(received, time(), UTC)
        interaction = crm.interactions.record(
            {
                "customer_id": contract.customer_id,
                "kind": "purchase",
                "channel": channel,
                "occurred_at": occurred,
                "amount": paid,
                "currency": contract.currency,
                "source": "sales",
                "external_id": f"payment:{ref}",
                "payload": {"contract_id": contract.id},
            },
            ctx=uow,
        )
        inserted = uow.connection.execute(
            insert(payments).values(
                contract_id=contract.id,
                customer_id=contract.customer_id,
                amount=paid,
                currency=contract.currency,
                received_on=received,
                reference=ref,
                interaction_id=interaction.id,
                recorded_at=uow.now,
            )
        ).inserted_primary_key
        assert inserted is not None
        payment_id = int(inserted[0])
        store.audit(
            uow, "payment", "payment", payment_id, contract.customer_id, contract_id=contract.id
        )
        uow.emit(
            "sales.payment_received",
            contract.customer_id,
            {"payment_id": payment_id, "contract_id": contract.id, "amount": str(paid)},
        )
        row = uow.connection.execute(select(payments).where(payments.c.id == payment_id)).one()
        return payment_json(row)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
