"""B2B relationship assessments become core's relationship scores (``crm.accounts``).

When a response to a survey with B2B relationship dimensions (the ``b2b``
template, or any survey whose dimensions are named like it) is recorded,
each dimension's mean rating is put on core's 0-100 scale,
``(rating - scale_min) / (scale_max - scale_min) * 100`` (a 1-7 answer ``v``
is ``(v - 1) / 6 * 100``), and recorded with ``crm.accounts.record_scores``
(``source="survey"``, measured when the response was answered):

* a response of an organisation scores the organisation's account;
* a response of a person scores the account of every organisation the person
  was a contact of on that day, as that decision maker's scores
  (``contact_id``).

It runs in the response's unit of work (``crm_interactions_recorded``, on the
survey interaction the response records). An account the acting user may not
write gets no scores from it; the response itself is stored all the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import select

from crmcore import Customer, CustomerKind, Interaction, InteractionKind, UnitOfWork
from crmcore.access import AccessDeniedError, Action
from crmcore.scoping import enforce_declared, requires
from crmcore_surveys.catalog import survey_by_id
from crmcore_surveys.definitions import Definition
from crmcore_surveys.tables import surveys_table

#: Survey dimension names (as the ``b2b`` template writes them, lower case) -> core's
#: dimension codes (``crmcore.model.accounts.DIMENSIONS``), which are accepted as names too.
DIMENSION_CODES: Mapping[str, str] = {
    name: code
    for label, code in (
        ("acceptance/recognition", "acceptance_recognition"),
        ("activity participation", "activity_participation"),
        ("information flow", "information_flow"),
        ("day-to-day guidance", "daily_guidance"),
        ("project support", "project_support"),
        ("competitive preference", "competitive_preference"),
    )
    for name in (label, code)
}
#: The source the scores are recorded under.
SCORE_SOURCE = "survey"


def _code(dimension: str) -> str | None:
    return DIMENSION_CODES.get(re.sub(r"\s+", " ", dimension.strip().lower()))


def relationship_scores(definition: Definition, ratings: Mapping[str, Any]) -> dict[str, float]:
    """Core's 0-100 score of each B2B dimension the ratings answer (see the module docstring)."""
    found: dict[str, list[float]] = {}
    for question in definition.index_questions:
        code = _code(str(question.dimension))
        value = ratings.get(question.id)
        low, high = question.scale_min, question.scale_max
        if code is None or low is None or high is None or high <= low:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        found.setdefault(code, []).append((float(value) - low) / (high - low) * 100)
    return {code: round(sum(v) / len(v), 6) for code, v in found.items()}


def _targets(
    ctx: UnitOfWork, customer: Customer, interaction: Interaction
) -> list[tuple[int, Any]]:
    """(account, contact or None) pairs a response of ``customer`` scores."""
    assert customer.id is not None
    if customer.kind is CustomerKind.ORGANIZATION:
        return [(customer.id, None)]
    day = interaction.occurred_at.astimezone(UTC).date()
    organisations = ctx.crm.accounts.organisations(customer.id, include_ended=True, ctx=ctx)
    return [(c.organisation_id, customer.id) for c in organisations if c.current_on(day)]


def _writable(ctx: UnitOfWork, account_id: int) -> bool:
    try:
        ctx.crm.access.guard(ctx, [account_id], Action.WRITE)
    except AccessDeniedError:
        return False
    return True


@requires(Action.WRITE, customer=lambda crm, ctx, a: [i.customer_id for i in a["interactions"]])
def record_relationship_scores(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> int:
    """Record the relationship scores of the B2B responses among ``interactions``; return how many.

    Called by ``crm_interactions_recorded``: looks at survey interactions whose
    payload names a survey and carries its ratings (what recording a
    response stores), one survey lookup per survey version in the batch.
    """
    surveys = surveys_table(ctx.crm.metadata)
    definitions: dict[tuple[str, int], Definition | None] = {}
    recorded = 0
    for interaction in interactions:
        payload = interaction.payload
        key, version, ratings = (payload.get(k) for k in ("survey", "survey_version", "ratings"))
        if interaction.kind is not InteractionKind.SURVEY or not isinstance(ratings, dict):
            continue
        if not isinstance(key, str) or isinstance(version, bool) or not isinstance(version, int):
            continue
        if (key, version) not in definitions:
            survey_id = ctx.connection.execute(
                select(surveys.c.id).where(surveys.c.key == key, surveys.c.version == version)
            ).scalar()
            definitions[(key, version)] = (
                None
                if survey_id is None
                else survey_by_id(ctx.connection, ctx.crm, survey_id).definition
            )
        definition = definitions[(key, version)]
        scores = {} if definition is None else relationship_scores(definition, ratings)
        if not scores:
            continue
        customer = ctx.crm.customers.get(interaction.customer_id, ctx=ctx)
        for account_id, contact_id in _targets(ctx, customer, interaction):
            if not _writable(ctx, account_id):
                continue
            ctx.crm.accounts.record_scores(
                account_id,
                scores,
                contact_id=contact_id,
                source=SCORE_SOURCE,
                measured_at=interaction.occurred_at,
                ctx=ctx,
            )
            recorded += len(scores)
    return recorded


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
