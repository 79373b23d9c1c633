"""The surveys plugin's contributions to core views and privacy.

Profile section (latest scores), KPIs for ``crm_metrics``, churn signals (recent low
scores), export, erasure and deletion of a customer's survey data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from crmcore import CRM, ChurnSignal, Customer, Period, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_surveys.alerts import response_index
from crmcore_surveys.catalog import survey_by_id
from crmcore_surveys.scoring import overall_metrics
from crmcore_surveys.settings import PLUGIN_NAME, settings_of
from crmcore_surveys.tables import (
    answers_table,
    invitations_table,
    responses_table,
    surveys_table,
)

#: Source name of the churn signals this plugin emits.
SIGNAL_SOURCE = PLUGIN_NAME

_CHUNK = 400
_PROFILE_RESPONSES = 50


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _CHUNK):
        yield wanted[start : start + _CHUNK]


def _nps_category(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id)
def profile_section(
    crm: CRM, customer: Customer, *, ctx: UnitOfWork | None = None
) -> dict[str, Any] | None:
    """The customer's latest scores per survey, response count and open invitations."""
    if customer.id is None:
        return None
    metadata = crm.metadata
    responses, answers = responses_table(metadata), answers_table(metadata)
    invitations, surveys = invitations_table(metadata), surveys_table(metadata)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(responses, surveys.c.key, surveys.c.version)
            .join(surveys, surveys.c.id == responses.c.survey_id)
            .where(responses.c.customer_id == customer.id)
            .order_by(responses.c.answered_at.desc(), responses.c.id.desc())
            .limit(_PROFILE_RESPONSES)
        ).all()
        total = uow.connection.execute(
            select(func.count()).where(responses.c.customer_id == customer.id)
        ).scalar_one()
        pending = uow.connection.execute(
            select(func.count()).where(
                invitations.c.customer_id == customer.id, invitations.c.status == "sent"
            )
        ).scalar_one()
        latest: dict[str, Any] = {}
        for row in rows:
            latest.setdefault(row.key, row)
        ratings: dict[int, dict[str, int]] = {}
        if latest:
            ids = [r.id for r in latest.values()]
            for rid, qkey, rating in uow.connection.execute(
                select(answers.c.response_id, answers.c.question_key, answers.c.rating).where(
                    answers.c.response_id.in_(ids), answers.c.rating.is_not(None)
                )
            ):
                ratings.setdefault(rid, {})[qkey] = int(rating)
        versions = {
            r.survey_id: survey_by_id(uow.connection, crm, r.survey_id) for r in latest.values()
        }
    if not total and not pending:
        return None
    scores = {}
    for key, row in sorted(latest.items()):
        definition = versions[row.survey_id].definition
        given = ratings.get(row.id, {})
        entry: dict[str, Any] = {
            "version": row.version,
            "answered_at": row.answered_at.isoformat(),
        }
        for question in definition.questions:
            if question.metric and question.id in given:
                entry[question.metric] = given[question.id]
                if question.metric == "nps":
                    entry["nps_category"] = _nps_category(given[question.id])
        index = response_index(definition, given)
        if index is not None:
            entry["index"] = round(index, 2)
        if row.alert_metric is not None:
            entry["low_score"] = {"metric": row.alert_metric, "score": row.alert_score}
        scores[key] = entry
    return {"responses": int(total), "pending_invitations": int(pending), "latest": scores}


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period) -> dict[str, Any]:
    """KPIs for ``crm report``: NPS, CSAT %, CES, responses, response rate, low scores."""
    return overall_metrics(crm, period)


@requires(Action.READ, customer="customer_ids")
def churn_signals(
    crm: CRM, customer_ids: Sequence[int], *, ctx: UnitOfWork | None = None
) -> list[ChurnSignal]:
    """A signal per customer with low-score responses in the last ``churn_window_days``.

    Weight ``min(0.9, 0.4 + 0.15 * (low scores - 1))``; the reason names the latest.
    """
    days = settings_of(crm).churn_window_days
    since = crm.clock() - timedelta(days=days)
    responses, surveys = responses_table(crm.metadata), surveys_table(crm.metadata)
    signals = []
    with crm.reading(ctx) as uow:
        for chunk in _chunks(customer_ids):
            ranked = (
                select(
                    responses.c.customer_id,
                    responses.c.alert_metric,
                    responses.c.alert_score,
                    responses.c.answered_at,
                    surveys.c.key,
                    func.row_number()
                    .over(
                        partition_by=responses.c.customer_id,
                        order_by=(responses.c.answered_at.desc(), responses.c.id.desc()),
                    )
                    .label("rn"),
                    func.count().over(partition_by=responses.c.customer_id).label("n"),
                )
                .join(surveys, surveys.c.id == responses.c.survey_id)
                .where(
                    responses.c.customer_id.in_(chunk),
                    responses.c.alert_metric.is_not(None),
                    responses.c.answered_at >= since,
                )
                .subquery()
            )
            for row in uow.connection.execute(
                select(ranked).where(ranked.c.rn == 1).order_by(ranked.c.customer_id)
            ):
                n = int(row.n)
                score = f"{row.alert_score:g}"
                signals.append(
                    ChurnSignal(
                        customer_id=row.customer_id,
                        source=SIGNAL_SOURCE,
                        reason=(
                            f"{n} low survey score{'s' if n > 1 else ''} in {days} days "
                            f"(latest {row.alert_metric} {score} in {row.key})"
                        ),
                        weight=min(0.9, 0.4 + 0.15 * (n - 1)),
                    )
                )
    return signals


