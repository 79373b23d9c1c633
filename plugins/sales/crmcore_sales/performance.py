"""Targets (quotas) and performance per salesperson or team, with a leaderboard.

A target is an amount (one currency) for an owner or a team over the days
``[period_start, period_end)``. For a period ``[start, end)`` and each owner
(or team) of a deal, in SQL:

* ``won`` / ``lost``: their deals closed in the period; ``win_rate = won / (won + lost)``;
* ``won_amount`` and ``average_deal_size`` (mean amount of the deals won);
* ``median_cycle_days``: median of ``closed_at - created_at`` of the deals won;
* ``collected``: payments received in the period on contracts they own;
* ``attained``: ``won_amount`` or ``collected``, as ``[plugins.sales] attainment``
  says (default ``won``); ``attainment = attained / target``;
* ``open_weighted``: the weighted amount of their deals open now with an expected
  close from ``max(today, start)`` to ``end``;
* ``remaining_quota = max(target - attained, 0)`` and ``coverage =
  open_weighted / remaining_quota`` (``None`` without a target or once it is met).

The target of an owner for the period is the sum of their targets lying
inside ``[start, end)``. The leaderboard orders by ``attained``, then ``won``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, insert, select, update

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore_sales.ledger import raw, to_money
from crmcore_sales.settings import settings_of
from crmcore_sales.sqlhelp import days_between, median_by
from crmcore_sales.tables import contracts_table, deals_table, payments_table, targets_table
from crmcore_sales.validation import bad, choice, currency, day, money, text


def _midnight(day_of: date) -> datetime:
    return datetime.combine(day_of, time(), UTC)


@requires(Action.WRITE)
def set_target(
    crm: CRM,
    *,
    start: Any,
    end: Any,
    amount: Any,
    owner: str | None = None,
    team: str | None = None,
    currency_code: str | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Set (or replace) the quota of one owner or one team for ``[start, end)``."""
    who_owner, who_team = text("owner", owner, 200), text("team", team, 200)
    if (who_owner is None) == (who_team is None):
        bad("owner", "give exactly one of owner and team")
    first, after = day("start", start), day("end", end)
    if after <= first:
        bad("end", f"{after} is not after start {first}", end)
    quota = money("amount", amount, positive=True)
    code = (
        settings_of(crm).currency if currency_code is None else currency("currency", currency_code)
    )
    targets = targets_table(crm.metadata)
    same = and_(
        targets.c.owner.is_(None) if who_owner is None else targets.c.owner == who_owner,
        targets.c.team.is_(None) if who_team is None else targets.c.team == who_team,
        targets.c.period_start == first,
        targets.c.period_end == after,
    )
    values = {"amount": quota, "currency": code}
    with crm.unit_of_work(actor, ctx) as uow:
        existing = uow.connection.execute(select(targets.c.id).where(same)).scalar()
        if existing is None:
            inserted = uow.connection.execute(
                insert(targets).values(
                    owner=who_owner,
                    team=who_team,
                    period_start=first,
                    period_end=after,
                    details={},
                    **values,
                )
            ).inserted_primary_key
            assert inserted is not None
            existing = int(inserted[0])
        else:
            uow.connection.execute(update(targets).where(targets.c.id == existing).values(values))
        crm.audit.record(uow, [AuditEntry("sales.target", "target", existing, None, {})])
    return {
        "id": existing,
        "owner": who_owner,
        "team": who_team,
        "start": first.isoformat(),
        "end": after.isoformat(),
        "amount": quota,
        "currency": code,
    }


@requires(Action.REPORT)
def list_targets(crm: CRM, *, ctx: UnitOfWork | None = None) -> list[dict[str, Any]]:
    """Every target, by period then owner or team."""
    targets = targets_table(crm.metadata)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(targets).order_by(targets.c.period_start, targets.c.owner, targets.c.team)
        ).all()
    return [
        {
            "id": r.id,
            "owner": r.owner,
            "team": r.team,
            "start": r.period_start.isoformat(),
            "end": r.period_end.isoformat(),
            "amount": r.amount,
            "currency": r.currency,
        }
        for r in rows
    ]


def _ratio(a: Decimal | int, b: Decimal | int) -> float | None:
    return None if not b else round(float(Decimal(a) / Decimal(b)), 4)


