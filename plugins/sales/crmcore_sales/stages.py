"""Stage moves of a deal: move, win, lose and the explicit reopen.

A move must be allowed by the pipeline's ``moves`` (default: any open stage
to any other open stage, and to ``won`` or ``lost``). It sets the deal's
probability to the new stage's default unless one is given, and records
``stage`` (and ``probability``, ``status``) in the history. Winning sets the
probability to 100 and the category to ``closed``; losing sets 0. A won or
lost deal moves only through :func:`reopen_deal`. A deal won creates nothing
by itself: revenue enters the CRM when a payment is collected
(:mod:`crmcore_sales.contracts`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.errors import TransitionError
from crmcore.scoping import enforce_declared, requires
from crmcore_sales import resolvers, store
from crmcore_sales.entities import Deal
from crmcore_sales.settings import LOST, WON, Pipeline, settings_of
from crmcore_sales.tables import deals_table
from crmcore_sales.validation import bad, choice, integer, moment, text


def _pipeline_of(crm: CRM, deal: Deal) -> Pipeline:
    pipeline = settings_of(crm).pipelines.get(deal.pipeline)
    if pipeline is None:
        bad("pipeline", f"deal {deal.id}'s pipeline {deal.pipeline!r} is no longer configured")
    return pipeline


def _when(uow: UnitOfWork, deal: Deal, at: datetime | None) -> datetime:
    when = moment(uow, at)
    if when < deal.updated_at:
        bad("at", f"{when.isoformat()} is before the deal's last change", at)
    return when


def _apply(
    uow: UnitOfWork, deal: Deal, values: dict[str, Any], when: datetime, action: str, **audit: Any
) -> Deal:
    values.update(updated_at=when)
    if "stage" in values:
        values["stage_changed_at"] = when
    deals = deals_table(uow.crm.metadata)
    uow.connection.execute(update(deals).where(deals.c.id == deal.id).values(values))
    store.write_history(
        uow, deal.id, [(f, getattr(deal, f), values[f]) for f in store.TRACKED if f in values], when
    )
    store.audit(uow, action, "deal", deal.id, deal.customer_id, **audit)
    return store.load_deal(uow, deal.id)


def _check_move(pipeline: Pipeline, deal: Deal, target: str) -> None:
    if deal.status != "open":
        raise TransitionError(
            f"stage: deal {deal.id} is {deal.status}; reopen it before moving it",
            field="stage",
            value=target,
        )
    if target not in pipeline.moves.get(deal.stage, frozenset()):
        raise TransitionError(
            f"stage: {pipeline.name} does not allow a move from {deal.stage} to {target}",
            field="stage",
            value=target,
        )


@requires(Action.WRITE, customer=resolvers.deal_customer)
def move_deal(
    crm: CRM,
    deal_id: int,
    stage: str,
    *,
    probability: int | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Deal:
    """Move an open deal to another open stage of its pipeline.

    ``probability`` overrides the stage's default. Use :func:`win_deal` and
    :func:`lose_deal` to close it. Raises TransitionError for a move the
    pipeline does not allow; nothing changes then.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        deal = store.load_deal(uow, deal_id, lock=True)
        pipeline = _pipeline_of(crm, deal)
        target = choice("stage", stage, pipeline.stage_names)
        _check_move(pipeline, deal, target)
        when = _when(uow, deal, at)
        chosen = pipeline.stage(target)
        values: dict[str, Any] = {
            "stage": target,
            "probability": chosen.probability
            if probability is None
            else integer("probability", probability, 0, 100),
            "category": chosen.category,
        }
        moved = _apply(uow, deal, values, when, "deal_move", old=deal.stage, new=target)
        uow.emit("sales.deal_moved", deal.customer_id, {"deal_id": deal.id, "stage": target})
        return moved


@requires(Action.WRITE, customer=resolvers.deal_customer)
def win_deal(
    crm: CRM,
    deal_id: int,
    *,
    reason: str,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Deal:
    """Close an open deal as won, with a reason from the pipeline's ``won_reasons``.

    Emits ``sales.deal_won`` (delivered after commit). Creates no revenue: a
    payment does (:func:`crmcore_sales.contracts.record_payment`).
    """
    with crm.unit_of_work(actor, ctx) as uow:
        deal = store.load_deal(uow, deal_id, lock=True)
        pipeline = _pipeline_of(crm, deal)
        why = choice("reason", reason, pipeline.won_reasons)
        _check_move(pipeline, deal, WON)
        when = _when(uow, deal, at)
        values: dict[str, Any] = {
            "stage": WON,
            "status": WON,
            "probability": 100,
            "category": "closed",
            "reason": why,
            "competitor": None,
            "closed_at": when,
        }
        won = _apply(uow, deal, values, when, "deal_win", reason=why)
        uow.emit(
            "sales.deal_won",
            deal.customer_id,
            {
                "deal_id": deal.id,
                "pipeline": deal.pipeline,
                "amount": str(deal.amount),
                "currency": deal.currency,
            },
        )
        return won


@requires(Action.WRITE, customer=resolvers.deal_customer)
def lose_deal(
    crm: CRM,
    deal_id: int,
    *,
    reason: str,
    competitor: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Deal:
    """Close an open deal as lost, with a reason from ``lost_reasons`` and the competitor."""
    with crm.unit_of_work(actor, ctx) as uow:
        deal = store.load_deal(uow, deal_id, lock=True)
        pipeline = _pipeline_of(crm, deal)
        why = choice("reason", reason, pipeline.lost_reasons)
        _check_move(pipeline, deal, LOST)
        when = _when(uow, deal, at)
        values: dict[str, Any] = {
            "stage": LOST,
            "status": LOST,
            "probability": 0,
            "reason": why,
            "competitor": text("competitor", competitor, 200),
            "closed_at": when,
        }
        lost = _apply(uow, deal, values, when, "deal_lose", reason=why)
        uow.emit(
            "sales.deal_lost",
            deal.customer_id,
            {"deal_id": deal.id, "pipeline": deal.pipeline, "reason": why},
        )
        return lost


@requires(Action.WRITE, customer=resolvers.deal_customer)
def reopen_deal(
    crm: CRM,
    deal_id: int,
    *,
    stage: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Deal:
    """Reopen a won or lost deal at ``stage`` (default the pipeline's last open stage).

    The probability and category become the stage's; the reason, competitor
    and close time are cleared; ``reopen_count`` grows by one.
    """
    with crm.unit_of_work(actor, ctx) as uow:
        deal = store.load_deal(uow, deal_id, lock=True)
        pipeline = _pipeline_of(crm, deal)
        if deal.status == "open":
            raise TransitionError(
                f"stage: deal {deal.id} is open; only won or lost deals are reopened",
                field="stage",
                value=stage,
            )
        target = pipeline.stages[-1].name if stage is None else stage
        chosen = pipeline.stage(choice("stage", target, pipeline.stage_names))
        when = _when(uow, deal, at)
        values: dict[str, Any] = {
            "stage": chosen.name,
            "status": "open",
            "probability": chosen.probability,
            "category": chosen.category,
            "reason": None,
            "competitor": None,
            "closed_at": None,
            "reopen_count": deal.reopen_count + 1,
        }
        reopened = _apply(uow, deal, values, when, "deal_reopen", old=deal.stage, new=chosen.name)
        uow.emit("sales.deal_reopened", deal.customer_id, {"deal_id": deal.id})
        return reopened


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
