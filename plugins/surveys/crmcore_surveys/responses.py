"""Recording responses: validate every answer, store, record an Interaction, fire alerts.

One response or a stream of them (bulk import) is one unit of work. Per batch:
one read of the invitations by token, one existence check of the customers, one
``record_many`` of core interactions (kind ``survey``), one executemany each for
responses, answers and invitation updates, and one ``surveys_low_score`` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import bindparam, insert, select, update

from crmcore import (
    CRM,
    Channel,
    ConflictError,
    CRMError,
    NotFoundError,
    UnitOfWork,
    ValidationError,
    ValidationErrors,
)
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.ids import allocate_ids
from crmcore_surveys.catalog import SurveyVersion, latest_row, survey_by_id
from crmcore_surveys.definitions import Definition, Question
from crmcore_surveys.settings import Settings, settings_of
from crmcore_surveys.tables import (
    answers_table,
    invitations_table,
    responses_table,
    surveys_table,
)

#: Called with (position in the input, the rejected input, why) when skipping invalid rows.
RejectHandler = Callable[[int, Any, CRMError], None]

#: Longest free-text answer or comment accepted when the question sets no ``max_length``.
DEFAULT_MAX_TEXT = 10_000

#: Order in which a response's alert candidates win (one alert per response).
ALERT_PRIORITY = ("nps", "csat", "ces", "overall", "index", "rating")

_SOURCES = ("api", "cli", "import")
_CHUNK = 400


@frozen
class RecordedResponse:
    """A stored response; ``alert`` is the ``surveys_low_score`` payload it fired, if any."""

    id: int
    survey_id: int
    survey_key: str
    survey_version: int
    customer_id: int
    invitation_id: int | None
    interaction_id: int
    answered_at: datetime
    ratings: Mapping[str, int]
    alert: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        alert = None
        if self.alert is not None:
            alert = {**self.alert, "answered_at": self.answered_at.isoformat()}
        return {
            "id": self.id,
            "survey": self.survey_key,
            "version": self.survey_version,
            "customer_id": self.customer_id,
            "invitation_id": self.invitation_id,
            "interaction_id": self.interaction_id,
            "answered_at": self.answered_at.isoformat(),
            "ratings": dict(self.ratings),
            "alert": alert,
        }


@frozen
class _Prepared:
    position: int
    survey: SurveyVersion
    customer_id: int
    invitation_id: int | None
    token: str | None
    answered_at: datetime
    channel: str
    comment: str | None
    rows: tuple[dict[str, Any], ...]
    ratings: Mapping[str, int]


# --- answers -----------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _rating(question: Question, value: Any, where: str) -> int:
    scale = question.scale_label
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValidationError(
            f"{where}: expected a whole number on the scale {scale}, got {value!r}",
            field=where,
            value=value,
        )
    if not math.isfinite(number) or number != int(number):
        raise ValidationError(
            f"{where}: expected a whole number on the scale {scale}, got {value!r}",
            field=where,
            value=value,
        )
    rating = int(number)
    assert question.scale_min is not None and question.scale_max is not None
    if not question.scale_min <= rating <= question.scale_max:
        raise ValidationError(
            f"{where}: {rating} is outside the scale {scale}", field=where, value=value
        )
    return rating


def _choices(question: Question, value: Any, where: str) -> list[str]:
    items = value.split("|") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValidationError(
            f"{where}: expected a list of options, got {value!r}", field=where, value=value
        )
    chosen = [i.strip() for i in items if i.strip()]
    for item in chosen:
        if item not in question.options:
            raise ValidationError(
                f"{where}: {item!r} is not one of: {', '.join(question.options)}",
                field=where,
                value=value,
            )
    if len(set(chosen)) != len(chosen):
        raise ValidationError(f"{where}: an option is chosen twice", field=where, value=value)
    if question.max_choices is not None and len(chosen) > question.max_choices:
        raise ValidationError(
            f"{where}: {len(chosen)} options chosen, at most {question.max_choices} allowed",
            field=where,
            value=value,
        )
    if question.min_choices is not None and len(chosen) < question.min_choices:
        raise ValidationError(
            f"{where}: {len(chosen)} options chosen, at least {question.min_choices} needed",
            field=where,
            value=value,
        )
    return chosen


def validate_answers(
    survey: SurveyVersion, answers: Any
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Check ``answers`` (question id -> value) against the survey's questions.

    Returns the answer rows (without ``response_id``) and the ratings by question.
    Ratings must be whole numbers on the question's scale (``"7"`` and ``7.0`` are
    accepted); single choices one of the options; multiple choices a list (or a
    ``|``-separated string) of distinct options; texts at most ``max_length``
    characters. Blank values count as unanswered. Raises ValidationError naming
    ``answers.<question id>`` (ValidationErrors when several are wrong).
    """
    definition: Definition = survey.definition
    if not isinstance(answers, Mapping):
        raise ValidationError(
            f"answers: expected an object of question id to answer, got {type(answers).__name__}",
            field="answers",
        )
    errors: list[ValidationError] = []
    rows: list[dict[str, Any]] = []
    ratings: dict[str, int] = {}
    for qid in answers:
        if definition.question(str(qid)) is None:
            where = f"answers.{qid}"
            errors.append(
                ValidationError(
                    f"{where}: no question {qid!r} in survey {survey.key} version {survey.version}",
                    field=where,
                )
            )
    for question in definition.questions:
        where = f"answers.{question.id}"
        value = answers.get(question.id)
        if _blank(value):
            if question.required:
                errors.append(ValidationError(f"{where}: required", field=where))
            continue
        row: dict[str, Any] = {
            "question_key": question.id,
            "rating": None,
            "choice": None,
            "choices": None,
            "text": None,
        }
        try:
            if question.type == "rating":
                row["rating"] = ratings[question.id] = _rating(question, value, where)
            elif question.type == "single_choice":
                if not isinstance(value, str) or value.strip() not in question.options:
                    raise ValidationError(
                        f"{where}: {value!r} is not one of: {', '.join(question.options)}",
                        field=where,
                        value=value,
                    )
                row["choice"] = value.strip()
            elif question.type == "multiple_choice":
                row["choices"] = _choices(question, value, where)
            else:
                limit = question.max_length or DEFAULT_MAX_TEXT
                if not isinstance(value, str):
                    raise ValidationError(
                        f"{where}: expected text, got {type(value).__name__}", field=where
                    )
                if len(value) > limit:
                    raise ValidationError(
                        f"{where}: longer than {limit} characters ({len(value)})", field=where
                    )
                row["text"] = value
        except ValidationError as exc:
            errors.append(exc)
            continue
        rows.append(row)
    if not errors and not rows:
        errors.append(ValidationError("answers: no question answered", field="answers"))
    if errors:
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
    return rows, ratings


