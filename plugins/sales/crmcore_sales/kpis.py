"""The plugin's KPIs in ``crm.metrics(period)`` (``crm report``), computed in SQL.

For ``period = [start, end)`` and the configured report ``currency`` (deals and
payments in other currencies are left out of the money figures):

* ``deals_won`` / ``deals_lost``: deals closed (``closed_at``) in the period;
* ``win_rate``: ``deals_won / (deals_won + deals_lost)`` (0 when none closed);
* ``won_revenue``: the amounts of the deals won in the period;
* ``pipeline_value``: the amounts of the deals open now;
* ``forecast``: the weighted amount (``amount x probability / 100``) of the open
  deals whose expected close falls in the period;
* ``collected``: payments received (``received_on``) in the period;
* ``due``: instalment amounts due in the period;
* ``collection_rate``: ``collected / due`` (0 when nothing fell due);
* ``overdue_receivables``: what is outstanding past due on the period's last
  day (or today, if earlier).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from crmcore import CRM, Period, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_sales.ledger import outstanding_query, raw, to_money
from crmcore_sales.settings import settings_of
from crmcore_sales.tables import contracts_table, deals_table, instalments_table, payments_table


def _plain(value: Decimal) -> str:
    """A money figure as exact text (the report reads numbers from text, as core's revenue)."""
    return str(value)


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """The KPIs of the module docstring (money as exact Decimal text, rates as floats)."""
    code = settings_of(crm).currency
    deals = deals_table(crm.metadata)
    payments, instalments = payments_table(crm.metadata), instalments_table(crm.metadata)
    contracts = contracts_table(crm.metadata)
    c = deals.c
    closed = (c.closed_at >= period.start) & (c.closed_at < period.end)
    first, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
    with crm.reading(ctx) as uow:
        row = uow.connection.execute(
            select(
                func.count(case((closed & (c.status == "won"), 1))).label("won"),
                func.count(case((closed & (c.status == "lost"), 1))).label("lost"),
                func.sum(
                    case((closed & (c.status == "won") & (c.currency == code), raw(c.amount)))
                ).label("revenue"),
                func.sum(case(((c.status == "open") & (c.currency == code), raw(c.amount)))).label(
                    "pipeline"
                ),
                func.sum(
                    case(
                        (
                            (c.status == "open")
                            & (c.currency == code)
                            & (c.expected_close >= first)
                            & (c.expected_close <= last),
                            raw(c.amount) * c.probability,
                        )
                    )
                ).label("forecast"),
            )
        ).one()
        collected = uow.connection.execute(
            select(func.sum(raw(payments.c.amount))).where(
                payments.c.received_on >= first,
                payments.c.received_on <= last,
                payments.c.currency == code,
            )
        ).scalar()
        due = uow.connection.execute(
            select(func.sum(raw(instalments.c.amount)))
            .join(contracts, contracts.c.id == instalments.c.contract_id)
            .where(
                instalments.c.due_date >= first,
                instalments.c.due_date <= last,
                contracts.c.currency == code,
            )
        ).scalar()
        as_of = min(last, uow.now.date())
        owed = outstanding_query(crm.metadata, as_of).subquery()
        overdue = uow.connection.execute(
            select(func.sum(owed.c.outstanding)).where(
                owed.c.due_date < as_of, owed.c.currency == code
            )
        ).scalar()
    won, lost = int(row.won), int(row.lost)
    collected_money, due_money = to_money(collected), to_money(due)
    return {
        "deals_won": won,
        "deals_lost": lost,
        "win_rate": round(won / (won + lost), 4) if won + lost else 0.0,
        "won_revenue": _plain(to_money(row.revenue)),
        "pipeline_value": _plain(to_money(row.pipeline)),
        "forecast": _plain(to_money(Decimal(row.forecast or 0) / 100)),
        "collected": _plain(collected_money),
        "due": _plain(due_money),
        "collection_rate": round(float(collected_money / due_money), 4) if due_money else 0.0,
        "overdue_receivables": _plain(to_money(overdue)),
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
