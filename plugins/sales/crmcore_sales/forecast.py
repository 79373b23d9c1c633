"""The forecast: weighted pipeline, categories, empirical win rates per stage, the backtest.

Every figure is one SQL query; money figures are per currency (deals in other
currencies than the one asked, by default the configured ``currency``, are
left out). An agent sees the figures of the customers they may read.

* **Weighted pipeline** of a period: ``sum(amount x probability / 100)`` over
  the deals *open now* whose ``expected_close`` falls in the period, per month
  or quarter and per owner, team or pipeline.
* **Categories** over ``[start, end)``: ``pipeline``, ``best_case`` and
  ``commit`` sum the amounts of the open deals of that category closing in the
  range; ``closed`` sums the deals won (``closed_at``) in it. Cumulative:
  ``commit_total = closed + commit``, ``best_case_total = commit_total + best_case``.
* **Empirical win rate of a stage**: of the deals that ever entered the stage
  (a ``stage`` history entry naming it, creation included) and are closed now
  (won or lost), the share that is won: ``won / (won + lost)``; ``None`` when
  none is closed. Shown next to the stage's configured probability.
* **Backtest** as of ``T`` over ``[T, E)`` (default one quarter): the history
  is replayed to ``T`` (each deal's last ``status``, ``amount``,
  ``probability``, ``currency`` and ``expected_close`` written at or before
  ``T``). ``forecast`` is the weighted amount of the deals open at ``T`` with an
  expected close in ``[T.date, E.date)``; ``actual`` the amounts of the deals
  won with ``closed_at`` in ``[T, E)``; ``error = forecast - actual``;
  ``accuracy = actual / forecast``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, cast, func, literal, select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_sales.ledger import raw, to_money
from crmcore_sales.settings import CATEGORIES, settings_of
from crmcore_sales.sqlhelp import date_text, date_value, period_case, periods, scaled_text
from crmcore_sales.tables import deals_table, history_table
from crmcore_sales.validation import bad, choice, currency, day

#: Dimensions the weighted pipeline may be grouped by.
DIMENSIONS = ("owner", "team", "pipeline")


def _code(crm: CRM, given: str | None) -> str:
    return settings_of(crm).currency if given is None else currency("currency", given)


def _weighted(value: Any) -> Decimal:
    """A sum of ``raw(amount) * probability`` as a Decimal amount."""
    return to_money(Decimal(value or 0) / 100)


@requires(Action.READ, scoped=True)
def weighted_pipeline(
    crm: CRM,
    *,
    start: Any,
    end: Any,
    period: str = "month",
    by: str | None = None,
    pipeline: str | None = None,
    currency_code: str | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Weighted pipeline per period (and ``by`` owner/team/pipeline) over ``[start, end)``.

    Rows hold ``period``, ``key`` (the owner, team or pipeline; ``None``
    without ``by``), ``deals``, ``amount`` and ``weighted``, ordered by period and key.
    """
    first, after = day("start", start), day("end", end)
    spans = periods(first, after, period)
    code = _code(crm, currency_code)
    deals = deals_table(crm.metadata)
    label = period_case(deals.c.expected_close, spans).label("period")
    key = (deals.c[choice("by", by, DIMENSIONS)] if by is not None else literal(None)).label("key")
    query = (
        select(
            label,
            key,
            func.count().label("deals"),
            func.sum(raw(deals.c.amount)).label("amount"),
            func.sum(raw(deals.c.amount) * deals.c.probability).label("weighted"),
        )
        .where(
            deals.c.status == "open",
            deals.c.currency == code,
            deals.c.expected_close >= first,
            deals.c.expected_close < after,
            crm.access.where(deals.c.customer_id),
        )
        .group_by(label, key)
    )
    if pipeline is not None:
        query = query.where(
            deals.c.pipeline == choice("pipeline", pipeline, settings_of(crm).pipelines)
        )
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(query).all()
    found = [
        {
            "period": r.period,
            "key": r.key,
            "deals": int(r.deals),
            "amount": to_money(r.amount),
            "weighted": _weighted(r.weighted),
            "currency": code,
        }
        for r in rows
    ]
    return sorted(found, key=lambda r: (r["period"], r["key"] or ""))


@requires(Action.READ, scoped=True)
def categories(
    crm: CRM,
    *,
    start: Any,
    end: Any,
    currency_code: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """The forecast categories over ``[start, end)`` (see the module), disjoint and cumulative."""
    first, after = day("start", start), day("end", end)
    if after <= first:
        bad("end", f"{after} is not after start {first}", end)
    code = _code(crm, currency_code)
    deals = deals_table(crm.metadata)
    seen = crm.access.where(deals.c.customer_id)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(deals.c.category, func.sum(raw(deals.c.amount)))
            .where(
                deals.c.status == "open",
                deals.c.currency == code,
                deals.c.expected_close >= first,
                deals.c.expected_close < after,
                seen,
            )
            .group_by(deals.c.category)
        ).all()
        closed = uow.connection.execute(
            select(func.sum(raw(deals.c.amount))).where(
                deals.c.status == "won",
                deals.c.currency == code,
                deals.c.closed_at >= _midnight(first),
                deals.c.closed_at < _midnight(after),
                seen,
            )
        ).scalar()
    sums = {c: Decimal(0) for c in CATEGORIES}
    for category, amount in rows:
        sums[category] = to_money(amount)
    won = to_money(closed)
    commit_total = won + sums["commit"]
    return {
        "currency": code,
        "closed": won,
        **sums,
        "commit_total": commit_total,
        "best_case_total": commit_total + sums["best_case"],
        "pipeline_total": commit_total + sums["best_case"] + sums["pipeline"],
    }


