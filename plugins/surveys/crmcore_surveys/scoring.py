"""Scores computed in SQL: NPS, CSAT, CES, means, index, gaps, drivers, trends, breakdowns.

Every figure is one ``GROUP BY`` returning counts, sums and sums of squares (the same
statement on SQLite and PostgreSQL); :mod:`crmcore_surveys.statistics` only turns them
into means, shares and 95% intervals. Definitions (a few rows) are read to learn
weights and which question is the overall one. The docs page
``docs/plugins/surveys.md`` states every formula.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
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

from crmcore import CRM, NotFoundError, Period, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_surveys.catalog import SurveyVersion, survey_by_id
from crmcore_surveys.definitions import WEIGHTING_METHODS
from crmcore_surveys.population import CUSTOMER_FIELDS, field_expression
from crmcore_surveys.statistics import (
    mean_estimate,
    nps_estimate,
    pearson_estimate,
    proportion_estimate,
)
from crmcore_surveys.tables import (
    answers_table,
    invitations_table,
    questions_table,
    responses_table,
    surveys_table,
)
from crmcore_surveys.weights import AHPResult, EntropyColumn, checked_ahp, entropy_weights

#: Trend granularities.
GRANULARITIES = ("day", "week", "month", "quarter")

#: Breakdowns besides customer fields and ``attributes.<key>``.
SPECIAL_BREAKDOWNS = ("version", "channel", "tag")

#: The most buckets a trend may have.
MAX_BUCKETS = 400

NONE_LABEL = "(none)"

# The overall answer as a pseudo-dimension in driver analysis (no real dimension is empty).
_OVERALL = ""


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

    def _select(self, *columns: Any) -> Select[Any]:
        if self.group is None:
            return select(*columns)
        return select(self.group.label("grp"), *columns).group_by(self.group)

    def _rows(self, query: Select[Any]) -> dict[str | None, Any]:
        result: dict[str | None, Any] = {}
        for row in self.connection.execute(query):
            key = None if self.group is None else _label(row.grp)
            result[key] = row
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

    # --- metrics ------------------------------------------------------------------

    def nps(self) -> dict[str | None, dict[str, Any]]:
        """NPS per group: promoters (9-10), passives (7-8), detractors (0-6), NPS and CI."""
        rating = self.a.c.rating
        query = (
            self._select(
                func.count(rating).label("n"),
                func.sum(case((rating >= 9, 1), else_=0)).label("promoters"),
                func.sum(case((rating <= 6, 1), else_=0)).label("detractors"),
            )
            .select_from(self.answers_from())
            .where(*self.conditions(), self.q.c.metric == "nps", rating.is_not(None))
        )
        out = {}
        for key, row in self._rows(query).items():
            n, pro, det = int(row.n), int(row.promoters or 0), int(row.detractors or 0)
            if n == 0:
                continue
            out[key] = {
                **nps_estimate(n, pro, det).to_dict(),
                "promoters": pro,
                "passives": n - pro - det,
                "detractors": det,
            }
        return out

    def csat(self) -> dict[str | None, dict[str, Any]]:
        """CSAT per group: % of answers in the top two boxes (Wilson CI), and the mean."""
        rating = self.a.c.rating
        query = (
            self._select(
                func.count(rating).label("n"),
                func.sum(case((rating >= self.q.c.scale_max - 1, 1), else_=0)).label("top2"),
                func.sum(rating).label("s"),
                func.sum(rating * rating).label("ss"),
            )
            .select_from(self.answers_from())
            .where(*self.conditions(), self.q.c.metric == "csat", rating.is_not(None))
        )
        out = {}
        for key, row in self._rows(query).items():
            n = int(row.n)
            if n == 0:
                continue
            mean = mean_estimate(n, float(row.s), float(row.ss))
            out[key] = {
                **proportion_estimate(n, int(row.top2)).to_dict(),
                "top2": int(row.top2),
                "mean": mean.value,
                "mean_ci_low": mean.ci_low,
                "mean_ci_high": mean.ci_high,
            }
        return out

    def ces(self) -> dict[str | None, dict[str, Any]]:
        """CES per group: the mean of the ces answers with its normal CI."""
        rating = self.a.c.rating
        query = (
            self._select(
                func.count(rating).label("n"),
                func.sum(rating).label("s"),
                func.sum(rating * rating).label("ss"),
            )
            .select_from(self.answers_from())
            .where(*self.conditions(), self.q.c.metric == "ces", rating.is_not(None))
        )
        return {
            key: mean_estimate(int(row.n), float(row.s), float(row.ss)).to_dict()
            for key, row in self._rows(query).items()
            if int(row.n)
        }

    def responses(self) -> dict[str | None, int]:
        """Responses per group."""
        query = (
            self._select(func.count(distinct(self.r.c.id)).label("n"))
            .select_from(self.responses_from())
            .where(*self.conditions())
        )
        return {key: int(row.n) for key, row in self._rows(query).items()}

    def questions(self) -> list[dict[str, Any]]:
        """Mean, SD and CI of every rating question (by question id and scale)."""
        rating = self.a.c.rating
        query = (
            select(
                self.q.c.key,
                self.q.c.scale_min,
                self.q.c.scale_max,
                func.min(self.q.c.position).label("position"),
                func.count(rating).label("n"),
                func.sum(rating).label("s"),
                func.sum(rating * rating).label("ss"),
            )
            .select_from(self.answers_from())
            .where(*self.conditions(), self.q.c.type == "rating", rating.is_not(None))
            .group_by(self.q.c.key, self.q.c.scale_min, self.q.c.scale_max)
            .order_by(func.min(self.q.c.position), self.q.c.key)
        )
        return [
            {
                "question": row.key,
                "scale": f"{row.scale_min}-{row.scale_max}",
                **mean_estimate(int(row.n), float(row.s), float(row.ss)).to_dict(),
            }
            for row in self.connection.execute(query)
        ]

    def dimensions(self) -> dict[str | None, list[dict[str, Any]]]:
        """Per dimension: the raw mean (when its questions share a scale) and the 0-100 score.

        Both pool every answer to the dimension's index questions (unweighted).
        """
        rating = self.a.c.rating
        norm = self.norm()
        query = (
            self._select(
                self.q.c.dimension.label("dimension"),
                func.count(rating).label("n"),
                func.sum(rating).label("s"),
                func.sum(rating * rating).label("ss"),
                func.sum(norm).label("ns"),
                func.sum(norm * norm).label("nss"),
                func.min(self.q.c.scale_min).label("lo_min"),
                func.max(self.q.c.scale_min).label("hi_min"),
                func.min(self.q.c.scale_max).label("lo_max"),
                func.max(self.q.c.scale_max).label("hi_max"),
            )
            .select_from(self.answers_from())
            .where(*self.conditions(), self.index_question(), rating.is_not(None))
            .group_by(self.q.c.dimension)
            .order_by(self.q.c.dimension)
        )
        out: dict[str | None, list[dict[str, Any]]] = {}
        for row in self.connection.execute(query):
            key = None if self.group is None else _label(row.grp)
            n = int(row.n)
            one_scale = row.lo_min == row.hi_min and row.lo_max == row.hi_max
            raw = mean_estimate(n, float(row.s), float(row.ss))
            score = mean_estimate(n, float(row.ns), float(row.nss))
            out.setdefault(key, []).append(
                {
                    "dimension": row.dimension,
                    "n": n,
                    "scale": f"{row.lo_min}-{row.lo_max}" if one_scale else None,
                    "mean": raw.value if one_scale else None,
                    "sd": raw.sd if one_scale else None,
                    "ci_low": raw.ci_low if one_scale else None,
                    "ci_high": raw.ci_high if one_scale else None,
                    "score": score.value,
                    "score_ci_low": score.ci_low,
                    "score_ci_high": score.ci_high,
                }
            )
        return out

    def _weight_case(self, weights: Mapping[tuple[int, str], float]) -> ColumnElement[float]:
        if not weights:
            return literal(0.0, Float)
        return case(
            *(
                (and_(self.q.c.survey_id == sid, self.q.c.key == key), literal(w, Float))
                for (sid, key), w in sorted(weights.items())
            ),
            else_=literal(0.0, Float),
        )

    def index(self, weights: Mapping[tuple[int, str], float]) -> dict[str | None, dict[str, Any]]:
        """The weighted satisfaction index (0-100) per group, with its CI.

        Per response ``sum v_q x_q / sum v_q`` over its answered index questions
        (``weights`` maps (survey version id, question id) to ``v_q``); the index is the
        mean of that over responses, the CI normal with the sample SD.
        """
        v = self._weight_case(weights)
        norm = self.norm()
        columns: list[Any] = [self.r.c.id.label("rid")]
        group_by: list[Any] = [self.r.c.id]
        if self.group is not None:
            columns.append(self.group.label("grp"))
            group_by.append(self.group)
        per_response = (
            select(*columns, (func.sum(v * norm) / func.sum(v)).label("idx"))
            .select_from(self.answers_from())
            .where(*self.conditions(), self.a.c.rating.is_not(None), v > 0)
            .group_by(*group_by)
            .subquery()
        )
        outer: list[Any] = [
            func.count(per_response.c.idx).label("n"),
            func.sum(per_response.c.idx).label("s"),
            func.sum(per_response.c.idx * per_response.c.idx).label("ss"),
        ]
        if self.group is not None:
            query = select(per_response.c.grp, *outer).group_by(per_response.c.grp)
        else:
            query = select(*outer)
        out = {}
        for row in self.connection.execute(query):
            if not row.n:
                continue
            key = None if self.group is None else _label(row.grp)
            out[key] = mean_estimate(int(row.n), float(row.s), float(row.ss)).to_dict()
        return out

    def gaps(self) -> list[dict[str, Any]]:
        """Expectation-perception gap per dimension.

        The mean of (perception - expectation) over responses answering both questions
        of a pair, pooled over the dimension's pairs.
        """
        qe, qp = self.q.alias("qe"), self.q.alias("qp")
        ae, ap = self.a.alias("ae"), self.a.alias("ap")
        diff = ap.c.rating - ae.c.rating
        joined = (
            self.responses_from()
            .join(ap, ap.c.response_id == self.r.c.id)
            .join(
                qp,
                and_(
                    qp.c.survey_id == self.r.c.survey_id,
                    qp.c.key == ap.c.question_key,
                    qp.c.role == "perception",
                ),
            )
            .join(
                qe,
                and_(
                    qe.c.survey_id == self.r.c.survey_id,
                    qe.c.pair == qp.c.pair,
                    qe.c.role == "expectation",
                ),
            )
            .join(ae, and_(ae.c.response_id == self.r.c.id, ae.c.question_key == qe.c.key))
        )
        query = (
            select(
                qp.c.dimension,
                func.count().label("n"),
                func.sum(diff).label("s"),
                func.sum(diff * diff).label("ss"),
                func.sum(ap.c.rating).label("sp"),
                func.sum(ae.c.rating).label("se"),
            )
            .select_from(joined)
            .where(*self.conditions(), ap.c.rating.is_not(None), ae.c.rating.is_not(None))
            .group_by(qp.c.dimension)
            .order_by(qp.c.dimension)
        )
        out = []
        for row in self.connection.execute(query):
            n = int(row.n)
            gap = mean_estimate(n, float(row.s), float(row.ss))
            out.append(
                {
                    "dimension": row.dimension,
                    "n": n,
                    "expectation": float(row.se) / n,
                    "perception": float(row.sp) / n,
                    "gap": gap.value,
                    "sd": gap.sd,
                    "ci_low": gap.ci_low,
                    "ci_high": gap.ci_high,
                }
            )
        return out

    def drivers(self, overall: Mapping[int, str]) -> list[dict[str, Any]]:
        """Pearson r between each dimension's per-response score and the overall answer.

        ``overall`` maps survey version id to its overall question id. Both sides on
        the 0-100 scale; a dimension's per-response score is the mean of its answers.
        Sorted by r, strongest first.
        """
        if not overall:
            return []
        norm = self.norm()
        is_overall = or_(
            *(
                and_(self.q.c.survey_id == sid, self.q.c.key == key)
                for sid, key in sorted(overall.items())
            )
        )
        # One pass over the answers, no join of grouped subqueries (PostgreSQL would
        # nest-loop over them): the overall answer is a pseudo-dimension, spread to
        # the response's dimension rows with a window function (SQLite >= 3.25, PG).
        dim = case((is_overall, literal(_OVERALL)), else_=self.q.c.dimension)
        per = (
            select(self.r.c.id.label("rid"), dim.label("dim"), func.avg(norm).label("x"))
            .select_from(self.answers_from())
            .where(
                *self.conditions(),
                or_(is_overall, self.index_question()),
                self.a.c.rating.is_not(None),
            )
            .group_by(self.r.c.id, dim)
            .subquery()
        )
        spread = select(
            per.c.dim,
            per.c.x,
            func.max(case((per.c.dim == _OVERALL, per.c.x)))
            .over(partition_by=per.c.rid)
            .label("y"),
        ).subquery()
        query = (
            select(
                spread.c.dim,
                func.count().label("n"),
                func.sum(spread.c.x).label("sx"),
                func.sum(spread.c.y).label("sy"),
                func.sum(spread.c.x * spread.c.x).label("sxx"),
                func.sum(spread.c.y * spread.c.y).label("syy"),
                func.sum(spread.c.x * spread.c.y).label("sxy"),
            )
            .where(spread.c.dim != _OVERALL, spread.c.y.is_not(None))
            .group_by(spread.c.dim)
        )
        out = []
        for row in self.connection.execute(query):
            n = int(row.n)
            r = pearson_estimate(
                n, float(row.sx), float(row.sy), float(row.sxx), float(row.syy), float(row.sxy)
            )
            out.append(
                {
                    "dimension": row.dim,
                    "n": n,
                    "r": r.value,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "score": float(row.sx) / n,
                }
            )
        out.sort(key=lambda d: (-(d["r"] if d["r"] is not None else -2.0), d["dimension"]))
        return out

    def entropy(self, dimensions: Sequence[str]) -> tuple[dict[str, float], int]:
        """Entropy weights of ``dimensions`` over the responses that answered all of them.

        ``x_ij`` is response i's score (0-100) on dimension j, standardised per
        dimension to ``y = (x - min) / (max - min)``; the sums ``sum y`` and
        ``sum y ln y`` come from SQL (``ln`` is built into PostgreSQL and SQLite >= 3.35).
        Returns the weights and m, the number of complete responses.
        """
        if not dimensions:
            return {}, 0
        norm = self.norm()
        per = (
            select(
                self.r.c.id.label("rid"),
                self.q.c.dimension.label("dim"),
                func.avg(norm).label("x"),
            )
            .select_from(self.answers_from())
            .where(
                *self.conditions(),
                self.index_question(),
                self.q.c.dimension.in_(list(dimensions)),
                self.a.c.rating.is_not(None),
            )
            .group_by(self.r.c.id, self.q.c.dimension)
            .subquery()
        )
        # Responses with every dimension answered, by a window count (no self-join).
        counted = select(
            per.c.dim, per.c.x, func.count().over(partition_by=per.c.rid).label("k")
        ).subquery()
        complete = counted.c.k == len(dimensions)
        m = int(
            self.connection.execute(
                select(func.count()).where(complete, counted.c.dim == dimensions[0])
            ).scalar_one()
        )
        bounds = {
            row.dim: (float(row.lo), float(row.hi))
            for row in self.connection.execute(
                select(
                    counted.c.dim,
                    func.min(counted.c.x).label("lo"),
                    func.max(counted.c.x).label("hi"),
                )
                .where(complete)
                .group_by(counted.c.dim)
            )
        }
        varying = {d: b for d, b in bounds.items() if b[1] - b[0] > 1e-12}
        sums: dict[str, EntropyColumn] = {}
        if varying:
            y = case(
                *(
                    (counted.c.dim == d, (counted.c.x - lo) / (hi - lo))
                    for d, (lo, hi) in sorted(varying.items())
                ),
                else_=literal(0.0, Float),
            )
            y_log_y = case((y > 0, y * func.ln(y)), else_=literal(0.0, Float))
            for row in self.connection.execute(
                select(
                    counted.c.dim,
                    func.sum(y).label("total"),
                    func.sum(y_log_y).label("ylogy"),
                )
                .where(complete, counted.c.dim.in_(sorted(varying)))
                .group_by(counted.c.dim)
            ):
                sums[row.dim] = EntropyColumn(float(row.total), float(row.ylogy))
        columns = [sums.get(d, EntropyColumn(0.0, 0.0)) for d in dimensions]
        return dict(zip(dimensions, entropy_weights(columns, m), strict=True)), m

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


# --- trend buckets -------------------------------------------------------------------


def _floor(moment: datetime, granularity: str) -> datetime:
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day.replace(month=(moment.month - 1) // 3 * 3 + 1, day=1)


def _next(moment: datetime, granularity: str) -> datetime:
    if granularity == "day":
        return moment + timedelta(days=1)
    if granularity == "week":
        return moment + timedelta(days=7)
    months = 1 if granularity == "month" else 3
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _bucket_label(start: datetime, granularity: str) -> str:
    if granularity == "month":
        return start.strftime("%Y-%m")
    if granularity == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return start.date().isoformat()


def trend_buckets(
    start: datetime, end: datetime, granularity: str
) -> list[tuple[str, datetime, datetime]]:
    """Calendar buckets (UTC) covering ``[start, end)``: (label, start, end) each.

    Raises ValidationError for an unknown granularity or more than 400 buckets.
    """
    if granularity not in GRANULARITIES:
        raise ValidationError(
            f"trend: {granularity!r} is not one of: {', '.join(GRANULARITIES)}", field="trend"
        )
    buckets = []
    moment = _floor(start.astimezone(UTC), granularity)
    while moment < end:
        following = _next(moment, granularity)
        buckets.append((_bucket_label(moment, granularity), moment, following))
        moment = following
        if len(buckets) > MAX_BUCKETS:
            raise ValidationError(
                f"trend: more than {MAX_BUCKETS} {granularity} buckets; choose a coarser one",
                field="trend",
            )
    return buckets


# --- weights and the report ------------------------------------------------------------


def _overall_question(version: SurveyVersion) -> str | None:
    """The overall question: role overall, else the NPS question, else the CSAT one."""
    questions = version.definition.questions
    for field, wanted in (("role", "overall"), ("metric", "nps"), ("metric", "csat")):
        for q in questions:
            if q.type == "rating" and getattr(q, field) == wanted:
                return q.id
    return None


def _weights(
    scorer: Scorer,
    versions: Sequence[SurveyVersion],
    method: str,
    ahp_matrix: Sequence[Sequence[float]] | None,
) -> tuple[dict[tuple[int, str], float], dict[str, Any]]:
    """Question weights ``v_q`` per (version id, question) and a description of them."""
    latest = max(versions, key=lambda v: v.version)
    definition = latest.definition
    dimensions = list(definition.dimensions)
    for version in versions:
        for d in version.definition.dimensions:
            if d not in dimensions:
                dimensions.append(d)
    info: dict[str, Any] = {"method": method}
    dimension_weights: dict[str, float] | None
    if method == "declared":
        dimension_weights = None
        declared: dict[str, float] = {}
        for d, w in definition.declared_dimension_weights().items():
            declared[d] = w
        total = sum(declared.values()) or 1.0
        info["weights"] = {d: w / total for d, w in declared.items()}
    elif method == "ahp":
        result: AHPResult | None
        names: Sequence[str]
        if ahp_matrix is not None:
            result = checked_ahp(ahp_matrix, field="ahp_matrix")
            names = definition.weighting.dimensions or definition.dimensions
            if len(names) != len(result.weights):
                raise ValidationError(
                    f"ahp_matrix: {len(result.weights)} rows for the {len(names)} dimensions "
                    f"{list(names)}",
                    field="ahp_matrix",
                )
        else:
            result = definition.weighting.ahp
            names = definition.weighting.dimensions
            if result is None:
                raise ValidationError(
                    f"weighting: survey {latest.key!r} declares no AHP matrix; give one",
                    field="weighting",
                )
        dimension_weights = dict(zip(names, result.weights, strict=True))
        info["weights"] = dimension_weights
        info["ahp"] = {
            "lambda_max": result.lambda_max,
            "consistency_index": result.consistency_index,
            "consistency_ratio": result.consistency_ratio,
        }
    else:
        dimension_weights, m = scorer.entropy(dimensions)
        info["weights"] = dimension_weights
        info["complete_responses"] = m
    weights: dict[tuple[int, str], float] = {}
    for version in versions:
        for qid, w in version.definition.index_weights(dimension_weights).items():
            weights[(version.id, qid)] = w
    return weights, info


def _one(mapping: Mapping[str | None, Any]) -> Any:
    return mapping.get(None)


@requires(Action.REPORT)
def survey_report(
    crm: CRM,
    key: str,
    *,
    version: int | None = None,
    period: Period | None = None,
    by: str | None = None,
    trend: str | None = "month",
    weighting: str | None = None,
    ahp_matrix: Sequence[Sequence[float]] | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Every score of survey ``key`` (all versions, or ``version``) as JSON-safe data.

    ``period`` limits responses (by ``answered_at``) and invitations (by ``sent_at``);
    ``by`` adds a breakdown (customer field, ``attributes.<key>``, ``version``,
    ``channel`` or ``tag``); ``trend`` is the trend granularity (``None``: no trend);
    ``weighting`` overrides the survey's index weighting (``declared``, ``entropy``,
    ``ahp``), ``ahp_matrix`` its AHP matrix (CR > 0.1 refused). Raises
    NotFoundError for an unknown survey, ValidationError for a bad option.
    """
    if weighting is not None and weighting not in WEIGHTING_METHODS:
        raise ValidationError(
            f"weighting: {weighting!r} is not one of: {', '.join(WEIGHTING_METHODS)}",
            field="weighting",
        )
    if ahp_matrix is not None and weighting not in (None, "ahp"):
        raise ValidationError("ahp_matrix: only with the ahp weighting", field="ahp_matrix")
    with crm.reading(ctx) as uow:
        surveys = surveys_table(crm.metadata)
        known = uow.connection.execute(
            select(surveys.c.version, surveys.c.title)
            .where(surveys.c.key == key)
            .order_by(surveys.c.version)
        ).all()
        if not known:
            raise NotFoundError(f"survey: no survey {key!r}")
        if version is not None and version not in {r.version for r in known}:
            raise NotFoundError(f"survey: no survey {key!r} version {version}")
        scorer = Scorer(crm, uow.connection, Scope(key, version, period))
        versions = scorer.versions()
        invitations = scorer.invitations()
        responses = _one(scorer.responses()) or 0
        report: dict[str, Any] = {
            "survey": {
                "key": key,
                "title": known[-1].title,
                "versions": [r.version for r in known],
                "version": version,
            },
            "period": None
            if period is None
            else {"start": period.start.isoformat(), "end": period.end.isoformat()},
            "invitations": invitations["sent"],
            "invitations_answered": invitations["answered"],
            "response_rate": proportion_estimate(
                invitations["sent"], invitations["answered"]
            ).to_dict()
            if invitations["sent"]
            else None,
            "responses": responses,
            "nps": _one(scorer.nps()),
            "csat": _one(scorer.csat()),
            "ces": _one(scorer.ces()),
            "questions": scorer.questions() if versions else [],
            "dimensions": _one(scorer.dimensions()) or [],
            "index": None,
            "gaps": scorer.gaps() if versions else [],
            "drivers": None,
            "trend": [],
            "breakdown": None,
        }
        if not versions:
            return report
        has_dimensions = any(v.definition.dimensions for v in versions)
        latest = max(versions, key=lambda v: v.version)
        method = weighting or latest.definition.weighting.method
        weights: dict[tuple[int, str], float] = {}
        if has_dimensions:
            weights, info = _weights(scorer, versions, method, ahp_matrix)
            index = _one(scorer.index(weights))
            report["index"] = None if index is None else {**index, **info}
            for item in report["dimensions"]:
                item["weight"] = info["weights"].get(item["dimension"])
            overall = {v.id: q for v in versions if (q := _overall_question(v)) is not None}
            report["drivers"] = {
                "overall": sorted(set(overall.values())),
                "items": scorer.drivers(overall),
            }
        if trend is not None:
            span = (period.start, period.end) if period is not None else scorer.answered_range()
            if span is not None:
                start, end = span
                if period is None:
                    end = end + timedelta(microseconds=1)
                buckets = trend_buckets(start, end, trend)
                report["trend"] = _grouped_rows(
                    scorer.by_period(buckets), [b[0] for b in buckets], weights, has_dimensions
                )
                report["trend_granularity"] = trend
        if by is not None:
            grouped = scorer.grouped_by(by)
            counts = grouped.responses()
            report["breakdown"] = {
                "by": by,
                "groups": _grouped_rows(
                    grouped, sorted(k for k in counts if k is not None), weights, has_dimensions
                ),
            }
    return report


