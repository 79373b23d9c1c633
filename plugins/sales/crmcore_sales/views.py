"""The plugin's contributions to core views: the 360° section, the account roll-up, churn signals.

Churn signals (source ``sales``), for each customer:

* a deal of a renewal pipeline (``renewal_pipelines``) lost in the last
  ``churn_days`` (default 365): weight 0.7 ("lost renewal");
* another deal lost in the last ``churn_days``: weight 0.3 (a signal others
  read; it lowers nothing by itself);
* an instalment outstanding more than 30 days past due: weight 0.5, or 0.7
  when more than 90 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from crmcore import CRM, ChurnSignal, Customer, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_sales.ledger import outstanding_query, raw, to_money
from crmcore_sales.settings import settings_of
from crmcore_sales.tables import contracts_table, deals_table

#: Source name of the churn signals this plugin emits.
SIGNAL_SOURCE = "sales"
_CHUNK = 400


def _deal_figures(uow: UnitOfWork, customer_ids: Sequence[int]) -> dict[str, Any]:
    deals = deals_table(uow.crm.metadata)
    c = deals.c
    rows = uow.connection.execute(
        select(
            c.status,
            c.currency,
            func.count().label("n"),
            func.sum(raw(c.amount)).label("amount"),
            func.sum(raw(c.amount) * c.probability).label("weighted"),
        )
        .where(c.customer_id.in_(customer_ids))
        .group_by(c.status, c.currency)
    ).all()
    figures: dict[str, Any] = {"open_deals": 0, "won_deals": 0, "lost_deals": 0, "open": {}}
    for row in rows:
        figures[f"{row.status}_deals"] += int(row.n)
        if row.status == "open":
            figures["open"][row.currency] = {
                "amount": str(to_money(row.amount)),
                "weighted": str(to_money(Decimal(row.weighted) / 100)),
            }
    return figures


def _receivables(uow: UnitOfWork, customer_ids: Sequence[int]) -> dict[str, Any]:
    today = uow.now.date()
    due = outstanding_query(uow.crm.metadata, today).subquery()
    rows = uow.connection.execute(
        select(
            due.c.currency,
            func.sum(due.c.outstanding).label("outstanding"),
            func.sum(case((due.c.due_date < today, due.c.outstanding), else_=0)).label("overdue"),
        )
        .where(due.c.customer_id.in_(customer_ids))
        .group_by(due.c.currency)
    ).all()
    return {
        r.currency: {
            "outstanding": str(to_money(r.outstanding)),
            "overdue": str(to_money(r.overdue)),
        }
        for r in rows
    }


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id)
def profile_section(
    crm: CRM, customer: Customer, *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """The customer's sales in the 360° view: open deals, the last won, contracts, receivables."""
    if customer.id is None:
        return None
    deals, contracts = deals_table(crm.metadata), contracts_table(crm.metadata)
    with crm.reading(ctx) as uow:
        figures = _deal_figures(uow, [customer.id])
        if not any(figures[k] for k in ("open_deals", "won_deals", "lost_deals")):
            return None
        open_rows = uow.connection.execute(
            select(deals)
            .where(deals.c.customer_id == customer.id, deals.c.status == "open")
            .order_by(deals.c.expected_close, deals.c.id)
            .limit(5)
        ).all()
        last_won = uow.connection.execute(
            select(deals)
            .where(deals.c.customer_id == customer.id, deals.c.status == "won")
            .order_by(deals.c.closed_at.desc(), deals.c.id.desc())
            .limit(1)
        ).first()
        contract = uow.connection.execute(
            select(contracts)
            .where(contracts.c.customer_id == customer.id)
            .order_by(contracts.c.end_date.desc(), contracts.c.id.desc())
            .limit(1)
        ).first()
        receivables = _receivables(uow, [customer.id])
    return {
        **figures,
        "open_list": [
            {
                "id": r.id,
                "title": r.title,
                "stage": r.stage,
                "amount": str(r.amount),
                "currency": r.currency,
                "expected_close": r.expected_close.isoformat(),
            }
            for r in open_rows
        ],
        "last_won": None
        if last_won is None
        else {
            "id": last_won.id,
            "title": last_won.title,
            "amount": str(last_won.amount),
            "currency": last_won.currency,
            "closed_at": last_won.closed_at.isoformat(),
        },
        "contract": None
        if contract is None
        else {
            "id": contract.id,
            "value": str(contract.value),
            "currency": contract.currency,
            "end_date": contract.end_date.isoformat(),
            "renewal_date": None
            if contract.renewal_date is None
            else contract.renewal_date.isoformat(),
        },
        "receivables": receivables,
    }


@requires(Action.READ, customer="account_id")
def account_rollup(
    crm: CRM, account_id: int, member_ids: Sequence[int], *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """Deals and receivables summed over an account (organisation, contacts, subsidiaries)."""
    wanted = sorted(set(member_ids) | {account_id})
    with crm.reading(ctx) as uow:
        seen = list(
            uow.connection.execute(
                select(deals_table(crm.metadata).c.customer_id)
                .where(deals_table(crm.metadata).c.customer_id.in_(wanted))
                .where(crm.access.where(deals_table(crm.metadata).c.customer_id))
                .distinct()
            ).scalars()
        )
        if not seen:
            return None
        figures = _deal_figures(uow, seen)
        figures["receivables"] = _receivables(uow, seen)
    return figures


@requires(Action.READ, customer="customer_ids")
def churn_signals(
    crm: CRM, customer_ids: Sequence[int], *, ctx: UnitOfWork | None = None
) -> list[ChurnSignal]:
    """Lost renewals, other lost deals and overdue payments (see the module), per chunk."""
    settings = settings_of(crm)
    deals = deals_table(crm.metadata)
    signals: list[ChurnSignal] = []
    wanted = sorted(set(customer_ids))
    with crm.reading(ctx) as uow:
        since = uow.now - timedelta(days=settings.churn_days)
        today = uow.now.date()
        renewal = deals.c.pipeline.in_(settings.renewal_pipelines)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = uow.connection.execute(
                select(
                    deals.c.customer_id,
                    func.count(case((renewal, 1))).label("renewals"),
                    func.count(case((~renewal, 1))).label("others"),
                )
                .where(
                    deals.c.customer_id.in_(chunk),
                    deals.c.status == "lost",
                    deals.c.closed_at >= since,
                )
                .group_by(deals.c.customer_id)
            ).all()
            for row in rows:
                if row.renewals:
                    signals.append(
                        ChurnSignal(
                            row.customer_id,
                            SIGNAL_SOURCE,
                            f"lost renewal: {row.renewals} renewal deal(s) lost in the last "
                            f"{settings.churn_days} days",
                            0.7,
                        )
                    )
                if row.others:
                    signals.append(
                        ChurnSignal(
                            row.customer_id,
                            SIGNAL_SOURCE,
                            f"{row.others} deal(s) lost in the last {settings.churn_days} days",
                            0.3,
                        )
                    )
            due = outstanding_query(crm.metadata, today).subquery()
            late = uow.connection.execute(
                select(due.c.customer_id, func.min(due.c.due_date).label("oldest"))
                .where(
                    due.c.customer_id.in_(chunk),
                    due.c.outstanding > 0,
                    due.c.due_date < today - timedelta(days=30),
                )
                .group_by(due.c.customer_id)
            ).all()
            for row in late:
                days = (today - row.oldest).days
                signals.append(
                    ChurnSignal(
                        row.customer_id,
                        SIGNAL_SOURCE,
                        f"overdue payment: an instalment {days} days past due",
                        0.7 if days > 90 else 0.5,
                    )
                )
    return signals


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
