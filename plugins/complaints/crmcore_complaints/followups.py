"""Closing the loop with surveys: a low score opens a follow-up complaint, once per response.

Implements the surveys plugin's ``surveys_low_score`` hook (see
:mod:`crmcore_complaints.plugin`); nothing here imports the surveys plugin,
and without it the hook is simply never called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_complaints.entities import Complaint
from crmcore_complaints.service import ComplaintService
from crmcore_complaints.settings import settings_of
from crmcore_complaints.tables import cases_table

#: ``source`` of follow-up complaints; ``source_ref`` is the survey response id.
SOURCE = "survey"

_CHUNK = 400


def _description(response: Mapping[str, Any]) -> str:
    text = (
        f"Low {response.get('metric')} score {response.get('score')} "
        f"(threshold {response.get('threshold')}) on survey {response.get('survey_key')} "
        f"v{response.get('survey_version')}"
    )
    comment = response.get("comment")
    return f"{text}: {comment}" if comment else text


@requires(Action.WRITE, scoped=True)  # opened through ComplaintService.open_many, which guards
def open_followups(ctx: UnitOfWork, responses: Sequence[Mapping[str, Any]]) -> list[Complaint]:
    """Open one follow-up complaint per low-score response not followed up yet.

    Inside the unit of work that recorded the responses. Idempotent per
    ``response_id``: a response already followed up (this batch or an
    earlier one) is skipped. Category and severity come from
    ``[plugins.complaints.survey_followup]``; ``enabled = false`` turns it off.
    One read for the batch, then the batch intake path.
    """
    settings = settings_of(ctx.crm)
    if not settings.followup_enabled or not responses:
        return []
    cases = cases_table(ctx.crm.metadata)
    refs = list(dict.fromkeys(str(r["response_id"]) for r in responses))
    done: set[str] = set()
    for start in range(0, len(refs), _CHUNK):
        done.update(
            ctx.connection.execute(
                select(cases.c.source_ref).where(
                    cases.c.source == SOURCE, cases.c.source_ref.in_(refs[start : start + _CHUNK])
                )
            ).scalars()
        )
    todo: dict[str, Mapping[str, Any]] = {}
    for response in responses:
        ref = str(response["response_id"])
        if ref not in done and ref not in todo:
            todo[ref] = response
    if not todo:
        return []
    return ComplaintService(ctx.crm).open_many(
        (
            {
                "customer_id": response["customer_id"],
                "category": settings.followup_category,
                "severity": settings.followup_severity.value,
                "channel": "other",
                "reference": f"survey response {ref}",
                "description": _description(response),
                "source_ref": ref,
            }
            for ref, response in todo.items()
        ),
        ctx=ctx,
        source=SOURCE,
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
