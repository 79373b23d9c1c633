"""The funnel: stage-to-stage conversion, median time in each stage, cycle length, velocity.

For a pipeline and a period ``[start, end)`` (dates, UTC days), in SQL:

* **Cohort**: the pipeline's deals created in the period (of one owner when given).
* **Reached** a stage: a cohort deal whose stage history names that stage or a
  later one (``won`` counts as after the last open stage; ``lost`` as
  nothing), so a deal that skipped a stage still reached it. ``reached(won)``
  is the cohort deals that were ever won.
* **Conversion** of stage *i*: ``reached(i + 1) / reached(i)`` (the last open
  stage converts to ``won``); ``None`` when nothing reached stage *i*.
* **Median time in stage** (days): over every stay of a cohort deal in the
  stage that has ended (from its ``stage`` history entry to the next one of the
  same deal); stays still running are left out.
* **Cycle length** (days): ``closed_at - created_at`` of the deals of the
  pipeline *won* in the period (``closed_at`` in it); median and mean.
* **Win rate**: ``won / (won + lost)`` of the deals closed in the period.
* **Average deal size**: the mean amount of the deals won in the period (in
  the report currency).
* **Velocity** (money per day): ``open deals x win rate x average deal size /
  mean cycle length``, with the deals of the pipeline open now; ``None``
  without a won deal in the period; rounded to the cent (the rate is exact).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, literal, select

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_sales.ledger import raw, to_money
from crmcore_sales.settings import LOST, WON, Pipeline, settings_of
from crmcore_sales.sqlhelp import days_between, median_by
from crmcore_sales.tables import deals_table, history_table
from crmcore_sales.validation import bad, choice, currency, day, text


def _midnight(day_of: date) -> datetime:
    return datetime.combine(day_of, time(), UTC)


def _order(pipeline: Pipeline, column: Any) -> Any:
    return case(
        *[(column == s.name, literal(s.order)) for s in pipeline.stages],
        (column == WON, literal(len(pipeline.stages))),
        (column == LOST, literal(-1)),
        else_=literal(-1),
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


@requires(Action.READ, scoped=True)
def funnel(
    crm: CRM,
    *,
    start: Any,
    end: Any,
    pipeline: str | None = None,
    owner: str | None = None,
    currency_code: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """The funnel of one pipeline over ``[start, end)`` (definitions in the module docstring)."""
    settings = settings_of(crm)
    chosen = settings.pipelines[
        choice("pipeline", pipeline or settings.default_pipeline, settings.pipelines)
    ]
    first, after = day("start", start), day("end", end)
    if after <= first:
        bad("end", f"{after} is not after start {first}", end)
    code = settings.currency if currency_code is None else currency("currency", currency_code)
    lo, hi = _midnight(first), _midnight(after)
    dialect = crm.engine.dialect.name
    deals, history = deals_table(crm.metadata), history_table(crm.metadata)
    mine = [deals.c.pipeline == chosen.name, crm.access.where(deals.c.customer_id)]
    if owner is not None:
        mine.append(deals.c.owner == text("owner", owner, 200, required=True))
    cohort = [*mine, deals.c.created_at >= lo, deals.c.created_at < hi]
    stage_rows = (
        select(
            history.c.deal_id,
            history.c.new.label("stage"),
            history.c.at,
            func.lead(history.c.at)
            .over(partition_by=history.c.deal_id, order_by=history.c.id)
            .label("left_at"),
        )
        .join(deals, deals.c.id == history.c.deal_id)
        .where(history.c.field == "stage", *cohort)
        .subquery("stays")
    )
    furthest = (
        select(stage_rows.c.deal_id, func.max(_order(chosen, stage_rows.c.stage)).label("top"))
        .group_by(stage_rows.c.deal_id)
        .subquery("furthest")
    )
    reached_query = select(
        *[
            func.count().filter(furthest.c.top >= n).label(f"r{n}")
            for n in range(len(chosen.stages) + 1)
        ]
    )
    durations = select(
        stage_rows.c.stage,
        days_between(stage_rows.c.left_at, stage_rows.c.at, dialect).label("days"),
    ).where(stage_rows.c.left_at.is_not(None), stage_rows.c.stage.in_(chosen.stage_names))
    closed_in = [*mine, deals.c.closed_at >= lo, deals.c.closed_at < hi]
    cycle = days_between(deals.c.closed_at, deals.c.created_at, dialect)
    won_query = select(
        func.count().filter(deals.c.status == WON).label("won"),
        func.count().filter(deals.c.status == LOST).label("lost"),
        func.avg(case((deals.c.status == WON, cycle))).label("mean_cycle"),
        func.sum(
            case((and_(deals.c.status == WON, deals.c.currency == code), raw(deals.c.amount)))
        ).label("won_amount"),
        func.count()
        .filter(and_(deals.c.status == WON, deals.c.currency == code))
        .label("won_in_currency"),
    ).where(*closed_in)
    cycles = select(literal(1).label("g"), cycle.label("days")).where(
        *closed_in, deals.c.status == WON
    )
    open_query = select(func.count()).where(*mine, deals.c.status == "open")
    with crm.reading(ctx) as uow:
        reached_row = uow.connection.execute(reached_query.select_from(furthest)).one()
        medians = {
            r.stage: round(float(r.median), 6)
            for r in uow.connection.execute(median_by(durations, "days", ["stage"]))
        }
        closed = uow.connection.execute(won_query).one()
        median_cycle = uow.connection.execute(median_by(cycles, "days", ["g"])).first()
        open_deals = int(uow.connection.execute(open_query).scalar_one())
        cohort_size = int(uow.connection.execute(select(func.count()).where(*cohort)).scalar_one())
    reached = [int(reached_row[n]) for n in range(len(chosen.stages) + 1)]
    stages = []
    for stage in chosen.stages:
        n = stage.order
        stages.append(
            {
                "stage": stage.name,
                "reached": reached[n],
                "next": chosen.stages[n + 1].name if n + 1 < len(chosen.stages) else WON,
                "advanced": reached[n + 1],
                "conversion": _ratio(reached[n + 1], reached[n]),
                "median_days_in_stage": medians.get(stage.name),
            }
        )
    won, lost = int(closed.won), int(closed.lost)
    win_rate = _ratio(won, won + lost)
    in_currency = int(closed.won_in_currency)
    average = None if in_currency == 0 else to_money(closed.won_amount) / in_currency
    mean_cycle = None if closed.mean_cycle is None else round(float(closed.mean_cycle), 6)
    velocity = None
    if average is not None and won and mean_cycle:
        rate = Decimal(won) / Decimal(won + lost)
        velocity = (Decimal(open_deals) * rate * average / Decimal(str(mean_cycle))).quantize(
            Decimal("0.01")
        )
    return {
        "pipeline": chosen.name,
        "owner": owner,
        "start": first.isoformat(),
        "end": after.isoformat(),
        "currency": code,
        "cohort": cohort_size,
        "stages": stages,
        "won_from_cohort": reached[-1],
        "deals_won": won,
        "deals_lost": lost,
        "win_rate": win_rate,
        "average_deal_size": average,
        "median_cycle_days": None if median_cycle is None else round(float(median_cycle.median), 6),
        "mean_cycle_days": mean_cycle,
        "open_deals": open_deals,
        "velocity_per_day": velocity,
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