@requires(Action.EXPORT, customer="customer_id")
def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Everything held on the customer: invitations, responses with answers. JSON-safe."""
    metadata = ctx.crm.metadata
    responses, answers = responses_table(metadata), answers_table(metadata)
    invitations, surveys = invitations_table(metadata), surveys_table(metadata)
    connection = ctx.connection
    invited = connection.execute(
        select(invitations, surveys.c.key, surveys.c.version)
        .join(surveys, surveys.c.id == invitations.c.survey_id)
        .where(invitations.c.customer_id == customer_id)
        .order_by(invitations.c.id)
    ).all()
    rows = connection.execute(
        select(responses, surveys.c.key, surveys.c.version)
        .join(surveys, surveys.c.id == responses.c.survey_id)
        .where(responses.c.customer_id == customer_id)
        .order_by(responses.c.id)
    ).all()
    if not invited and not rows:
        return None
    given: dict[int, dict[str, Any]] = {}
    ids = [r.id for r in rows]
    for start in range(0, len(ids), _CHUNK):
        for a in connection.execute(
            select(answers).where(answers.c.response_id.in_(ids[start : start + _CHUNK]))
        ):
            value = next(
                (v for v in (a.rating, a.choice, a.choices, a.text) if v is not None), None
            )
            given.setdefault(a.response_id, {})[a.question_key] = value
    return {
        "invitations": [
            {
                "survey": r.key,
                "version": r.version,
                "token": r.token,
                "channel": r.channel,
                "status": r.status,
                "stratum": r.stratum,
                "sent_at": r.sent_at.isoformat(),
                "answered_at": r.answered_at.isoformat() if r.answered_at else None,
            }
            for r in invited
        ],
        "responses": [
            {
                "id": r.id,
                "survey": r.key,
                "version": r.version,
                "answered_at": r.answered_at.isoformat(),
                "channel": r.channel,
                "comment": r.comment,
                "answers": given.get(r.id, {}),
                "low_score": None
                if r.alert_metric is None
                else {
                    "metric": r.alert_metric,
                    "score": r.alert_score,
                    "threshold": r.alert_threshold,
                },
            }
            for r in rows
        ],
    }


@requires(Action.ERASE, customer="customer_id")
def erase(ctx: UnitOfWork, customer_id: int) -> None:
    """Right to erasure: unlink the customer's responses and drop everything personal.

    Invitations (tokens) are deleted; responses lose their customer, invitation,
    interaction and comment; free-text answers are deleted. Ratings and choices stay,
    unlinked, so survey scores keep adding up.
    """
    metadata = ctx.crm.metadata
    responses, answers = responses_table(metadata), answers_table(metadata)
    invitations = invitations_table(metadata)
    theirs = select(responses.c.id).where(responses.c.customer_id == customer_id)
    ctx.connection.execute(
        delete(answers).where(answers.c.response_id.in_(theirs), answers.c.text.is_not(None))
    )
    ctx.connection.execute(
        update(responses)
        .where(responses.c.customer_id == customer_id)
        .values(customer_id=None, invitation_id=None, interaction_id=None, comment=None)
    )
    ctx.connection.execute(delete(invitations).where(invitations.c.customer_id == customer_id))


@requires(Action.DELETE, customer="customer_ids")
def forget(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the responses, answers and invitations of customers about to be deleted."""
    metadata = ctx.crm.metadata
    responses, answers = responses_table(metadata), answers_table(metadata)
    invitations = invitations_table(metadata)
    for chunk in _chunks(customer_ids):
        theirs = select(responses.c.id).where(responses.c.customer_id.in_(chunk))
        ctx.connection.execute(delete(answers).where(answers.c.response_id.in_(theirs)))
        ctx.connection.execute(delete(responses).where(responses.c.customer_id.in_(chunk)))
        ctx.connection.execute(delete(invitations).where(invitations.c.customer_id.in_(chunk)))


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
