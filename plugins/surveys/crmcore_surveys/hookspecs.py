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
