"""Hooks the surveys plugin adds for other plugins to implement (via ``crm_add_hookspecs``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def surveys_low_score(ctx: UnitOfWork, responses: Sequence[Mapping[str, Any]]) -> None:
    """React to responses with a detractor or below-threshold score (close the loop).

    Called inside the unit of work that records the responses, once per batch of
    responses (a single response is a batch of one), with at most one mapping per
    response: ``response_id``, ``survey_id``, ``survey_key``, ``survey_version``,
    ``customer_id``, ``metric`` (``"nps"``, ``"csat"``, ``"ces"``, ``"index"`` or
    ``"rating"``), ``score`` (float, on the question's scale; 0-100 for ``index``),
    ``threshold`` (float; the score is below it), ``answered_at`` (aware datetime)
    and ``comment`` (str or None). The complaints plugin opens a follow-up case.
    Write through ``ctx.connection``; raising rolls the recording back.
    """


@hookspec
def surveys_invitations_created(ctx: UnitOfWork, invitations: Sequence[Mapping[str, Any]]) -> None:
    """Deliver new survey invitations (a messaging plugin sends them).

    Called by :func:`crmcore_surveys.distribution.invite` inside its unit of
    work, once per call that created any, with every invitation it created:
    ``invitation_id``, ``customer_id``, ``token`` (the personal, unguessable
    response token), ``survey_key``, ``survey_version``, ``survey_title``,
    ``channel`` (the invitation's channel) and ``sent_at`` (aware datetime).
    Queue what you send in your own tables and send it after commit. Raising
    rolls the invitations back.
    """