# --- alerts ------------------------------------------------------------------------


def response_index(definition: Definition, ratings: Mapping[str, int]) -> float | None:
    """A response's weighted satisfaction index (0-100) over its answered index questions.

    ``sum v_q x_q / sum v_q`` with ``x_q = 100 (r - min) / (max - min)`` and the
    weights of :meth:`Definition.index_weights` (AHP weights when the survey declares
    them, else the declared ones). ``None`` when no index question was answered.
    """
    weights = definition.index_weights(definition.ahp_dimension_weights())
    total = weighted = 0.0
    for question in definition.index_questions:
        if question.id in ratings and weights.get(question.id, 0.0) > 0:
            assert question.scale_min is not None and question.scale_max is not None
            span = question.scale_max - question.scale_min
            x = 100.0 * (ratings[question.id] - question.scale_min) / span
            weighted += weights[question.id] * x
            total += weights[question.id]
    return weighted / total if total > 0 else None


def low_score(
    definition: Definition, ratings: Mapping[str, int], settings: Settings
) -> tuple[str, float, float] | None:
    """The (metric, score, threshold) of the response's alert, or ``None``.

    Candidates, each firing when ``score < threshold``: an ``nps`` answer (threshold
    ``alert_below`` or ``nps_threshold``); a ``csat``, ``ces`` or overall answer
    (``alert_below`` or ``min + low_score_percent% of the scale span``); the response's
    index (``index_threshold``); any other rating with ``alert_below``. The first
    firing in :data:`ALERT_PRIORITY` order wins (an overall answer reports metric
    ``rating``).
    """
    if not settings.low_score_alerts:
        return None
    found: dict[str, tuple[str, float, float]] = {}
    for question in definition.questions:
        if question.type != "rating" or question.id not in ratings:
            continue
        assert question.scale_min is not None and question.scale_max is not None
        score = float(ratings[question.id])
        span = question.scale_max - question.scale_min
        relative = question.scale_min + settings.low_score_percent / 100.0 * span
        if question.metric == "nps":
            slot, metric = "nps", "nps"
            threshold = (
                question.alert_below if question.alert_below is not None else settings.nps_threshold
            )
        elif question.metric in ("csat", "ces"):
            slot = metric = str(question.metric)
            threshold = question.alert_below if question.alert_below is not None else relative
        elif question.role == "overall":
            slot, metric = "overall", "rating"
            threshold = question.alert_below if question.alert_below is not None else relative
        elif question.alert_below is not None:
            slot, metric, threshold = "rating", "rating", question.alert_below
        else:
            continue
        if score < threshold and slot not in found:
            found[slot] = (metric, score, float(threshold))
    index = response_index(definition, ratings)
    if index is not None and index < settings.index_threshold:
        found["index"] = ("index", index, float(settings.index_threshold))
    for slot in ALERT_PRIORITY:
        if slot in found:
            return found[slot]
    return None