def _midnight(day_of: date) -> datetime:
    return datetime.combine(day_of, time(), UTC)


@requires(Action.READ, scoped=True)
def stage_win_rates(
    crm: CRM, *, pipeline: str | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Per open stage: deals that reached it, how many are won/lost now, the empirical win rate."""
    settings = settings_of(crm)
    chosen = settings.pipelines[
        choice("pipeline", pipeline or settings.default_pipeline, settings.pipelines)
    ]
    deals, history = deals_table(crm.metadata), history_table(crm.metadata)
    reached = (
        select(history.c.deal_id, history.c.new.label("stage"))
        .join(deals, deals.c.id == history.c.deal_id)
        .where(
            history.c.field == "stage",
            deals.c.pipeline == chosen.name,
            history.c.new.in_(chosen.stage_names),
            crm.access.where(deals.c.customer_id),
        )
        .distinct()
        .subquery()
    )
    query = (
        select(
            reached.c.stage,
            func.count().label("reached"),
            func.count().filter(deals.c.status == "won").label("won"),
            func.count().filter(deals.c.status == "lost").label("lost"),
        )
        .join(deals, deals.c.id == reached.c.deal_id)
        .group_by(reached.c.stage)
    )
    with crm.reading(ctx) as uow:
        counts = {r.stage: r for r in uow.connection.execute(query)}
    result = []
    for stage in chosen.stages:
        row = counts.get(stage.name)
        won, lost = (int(row.won), int(row.lost)) if row is not None else (0, 0)
        result.append(
            {
                "pipeline": chosen.name,
                "stage": stage.name,
                "configured": stage.probability,
                "reached": 0 if row is None else int(row.reached),
                "won": won,
                "lost": lost,
                "empirical": None if won + lost == 0 else round(100 * won / (won + lost), 2),
            }
        )
    return result


@requires(Action.READ, scoped=True)
def backtest(
    crm: CRM,
    *,
    as_of: datetime,
    end: datetime | None = None,
    currency_code: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Replay the history to ``as_of``; compare its forecast with what was won (see the module)."""
    if not isinstance(as_of, datetime) or as_of.tzinfo is None:
        bad("as_of", f"expected a timezone-aware timestamp, got {as_of!r}", as_of)
    until = end if end is not None else as_of + timedelta(days=91)
    if not isinstance(until, datetime) or until.tzinfo is None or until <= as_of:
        bad("end", f"expected an aware timestamp after as_of, got {until!r}", until)
    code = _code(crm, currency_code)
    deals, history = deals_table(crm.metadata), history_table(crm.metadata)
    dialect = crm.engine.dialect.name
    fields = ("status", "amount", "probability", "currency", "expected_close")
    latest = (
        select(func.max(history.c.id).label("id"))
        .where(history.c.field.in_(fields), history.c.at <= as_of)
        .group_by(history.c.deal_id, history.c.field)
        .subquery()
    )
    values = (
        select(history.c.deal_id, history.c.field, history.c.new)
        .join(latest, latest.c.id == history.c.id)
        .subquery()
    )

    def pick(name: str) -> Any:
        return func.max(values.c.new).filter(values.c.field == name)

    state = (
        select(
            values.c.deal_id,
            pick("status").label("status"),
            pick("amount").label("amount"),
            pick("probability").label("probability"),
            pick("currency").label("currency"),
            pick("expected_close").label("expected_close"),
        )
        .group_by(values.c.deal_id)
        .subquery()
    )
    forecast_query = (
        select(
            func.count().label("deals"),
            func.sum(
                scaled_text(state.c.amount, dialect) * cast(state.c.probability, Integer)
            ).label("weighted"),
        )
        .select_from(state.join(deals, deals.c.id == state.c.deal_id))
        .where(
            state.c.status == "open",
            state.c.currency == code,
            date_text(state.c.expected_close, dialect) >= date_value(as_of.date(), dialect),
            date_text(state.c.expected_close, dialect) < date_value(until.date(), dialect),
            crm.access.where(deals.c.customer_id),
        )
    )
    actual_query = select(func.count(), func.sum(raw(deals.c.amount))).where(
        deals.c.status == "won",
        deals.c.currency == code,
        and_(deals.c.closed_at >= as_of, deals.c.closed_at < until),
        crm.access.where(deals.c.customer_id),
    )
    with crm.reading(ctx) as uow:
        predicted = uow.connection.execute(forecast_query).one()
        won_count, won_amount = uow.connection.execute(actual_query).one()
    forecast = _weighted(predicted.weighted)
    actual = to_money(won_amount)
    return {
        "as_of": as_of.isoformat(),
        "end": until.isoformat(),
        "currency": code,
        "open_deals": int(predicted.deals),
        "forecast": forecast,
        "won_deals": int(won_count),
        "actual": actual,
        "error": forecast - actual,
        "accuracy": None if forecast == 0 else round(float(actual / forecast), 4),
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
