"""Receivables ageing and the sweep of overdue instalments and contracts due for renewal.

**Ageing** as of a day ``D`` (default today, UTC): every instalment with an
outstanding amount as of ``D`` (payments received up to ``D`` settle the
instalments of their contract oldest first, see :mod:`crmcore_sales.ledger`)
falls into one bucket by its days past due, ``D - due_date``:

* ``current``: 0 or less (not yet due, or due on ``D``);
* ``1-30``, ``31-60``, ``61-90``: that many days past due, both ends included;
* ``90+``: 91 days or more.

Amounts are summed per currency, in SQL, with date comparisons only (``due_date
>= D - 30`` and ``< D`` is ``1-30``), so both backends agree to the day.

**Sweep** (:func:`sweep`, ``crm sales sweep``): in one transaction, marks and
reports every instalment past due (``due_date < today``) with an outstanding
amount that was not reported before, firing ``sales_instalments_overdue``, and
every contract whose renewal date is within ``renewal_notice_days`` (``today <=
renewal_date <= today + notice``, or already past and never reported), firing
``sales_contracts_due_for_renewal``. The hooks run inside the transaction; the
``sales.instalment_overdue`` and ``sales.contract_renewal_due`` events are
delivered after it commits, and :func:`sweep` returns what was fired once it has
committed. A second sweep finds nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, func, select, update

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_sales.ledger import outstanding_query, to_money
from crmcore_sales.settings import settings_of
from crmcore_sales.tables import contracts_table, instalments_table
from crmcore_sales.validation import currency, day, text

#: The ageing buckets, in order.
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def bucket_of(days_past_due: int) -> str:
    """The bucket of an instalment ``days_past_due`` days past its due date."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def _bucket_expression(due: Any, as_of: date) -> Any:
    return case(
        (due >= as_of, "current"),
        (due >= as_of - timedelta(days=30), "1-30"),
        (due >= as_of - timedelta(days=60), "31-60"),
        (due >= as_of - timedelta(days=90), "61-90"),
        else_="90+",
    )


@requires(Action.READ, scoped=True)
def ageing(
    crm: CRM,
    *,
    as_of: Any = None,
    owner: str | None = None,
    currency_code: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Outstanding receivables per currency and bucket as of ``as_of`` (customers one may read).

    Returns ``{"as_of", "buckets": [...], "currencies": {code: {bucket: amount,
    "total": amount}}}`` with amounts as Decimals; every bucket is present.
    """
    with crm.reading(ctx) as uow:
        day_of = uow.now.date() if as_of is None else day("as_of", as_of)
        due = outstanding_query(crm.metadata, day_of).subquery("owed")
        bucket = _bucket_expression(due.c.due_date, day_of).label("bucket")
        query = (
            select(due.c.currency, bucket, func.sum(due.c.outstanding).label("amount"))
            .where(due.c.outstanding > 0, crm.access.where(due.c.customer_id))
            .group_by(due.c.currency, bucket)
        )
        if owner is not None:
            query = query.where(due.c.owner == text("owner", owner, 200, required=True))
        if currency_code is not None:
            query = query.where(due.c.currency == currency("currency", currency_code))
        rows = uow.connection.execute(query).all()
    result: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        figures = result.setdefault(row.currency, {b: Decimal(0) for b in BUCKETS})
        figures[row.bucket] = to_money(row.amount)
    for figures in result.values():
        figures["total"] = sum((figures[b] for b in BUCKETS), Decimal(0))
    return {"as_of": day_of.isoformat(), "buckets": list(BUCKETS), "currencies": result}


def _overdue(uow: UnitOfWork, today: date) -> list[dict[str, Any]]:
    due = outstanding_query(uow.crm.metadata, today).subquery("owed")
    rows = uow.connection.execute(
        select(due)
        .where(due.c.outstanding > 0, due.c.due_date < today, due.c.overdue_notified_at.is_(None))
        .order_by(due.c.due_date, due.c.id)
    ).all()
    return [
        {
            "instalment_id": r.id,
            "contract_id": r.contract_id,
            "customer_id": r.customer_id,
            "due_date": r.due_date.isoformat(),
            "amount": str(to_money(r.amount)),
            "outstanding": str(to_money(r.outstanding)),
            "currency": r.currency,
            "days_overdue": (today - r.due_date).days,
            "owner": r.owner,
        }
        for r in rows
    ]


def _renewals(uow: UnitOfWork, today: date, notice: int) -> list[dict[str, Any]]:
    contracts = contracts_table(uow.crm.metadata)
    rows = uow.connection.execute(
        select(contracts)
        .where(
            contracts.c.renewal_date.is_not(None),
            contracts.c.renewal_date <= today + timedelta(days=notice),
            contracts.c.renewal_notified_at.is_(None),
            contracts.c.customer_id.is_not(None),
        )
        .order_by(contracts.c.renewal_date, contracts.c.id)
    ).all()
    return [
        {
            "contract_id": r.id,
            "deal_id": r.deal_id,
            "customer_id": r.customer_id,
            "renewal_date": r.renewal_date.isoformat(),
            "end_date": r.end_date.isoformat(),
            "value": str(r.value),
            "currency": r.currency,
            "owner": r.owner,
            "days_left": (r.renewal_date - today).days,
        }
        for r in rows
    ]


@requires(Action.WRITE)
def sweep(
    crm: CRM, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Report overdue instalments and contracts due for renewal, each once (see the module).

    A run over every customer: refused unless the acting user may write every
    customer (admins, managers). Returns ``{"overdue": [...], "renewals": [...]}``.
    """
    notice = settings_of(crm).renewal_notice_days
    with crm.unit_of_work(actor, ctx) as uow:
        today = uow.now.date()
        overdue = _overdue(uow, today)
        renewals = _renewals(uow, today, notice)
        if overdue:
            table = instalments_table(crm.metadata)
            uow.connection.execute(
                update(table)
                .where(table.c.id == bindparam("iid"))
                .values(overdue_notified_at=uow.now),
                [{"iid": o["instalment_id"]} for o in overdue],
            )
            crm.call_hook("sales_instalments_overdue", ctx=uow, instalments=overdue)
            uow.emit_many("sales.instalment_overdue", [_event(o) for o in overdue])
        if renewals:
            table = contracts_table(crm.metadata)
            uow.connection.execute(
                update(table)
                .where(table.c.id == bindparam("cid"))
                .values(renewal_notified_at=uow.now),
                [{"cid": r["contract_id"]} for r in renewals],
            )
            crm.call_hook("sales_contracts_due_for_renewal", ctx=uow, contracts=renewals)
            uow.emit_many("sales.contract_renewal_due", [_event(r) for r in renewals])
        if overdue or renewals:
            crm.audit.record_batch(
                uow,
                "sales.sweep",
                "instalment",
                [(o["instalment_id"], o["customer_id"], {"kind": "overdue"}) for o in overdue]
                + [(r["contract_id"], r["customer_id"], {"kind": "renewal"}) for r in renewals],
            )
    return {"overdue": overdue, "renewals": renewals}


def _event(item: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("customer_id", "instalment_id", "contract_id", "due_date", "renewal_date")
    return {k: item[k] for k in keep if k in item}


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