@requires(Action.REPORT)
def performance(
    crm: CRM,
    *,
    start: Any,
    end: Any,
    by: str = "owner",
    currency_code: str | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Per owner (or team) figures for ``[start, end)`` as the module defines; the leaderboard."""
    settings = settings_of(crm)
    dimension = choice("by", by, ("owner", "team"))
    first, after = day("start", start), day("end", end)
    if after <= first:
        bad("end", f"{after} is not after start {first}", end)
    code = settings.currency if currency_code is None else currency("currency", currency_code)
    lo, hi = _midnight(first), _midnight(after)
    deals = deals_table(crm.metadata)
    key = deals.c[dimension]
    closed = and_(deals.c.closed_at >= lo, deals.c.closed_at < hi)
    won = and_(closed, deals.c.status == "won")
    cycle = days_between(deals.c.closed_at, deals.c.created_at, crm.engine.dialect.name)
    with crm.reading(ctx) as uow:
        open_from = max(first, uow.now.date())
        figures = uow.connection.execute(
            select(
                key.label("key"),
                func.count().filter(won).label("won"),
                func.count().filter(and_(closed, deals.c.status == "lost")).label("lost"),
                func.count().filter(and_(won, deals.c.currency == code)).label("won_n"),
                func.sum(case((and_(won, deals.c.currency == code), raw(deals.c.amount)))).label(
                    "won_amount"
                ),
                func.sum(
                    case(
                        (
                            and_(
                                deals.c.status == "open",
                                deals.c.currency == code,
                                deals.c.expected_close >= open_from,
                                deals.c.expected_close < after,
                            ),
                            raw(deals.c.amount) * deals.c.probability,
                        )
                    )
                ).label("open_weighted"),
            )
            .where(key.is_not(None))
            .group_by(key)
        ).all()
        medians = {
            r.key: round(float(r.median), 6)
            for r in uow.connection.execute(
                median_by(select(key.label("key"), cycle.label("days")).where(won), "days", ["key"])
            )
        }
        collected = dict(_collected(uow, dimension, first, after, code))
        quotas = dict(_quotas(uow, dimension, first, after, code))
    rows: list[dict[str, Any]] = []
    for row in figures:
        won_amount = to_money(row.won_amount)
        attained = (
            won_amount if settings.attainment == "won" else collected.get(row.key, Decimal(0))
        )
        target = quotas.get(row.key)
        remaining = None if target is None else max(target - attained, Decimal(0))
        weighted = to_money(Decimal(row.open_weighted or 0) / 100)
        rows.append(
            {
                dimension: row.key,
                "won": int(row.won),
                "lost": int(row.lost),
                "win_rate": _ratio(int(row.won), int(row.won) + int(row.lost)),
                "won_amount": won_amount,
                "average_deal_size": None if not row.won_n else won_amount / int(row.won_n),
                "median_cycle_days": medians.get(row.key),
                "collected": collected.get(row.key, Decimal(0)),
                "target": target,
                "attained": attained,
                "attainment": None if target is None else _ratio(attained, target),
                "open_weighted": weighted,
                "remaining_quota": remaining,
                "coverage": None if not remaining else _ratio(weighted, remaining),
                "currency": code,
            }
        )
    rows.sort(key=lambda r: (-r["attained"], -r["won"], str(r[dimension])))
    for rank, entry in enumerate(rows, 1):
        entry["rank"] = rank
    return rows


def _collected(uow: UnitOfWork, dimension: str, first: date, after: date, code: str) -> Any:
    payments, contracts = payments_table(uow.crm.metadata), contracts_table(uow.crm.metadata)
    deals = deals_table(uow.crm.metadata)
    key = contracts.c.owner if dimension == "owner" else deals.c.team
    query = (
        select(key, func.sum(raw(payments.c.amount)))
        .select_from(payments.join(contracts, contracts.c.id == payments.c.contract_id))
        .outerjoin(deals, deals.c.id == contracts.c.deal_id)
        .where(
            payments.c.received_on >= first,
            payments.c.received_on < after,
            payments.c.currency == code,
            key.is_not(None),
        )
        .group_by(key)
    )
    return [(k, to_money(v)) for k, v in uow.connection.execute(query)]


def _quotas(uow: UnitOfWork, dimension: str, first: date, after: date, code: str) -> Any:
    targets = targets_table(uow.crm.metadata)
    key = targets.c[dimension]
    query = (
        select(key, func.sum(raw(targets.c.amount)))
        .where(
            targets.c.period_start >= first,
            targets.c.period_end <= after,
            targets.c.currency == code,
            key.is_not(None),
        )
        .group_by(key)
    )
    return [(k, to_money(v)) for k, v in uow.connection.execute(query)]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
