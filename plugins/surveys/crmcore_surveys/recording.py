"""The recorder behind :func:`crmcore_surveys.responses.record_responses`.

Per batch: one read of the invitations by token, one existence check of the
customers, one ``record_many`` of core interactions (kind ``survey``), one
executemany each for responses, answers and invitation updates, and one
``surveys_low_score`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
)
from crmcore.access import Action
from crmcore.storage.ids import allocate_ids
from crmcore_surveys.alerts import low_score
from crmcore_surveys.answers import DEFAULT_MAX_TEXT, validate_answers
from crmcore_surveys.catalog import SurveyVersion, latest_row, survey_by_id
from crmcore_surveys.settings import settings_of
from crmcore_surveys.tables import (
    answers_table,
    invitations_table,
    responses_table,
    surveys_table,
)

#: Called with (position in the input, the rejected input, why) when skipping invalid rows.
RejectHandler = Callable[[int, Any, CRMError], None]

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


class Recorder:
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
        """Record ``batch`` ((position, item) pairs); bad items go to ``on_reject``.

        Without ``on_reject`` the first bad item raises (prefixed ``responses[i]:``
        unless it is the only item).
        """

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