# --- recording ---------------------------------------------------------------------


def _when(value: Any, now: datetime) -> datetime:
    if value is None or value == "":
        return now
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"answered_at: not an ISO 8601 timestamp: {value!r}", field="answered_at"
            ) from None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValidationError(
            f"answered_at: must be a timezone-aware datetime, got {value!r}", field="answered_at"
        )
    if moment > now:
        raise ValidationError(
            f"answered_at: {moment.isoformat()} is in the future", field="answered_at"
        )
    return moment


def _customer_id(value: Any) -> int:
    if isinstance(value, bool):
        raise ValidationError(
            f"customer_id: expected an integer, got {value!r}", field="customer_id"
        )
    try:
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValidationError(
            f"customer_id: expected an integer, got {value!r}", field="customer_id"
        ) from None


def _response_channel(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    try:
        return Channel(str(value).strip()).value
    except ValueError:
        allowed = ", ".join(c.value for c in Channel)
        raise ValidationError(
            f"channel: {value!r} is not one of: {allowed}", field="channel"
        ) from None


class _Recorder:
    """Records batches of responses inside one unit of work."""

    def __init__(self, crm: CRM, uow: UnitOfWork, source: str) -> None:
        self.crm = crm
        self.uow = uow
        self.source = source
        self.settings = settings_of(crm)
        self.surveys: dict[int, SurveyVersion] = {}
        self.latest: dict[str, SurveyVersion] = {}
        self.tokens_seen: set[str] = set()

    def _survey(self, survey_id: int) -> SurveyVersion:
        if survey_id not in self.surveys:
            self.surveys[survey_id] = survey_by_id(self.uow.connection, self.crm, survey_id)
        return self.surveys[survey_id]

    def _survey_by_key(self, key: Any, version: Any) -> SurveyVersion:
        if not isinstance(key, str) or not key:
            raise ValidationError("survey: give a token or a survey key", field="survey")
        if version not in (None, ""):
            table = surveys_table(self.crm.metadata)
            try:
                number = int(version)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"version: expected an integer, got {version!r}", field="version"
                ) from None
            found = self.uow.connection.execute(
                select(table.c.id).where(table.c.key == key, table.c.version == number)
            ).scalar()
            if found is None:
                raise NotFoundError(f"survey: no survey {key!r} version {number}")
            return self._survey(int(found))
        if key not in self.latest:
            row = latest_row(self.uow.connection, self.crm, key)
            if row is None:
                raise NotFoundError(f"survey: no survey {key!r}")
            self.latest[key] = self._survey(row.id)
        return self.latest[key]

    def _invitations(self, tokens: Sequence[str]) -> dict[str, Any]:
        table = invitations_table(self.crm.metadata)
        found: dict[str, Any] = {}
        for start in range(0, len(tokens), _CHUNK):
            query = select(table).where(table.c.token.in_(tokens[start : start + _CHUNK]))
            if self.uow.connection.dialect.name == "postgresql":
                query = query.with_for_update()
            found.update((r.token, r) for r in self.uow.connection.execute(query))
        return found

    def _prepare(self, position: int, item: Any, invitations: Mapping[str, Any]) -> _Prepared:
        if not isinstance(item, Mapping):
            raise ValidationError(
                f"response: expected an object, got {type(item).__name__}", field="response"
            )
        token = item.get("token") or None
        invitation_id = None
        channel_default = "other"
        if token is not None:
            token = str(token).strip()
            invitation = invitations.get(token)
            if invitation is None:
                raise NotFoundError(f"token: no invitation with token {token!r}")
            if invitation.status == "answered" or token in self.tokens_seen:
                raise ConflictError(
                    f"token: invitation {invitation.id} was already answered (one response "
                    "per invitation)"
                )
            survey = self._survey(invitation.survey_id)
            customer_id = invitation.customer_id
            given = item.get("customer_id")
            if given not in (None, "") and _customer_id(given) != customer_id:
                raise ValidationError(
                    f"customer_id: {given} does not match the invitation's customer",
                    field="customer_id",
                )
            invitation_id = invitation.id
            channel_default = invitation.channel
        else:
            survey = self._survey_by_key(item.get("survey"), item.get("version"))
            if item.get("customer_id") in (None, ""):
                raise ValidationError(
                    "customer_id: required when no invitation token is given", field="customer_id"
                )
            customer_id = _customer_id(item.get("customer_id"))
        rows, ratings = validate_answers(survey, item.get("answers"))
        comment = item.get("comment") or None
        if comment is not None and (
            not isinstance(comment, str) or len(comment) > DEFAULT_MAX_TEXT
        ):
            raise ValidationError(
                f"comment: expected text of at most {DEFAULT_MAX_TEXT} characters", field="comment"
            )
        return _Prepared(
            position=position,
            survey=survey,
            customer_id=customer_id,
            invitation_id=invitation_id,
            token=token,
            answered_at=_when(item.get("answered_at"), self.uow.now),
            channel=_response_channel(item.get("channel"), channel_default),
            comment=comment,
            rows=tuple(rows),
            ratings=ratings,
        )

    def record_batch(
        self, batch: Sequence[tuple[int, Any]], on_reject: RejectHandler | None
    ) -> list[RecordedResponse]:
        def reject(position: int, item: Any, exc: CRMError) -> None:
            if on_reject is None:
                if len(batch) > 1 or position > 0:
                    exc.args = (f"responses[{position}]: {exc}",)
                raise exc
            on_reject(position, item, exc)

        tokens = sorted(
            {
                str(item["token"]).strip()
                for _, item in batch
                if isinstance(item, Mapping) and item.get("token")
            }
        )
        invitations = self._invitations(tokens)
        prepared: list[tuple[Any, _Prepared]] = []
        for position, item in batch:
            try:
                ready = self._prepare(position, item, invitations)
            except CRMError as exc:
                reject(position, item, exc)
                continue
            if ready.token is not None:
                self.tokens_seen.add(ready.token)
            prepared.append((item, ready))
        wanted = {p.customer_id for _, p in prepared}
        self.crm.access.guard(self.uow, wanted, Action.WRITE)  # one query per batch
        known = self.crm.customers.exists(wanted, ctx=self.uow)
        kept: list[_Prepared] = []
        for item, ready in prepared:
            if ready.customer_id not in known:
                reject(
                    ready.position,
                    item,
                    NotFoundError(f"customer_id: customer {ready.customer_id} does not exist"),
                )
                continue
            kept.append(ready)
        if not kept:
            return []
        return self._store(kept)

    def _store(self, kept: Sequence[_Prepared]) -> list[RecordedResponse]:
        metadata = self.crm.metadata
        responses = responses_table(metadata)
        connection = self.uow.connection
        ids = allocate_ids(connection, responses, len(kept))
        interactions = self.crm.interactions.record_many(
            (
                {
                    "customer_id": p.customer_id,
                    "kind": "survey",
                    "channel": p.channel,
                    "direction": "inbound",
                    "occurred_at": p.answered_at,
                    "text": p.comment,
                    "payload": {
                        "survey": p.survey.key,
                        "survey_version": p.survey.version,
                        "response_id": rid,
                        "ratings": dict(p.ratings),
                    },
                }
                for rid, p in zip(ids, kept, strict=True)
            ),
            ctx=self.uow,
        )
        recorded: list[RecordedResponse] = []
        response_rows: list[dict[str, Any]] = []
        answer_rows: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        for rid, p, interaction in zip(ids, kept, interactions, strict=True):
            found = low_score(p.survey.definition, p.ratings, self.settings)
            alert = None
            if found is not None:
                metric, score, threshold = found
                alert = {
                    "response_id": rid,
                    "survey_id": p.survey.id,
                    "survey_key": p.survey.key,
                    "survey_version": p.survey.version,
                    "customer_id": p.customer_id,
                    "metric": metric,
                    "score": score,
                    "threshold": threshold,
                    "answered_at": p.answered_at,
                    "comment": p.comment,
                }
                alerts.append(alert)
            response_rows.append(
                {
                    "id": rid,
                    "survey_id": p.survey.id,
                    "customer_id": p.customer_id,
                    "invitation_id": p.invitation_id,
                    "interaction_id": interaction.id,
                    "answered_at": p.answered_at,
                    "channel": p.channel,
                    "source": self.source,
                    "comment": p.comment,
                    "alert_metric": found[0] if found else None,
                    "alert_score": found[1] if found else None,
                    "alert_threshold": found[2] if found else None,
                }
            )
            answer_rows.extend({**row, "response_id": rid} for row in p.rows)
            recorded.append(
                RecordedResponse(
                    id=rid,
                    survey_id=p.survey.id,
                    survey_key=p.survey.key,
                    survey_version=p.survey.version,
                    customer_id=p.customer_id,
                    invitation_id=p.invitation_id,
                    interaction_id=int(interaction.id or 0),
                    answered_at=p.answered_at,
                    ratings=p.ratings,
                    alert=alert,
                )
            )
        connection.execute(insert(responses), response_rows)
        connection.execute(insert(answers_table(metadata)), answer_rows)
        self.crm.audit.record_batch(
            self.uow,
            "surveys.response",
            "survey_response",
            [(r.id, r.customer_id, {"survey": r.survey_key}) for r in recorded],
        )
        answered = [
            {"iid": p.invitation_id, "at": p.answered_at}
            for p in kept
            if p.invitation_id is not None
        ]
        if answered:
            invitations = invitations_table(metadata)
            connection.execute(
                update(invitations)
                .where(invitations.c.id == bindparam("iid"))
                .values(status="answered", answered_at=bindparam("at")),
                answered,
            )
        if alerts:
            self.crm.call_hook("surveys_low_score", ctx=self.uow, responses=alerts)
        return recorded


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
    if batch_size < 1:
        raise ValidationError(
            f"batch_size: must be at least 1, got {batch_size}", field="batch_size"
        )
    stored: list[RecordedResponse] = []
    with crm.unit_of_work(actor, ctx) as uow:
        recorder = _Recorder(crm, uow, source)
        batch: list[tuple[int, Any]] = []
        for position, item in enumerate(items):
            batch.append((position, item))
            if len(batch) >= batch_size:
                done = recorder.record_batch(batch, on_reject)
                if keep:
                    stored.extend(done)
                batch = []
        if batch:
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