def _grouped_rows(
    scorer: Scorer,
    labels: Sequence[str],
    weights: Mapping[tuple[int, str], float],
    has_dimensions: bool,
) -> list[dict[str, Any]]:
    counts = scorer.responses()
    nps, csat, ces = scorer.nps(), scorer.csat(), scorer.ces()
    index = scorer.index(weights) if has_dimensions else {}
    rows = []
    for label in labels:
        rows.append(
            {
                "group": label,
                "responses": counts.get(label, 0),
                "nps": nps.get(label),
                "csat": csat.get(label),
                "ces": ces.get(label),
                "index": index.get(label),
            }
        )
    return rows


@requires(Action.REPORT)
def overall_metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """Every survey's figures for ``period``: NPS, CSAT %, CES, responses, response rate."""
    with crm.reading(ctx) as uow:
        scorer = Scorer(crm, uow.connection, Scope(period=period))
        nps, csat, ces = _one(scorer.nps()), _one(scorer.csat()), _one(scorer.ces())
        invitations = scorer.invitations()
        responses = _one(scorer.responses()) or 0
        low = uow.connection.execute(
            select(func.count())
            .select_from(scorer.r)
            .where(
                scorer.r.c.alert_metric.is_not(None),
                scorer.r.c.answered_at >= period.start,
                scorer.r.c.answered_at < period.end,
            )
        ).scalar_one()
    sent = invitations["sent"]
    return {
        "responses": responses,
        "invitations_sent": sent,
        "response_rate_pct": None if not sent else 100.0 * invitations["answered"] / sent,
        "nps": None if nps is None else nps["value"],
        "nps_responses": 0 if nps is None else nps["n"],
        "csat_pct": None if csat is None else csat["value"],
        "ces": None if ces is None else ces["value"],
        "low_scores": int(low),
    }


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
