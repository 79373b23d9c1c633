"""The survey catalog: create, version, read and list survey definitions.

Editing a survey that already has responses creates a new version; old responses
keep the version they answered. Editing one without responses replaces its
latest version in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import Connection, delete, func, insert, select, update

from crmcore import CRM, ConflictError, NotFoundError, UnitOfWork
from crmcore.access import Action
from crmcore.audit import AuditEntry, acting_user
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.ids import allocate_ids
from crmcore_surveys.definitions import Definition, validate_definition
from crmcore_surveys.tables import (
    invitations_table,
    questions_table,
    responses_table,
    surveys_table,
)


@frozen
class SurveyVersion:
    """One stored version of a survey."""

    id: int
    key: str
    version: int
    title: str
    definition: Definition
    created_at: datetime
    created_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary including the definition."""
        return {
            "id": self.id,
            "key": self.key,
            "version": self.version,
            "title": self.title,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "definition": dict(self.definition.data),
        }


def _as_definition(definition: Mapping[str, Any] | Definition) -> Definition:
    if isinstance(definition, Definition):
        return definition
    return validate_definition(definition)


def _question_rows(survey_id: int, definition: Definition) -> list[dict[str, Any]]:
    return [
        {
            "survey_id": survey_id,
            "key": q.id,
            "position": q.position,
            "type": q.type,
            "scale_min": q.scale_min,
            "scale_max": q.scale_max,
            "dimension": q.dimension,
            "weight": q.weight,
            "metric": q.metric,
            "role": q.role,
            "pair": q.pair,
        }
        for q in definition.questions
    ]


