"""The scope of a survey score and the SQL every score is built from.

A :class:`Scorer` holds the tables, the scope's filters and an optional breakdown;
the scores themselves are functions of a scorer in :mod:`crmcore_surveys.ratings`
(NPS, CSAT, CES, questions), :mod:`crmcore_surveys.dimensions` (dimensions,
index, gaps, drivers) and :mod:`crmcore_surveys.weighting` (entropy weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import frozen
from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    FromClause,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
)

from crmcore import CRM, Period, ValidationError
from crmcore_surveys.catalog import SurveyVersion, survey_by_id
from crmcore_surveys.population import CUSTOMER_FIELDS, field_expression
from crmcore_surveys.tables import (
    answers_table,
    invitations_table,
    questions_table,
    responses_table,
    surveys_table,
)

#: Breakdowns besides customer fields and ``attributes.<key>``.
SPECIAL_BREAKDOWNS = ("version", "channel", "tag")

NONE_LABEL = "(none)"


@frozen
class Scope:
    """Which responses are scored.

    One survey (``key``, optionally one ``version``) or every survey (``key=None``),
    answered in ``period`` (half-open) when given.
    """

    key: str | None = None
    version: int | None = None
    period: Period | None = None


def _label(value: Any) -> str:
    return NONE_LABEL if value is None else str(value)


class Scorer:
    """Runs the scoring statements for one scope on one connection.

    ``group`` is an optional breakdown: a customer field, ``attributes.<key>``,
    ``version``, ``channel``, ``tag``, or a trend bucketing built by :meth:`by_period`.
    """

    def __init__(self, crm: CRM, connection: Connection, scope: Scope) -> None:
        self.crm = crm
        self.connection = connection
        self.scope = scope
        metadata = crm.metadata
        self.s = surveys_table(metadata)
        self.q = questions_table(metadata)
        self.r = responses_table(metadata)
        self.a = answers_table(metadata)
        self.i = invitations_table(metadata)
        self.c = metadata.tables["crm_customers"]
        self.t = metadata.tables["crm_customer_tags"]
        self.group: ColumnElement[Any] | None = None
        self._joins: set[str] = set()

    # --- scope and grouping ---------------------------------------------------

    def grouped_by(self, by: str | None) -> Scorer:
        """A scorer for the same scope broken down by ``by`` (``None``: no breakdown)."""
        other = Scorer(self.crm, self.connection, self.scope)
        if by is None:
            return other
        if by == "version":
            other.group = self.s.c.version
        elif by == "channel":
            other.group = self.r.c.channel
        elif by == "tag":
            other.group, other._joins = self.t.c.tag, {"tags"}
        else:
            try:
                other.group = field_expression(self.c, by, "by")
            except ValidationError:
                allowed = ", ".join((*SPECIAL_BREAKDOWNS, *CUSTOMER_FIELDS, "attributes.<key>"))
                raise ValidationError(f"by: {by!r} is not one of: {allowed}", field="by") from None
            other._joins = {"customers"}
        return other

    def by_period(self, bounds: Sequence[tuple[str, datetime, datetime]]) -> Scorer:
        """A scorer grouped by trend bucket: ``(label, start, end)`` half-open intervals."""
        other = Scorer(self.crm, self.connection, self.scope)
        other.group = case(
            *((self.r.c.answered_at < end, label) for label, _start, end in bounds),
            else_=literal(NONE_LABEL),
        )
        return other

    def responses_from(self) -> FromClause:
        """Responses joined to their survey (and customers or tags for a breakdown)."""
        joined = self.r.join(self.s, self.s.c.id == self.r.c.survey_id)
        if "customers" in self._joins:
            joined = joined.outerjoin(self.c, self.c.c.id == self.r.c.customer_id)
        if "tags" in self._joins:
            joined = joined.outerjoin(self.t, self.t.c.customer_id == self.r.c.customer_id)
        return joined

    def answers_from(self) -> FromClause:
        """:meth:`responses_from` joined to the answers and their questions."""
        return (
            self.responses_from()
            .join(self.a, self.a.c.response_id == self.r.c.id)
            .join(
                self.q,
                and_(
                    self.q.c.survey_id == self.r.c.survey_id, self.q.c.key == self.a.c.question_key
                ),
            )
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        """The scope's filters on responses."""
        where: list[ColumnElement[bool]] = []
        if self.scope.key is not None:
            where.append(self.s.c.key == self.scope.key)
        if self.scope.version is not None:
            where.append(self.s.c.version == self.scope.version)
        if self.scope.period is not None:
            where.append(self.r.c.answered_at >= self.scope.period.start)
            where.append(self.r.c.answered_at < self.scope.period.end)
        return where

    def grouped_select(self, *columns: Any) -> Select[Any]:
        """``select(*columns)``, led by the group (labelled ``grp``) and grouped by it."""
        if self.group is None:
            return select(*columns)
        return select(self.group.label("grp"), *columns).group_by(self.group)

    def group_key(self, row: Any) -> str | None:
        """The group label of a result row (``None`` without a breakdown)."""
        return None if self.group is None else _label(row.grp)

    def rows_by_group(self, query: Select[Any]) -> dict[str | None, Any]:
        """The rows of a :meth:`grouped_select` query by group label (``None``: no breakdown)."""
        result: dict[str | None, Any] = {}
        for row in self.connection.execute(query):
            result[self.group_key(row)] = row
        return result

    def norm(self) -> ColumnElement[Any]:
        """An answer's position on its scale, 0-100: ``100 (r - min) / (max - min)``."""
        return (
            cast(self.a.c.rating - self.q.c.scale_min, Float)
            * 100.0
            / (self.q.c.scale_max - self.q.c.scale_min)
        )

    def index_question(self) -> ColumnElement[bool]:
        """Rating questions with a dimension that are neither expectation nor overall."""
        return and_(
            self.q.c.type == "rating",
            self.q.c.dimension.is_not(None),
            or_(self.q.c.role.is_(None), self.q.c.role == "perception"),
        )

    # --- the survey versions in scope -------------------------------------------

    def versions(self) -> list[SurveyVersion]:
        """The survey versions that have responses in scope (definitions, few rows)."""
        ids = self.connection.execute(
            select(self.r.c.survey_id)
            .distinct()
            .select_from(self.r.join(self.s, self.s.c.id == self.r.c.survey_id))
            .where(*self.conditions())
        ).scalars()
        return [survey_by_id(self.connection, self.crm, int(i)) for i in sorted(ids)]

    # --- counts ---------------------------------------------------------------------

    def responses(self) -> dict[str | None, int]:
        """Responses per group."""
        query = (
            self.grouped_select(func.count(distinct(self.r.c.id)).label("n"))
            .select_from(self.responses_from())
            .where(*self.conditions())
        )
        return {key: int(row.n) for key, row in self.rows_by_group(query).items()}

    def invitations(self) -> dict[str, int]:
        """Invitations sent in scope (by ``sent_at``) and how many of them were answered."""
        where: list[ColumnElement[bool]] = []
        if self.scope.key is not None:
            where.append(self.s.c.key == self.scope.key)
        if self.scope.version is not None:
            where.append(self.s.c.version == self.scope.version)
        if self.scope.period is not None:
            where.append(self.i.c.sent_at >= self.scope.period.start)
            where.append(self.i.c.sent_at < self.scope.period.end)
        sent, answered = self.connection.execute(
            select(
                func.count(self.i.c.id),
                func.sum(case((self.i.c.status == "answered", 1), else_=0)),
            )
            .select_from(self.i.join(self.s, self.s.c.id == self.i.c.survey_id))
            .where(*where)
        ).one()
        return {"sent": int(sent), "answered": int(answered or 0)}

    def answered_range(self) -> tuple[datetime, datetime] | None:
        """The first and last ``answered_at`` in scope."""
        first, last = self.connection.execute(
            select(func.min(self.r.c.answered_at), func.max(self.r.c.answered_at))
            .select_from(self.responses_from())
            .where(*self.conditions())
        ).one()
        if first is None:
            return None
        # min()/max() lose the column type on SQLite: read them back as aware UTC.
        return _aware(first), _aware(last)


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
