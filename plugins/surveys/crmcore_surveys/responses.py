"""Recording responses: validate every answer, store, record an Interaction, fire alerts.

One response or a stream of them (bulk import) is one unit of work. Per batch:
one read of the invitations by token, one existence check of the customers, one
``record_many`` of core interactions (kind ``survey``), one executemany each for
responses, answers and invitation updates, and one ``surveys_low_score`` call.
Answers are checked by :mod:`crmcore_surveys.answers`, alerts decided by
:mod:`crmcore_surveys.alerts`, batches stored by :mod:`crmcore_surveys.recording`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.batches import numbered_batches
from crmcore_surveys.recording import RecordedResponse, Recorder, RejectHandler

_SOURCES = ("api", "cli", "import")


@requires(Action.WRITE, scoped=True)  # every batch guards its customers
def record_responses(
    crm: CRM,
    items: Iterable[Mapping[str, Any]],
    *,
    source: str = "api",
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
    batch_size: int = 500,
    on_reject: RejectHandler | None = None,
    keep: bool = True,
) -> list[RecordedResponse]:
    """Record many responses in one transaction, streamed in batches.

    Each item: ``token`` (an invitation's) or ``survey`` (key; optional
    ``version``, default the latest) with ``customer_id``; ``answers``
    (question id -> value); optional ``answered_at`` (aware, default now, never in
    the future), ``channel`` (default the invitation's, else ``other``) and
    ``comment``. All-or-nothing by default: the first bad item raises
    (ValidationError naming ``responses[i]: answers.<question>``, NotFoundError,
    ConflictError for an invitation already answered) and nothing is stored. With
    ``on_reject`` bad items are handed to it and the rest stored. ``keep=False``
    returns an empty list (for large imports).
    """
    if source not in _SOURCES:
        raise ValidationError(f"source: {source!r} is not one of: {', '.join(_SOURCES)}")
    batches = numbered_batches(items, batch_size)
    stored: list[RecordedResponse] = []
    with crm.unit_of_work(actor, ctx) as uow:
        recorder = Recorder(crm, uow, source)
        for batch in batches:
            done = recorder.record_batch(batch, on_reject)
            if keep:
                stored.extend(done)
    return stored


@requires(Action.WRITE, scoped=True)  # through record_responses
def record_response(
    crm: CRM,
    *,
    answers: Mapping[str, Any],
    token: str | None = None,
    survey: str | None = None,
    version: int | None = None,
    customer_id: int | None = None,
    answered_at: datetime | None = None,
    channel: str | None = None,
    comment: str | None = None,
    source: str = "api",
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> RecordedResponse:
    """Record one response (see :func:`record_responses`); raises as it does, unprefixed."""
    item = {
        "token": token,
        "survey": survey,
        "version": version,
        "customer_id": customer_id,
        "answers": answers,
        "answered_at": answered_at,
        "channel": channel,
        "comment": comment,
    }
    return record_responses(crm, [item], source=source, actor=actor, ctx=ctx)[0]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