def _from_row(row: Any) -> SurveyVersion:
    return SurveyVersion(
        id=row.id,
        key=row.key,
        version=row.version,
        title=row.title,
        definition=validate_definition(row.definition),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _insert_version(uow: UnitOfWork, definition: Definition, version: int) -> SurveyVersion:
    surveys = surveys_table(uow.crm.metadata)
    [survey_id] = allocate_ids(uow.connection, surveys, 1)
    uow.connection.execute(
        insert(surveys).values(
            id=survey_id,
            key=definition.key,
            version=version,
            title=definition.title,
            definition=dict(definition.data),
            created_at=uow.now,
            created_by=acting_user(uow),
        )
    )
    uow.connection.execute(
        insert(questions_table(uow.crm.metadata)), _question_rows(survey_id, definition)
    )
    return SurveyVersion(
        survey_id, definition.key, version, definition.title, definition, uow.now, acting_user(uow)
    )


def _audit(uow: UnitOfWork, action: str, survey: SurveyVersion) -> None:
    uow.crm.audit.record(
        uow,
        [
            AuditEntry(
                action, "survey", survey.id, None, {"key": survey.key, "version": survey.version}
            )
        ],
    )


def latest_row(connection: Connection, crm: CRM, key: str, *, lock: bool = False) -> Any:
    """The row of the latest version of survey ``key``, or ``None``."""
    surveys = surveys_table(crm.metadata)
    query = select(surveys).where(surveys.c.key == key).order_by(surveys.c.version.desc()).limit(1)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return connection.execute(query).first()


@requires(Action.WRITE)  # a survey is sent to everyone: managers, admins
def create_survey(
    crm: CRM,
    definition: Mapping[str, Any] | Definition,
    *,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> SurveyVersion:
    """Validate and store a new survey as version 1.

    Raises ValidationError naming the question and field for a bad definition, and
    ConflictError when a survey with that key exists (use :func:`update_survey`).
    """
    checked = _as_definition(definition)
    with crm.unit_of_work(actor, ctx) as uow:
        if latest_row(uow.connection, crm, checked.key) is not None:
            raise ConflictError(
                f"key: survey {checked.key!r} already exists; update it to create a new version"
            )
        created = _insert_version(uow, checked, 1)
        _audit(uow, "surveys.create", created)
        return created


@requires(Action.WRITE)
def update_survey(
    crm: CRM,
    definition: Mapping[str, Any] | Definition,
    *,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> SurveyVersion:
    """Store an edited definition of an existing survey (same ``key``).

    When the latest version has responses, a new version is created and old
    responses keep theirs; otherwise the latest version is replaced in place.
    An unchanged definition returns the latest version as is. Raises
    ValidationError for a bad definition, NotFoundError for an unknown key.
    """
    checked = _as_definition(definition)
    surveys = surveys_table(crm.metadata)
    questions = questions_table(crm.metadata)
    responses = responses_table(crm.metadata)
    with crm.unit_of_work(actor, ctx) as uow:
        row = latest_row(uow.connection, crm, checked.key, lock=True)
        if row is None:
            raise NotFoundError(f"key: no survey {checked.key!r}")
        if row.definition == dict(checked.data):
            return _from_row(row)
        answered = uow.connection.execute(
            select(func.count()).where(responses.c.survey_id == row.id)
        ).scalar_one()
        if answered:
            created = _insert_version(uow, checked, row.version + 1)
            _audit(uow, "surveys.update", created)
            return created
        uow.connection.execute(
            update(surveys)
            .where(surveys.c.id == row.id)
            .values(title=checked.title, definition=dict(checked.data))
        )
        uow.connection.execute(delete(questions).where(questions.c.survey_id == row.id))
        uow.connection.execute(insert(questions), _question_rows(row.id, checked))
        replaced = SurveyVersion(
            row.id, checked.key, row.version, checked.title, checked, row.created_at, row.created_by
        )
        _audit(uow, "surveys.update", replaced)
        return replaced


@requires(Action.READ, scoped=True)  # a definition holds no customer data
def get_survey(
    crm: CRM, key: str, version: int | None = None, *, ctx: UnitOfWork | None = None
) -> SurveyVersion:
    """Survey ``key`` at ``version`` (default the latest); NotFoundError when missing."""
    surveys = surveys_table(crm.metadata)
    with crm.reading(ctx) as uow:
        if version is None:
            row = latest_row(uow.connection, crm, key)
        else:
            row = uow.connection.execute(
                select(surveys).where(surveys.c.key == key, surveys.c.version == version)
            ).first()
    if row is None:
        which = f"{key!r}" if version is None else f"{key!r} version {version}"
        raise NotFoundError(f"survey: no survey {which}")
    return _from_row(row)


def survey_by_id(connection: Connection, crm: CRM, survey_id: int) -> SurveyVersion:
    """The survey version with this id (NotFoundError when missing)."""
    surveys = surveys_table(crm.metadata)
    row = connection.execute(select(surveys).where(surveys.c.id == survey_id)).first()
    if row is None:
        raise NotFoundError(f"survey: no survey version with id {survey_id}")
    return _from_row(row)


@requires(Action.READ, scoped=True)  # counts only visible customers
def list_surveys(crm: CRM, *, ctx: UnitOfWork | None = None) -> list[dict[str, Any]]:
    """Every survey (latest version) with its version count, invitations and responses."""
    surveys = surveys_table(crm.metadata)
    invitations = invitations_table(crm.metadata)
    responses = responses_table(crm.metadata)
    # Counts cover only the customers the acting user may read.
    invited = (
        select(surveys.c.key, func.count(invitations.c.id).label("n"))
        .join(invitations, invitations.c.survey_id == surveys.c.id)
        .where(crm.access.where(invitations.c.customer_id, ctx=ctx))
        .group_by(surveys.c.key)
        .subquery()
    )
    answered = (
        select(surveys.c.key, func.count(responses.c.id).label("n"))
        .join(responses, responses.c.survey_id == surveys.c.id)
        .where(crm.access.where(responses.c.customer_id, ctx=ctx))
        .group_by(surveys.c.key)
        .subquery()
    )
    latest = (
        select(surveys.c.key, func.max(surveys.c.version).label("version"))
        .group_by(surveys.c.key)
        .subquery()
    )
    query = (
        select(
            surveys.c.key,
            surveys.c.version,
            surveys.c.title,
            surveys.c.created_at,
            func.coalesce(invited.c.n, 0).label("invitations"),
            func.coalesce(answered.c.n, 0).label("responses"),
        )
        .join(latest, (latest.c.key == surveys.c.key) & (latest.c.version == surveys.c.version))
        .outerjoin(invited, invited.c.key == surveys.c.key)
        .outerjoin(answered, answered.c.key == surveys.c.key)
        .order_by(surveys.c.key)
    )
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(query).all()
    return [
        {
            "key": r.key,
            "version": r.version,
            "title": r.title,
            "created_at": r.created_at.isoformat(),
            "invitations": int(r.invitations),
            "responses": int(r.responses),
        }
        for r in rows
    ]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
