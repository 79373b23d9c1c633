"""Relationship strength over time: the six B2B dimensions per account and decision maker.

Scores are on a 0-100 scale, one row per dimension and measurement, kept
forever (the history). The *trend* of a dimension is its latest score and the
change since the measurement before it. A latest score below ``[accounts]
weak_score`` is *weak*; a change of ``-falling_drop`` or less is *falling*;
both are churn signals (source ``accounts``), weighted
``min(1, 0.3 + gap / 100)`` where ``gap`` is the largest shortfall below the
threshold (weak) or the largest drop (falling), in points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, insert, or_, select

from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.errors import ValidationError
from crmcore.model.accounts import (
    DIMENSIONS,
    SCORE_MAX,
    SCORE_MIN,
    RelationshipScore,
    ScoreTrend,
    is_current,
)
from crmcore.model.entities import CustomerKind
from crmcore.model.limits import timestamp_problem
from crmcore.model.signals import ChurnSignal
from crmcore.services.accounts.common import (
    AccountsBase,
    check_id,
    check_text,
    utc_day,
    visible,
)
from crmcore.storage.filters import among
from crmcore.storage.ids import allocate_ids
from crmcore.storage.tables import contacts, relationship_scores
from crmcore.unit_of_work import UnitOfWork, acting_user

ORG = CustomerKind.ORGANIZATION
#: The source of the churn signals of weak or falling relationship scores.
SIGNAL_SOURCE = "accounts"
#: Ids per query when the trends of many accounts are read.
_CHUNK = 500

#: Trends of one scope: (account id, contact id or None) -> dimension -> trend.
Trends = dict[tuple[int, int | None], dict[str, ScoreTrend]]


def score_from_row(row: Row[Any]) -> RelationshipScore:
    """The RelationshipScore of a ``crm_relationship_scores`` row."""
    return RelationshipScore(
        id=row.id,
        account_id=row.account_id,
        contact_id=row.contact_id,
        dimension=row.dimension,
        score=float(row.score),
        measured_at=row.measured_at,
        source=row.source,
        actor=row.actor,
    )


def check_dimension(dimension: Any, name: str = "dimension") -> str:
    """``dimension`` if it is one of :data:`~crmcore.model.accounts.DIMENSIONS`."""
    if isinstance(dimension, str) and dimension in DIMENSIONS:
        return dimension
    raise ValidationError(
        f"{name}: unknown dimension {dimension!r}; known: {', '.join(DIMENSIONS)}", field=name
    )


def _score(dimension: Any, value: Any) -> tuple[str, float]:
    check_dimension(dimension, f"scores.{dimension}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"scores.{dimension}: expected a number from 0 to 100, got {value!r}",
            field=f"scores.{dimension}",
            value=value,
        )
    number = float(value)
    if not math.isfinite(number) or not SCORE_MIN <= number <= SCORE_MAX:
        raise ValidationError(
            f"scores.{dimension}: must be between 0 and 100, got {value!r}",
            field=f"scores.{dimension}",
            value=value,
        )
    return dimension, number


def read_trends(
    uow: UnitOfWork, account_ids: Iterable[int], visible: ColumnElement[bool] | None = None
) -> Trends:
    """The trend of every dimension of these accounts, per account and per contact.

    ``visible`` restricts the rows (the per-contact scores of contacts the
    acting user may read). One query per 500 accounts: the latest two
    measurements of each (account, contact, dimension), by a window function.
    """
    table = relationship_scores
    found: Trends = {}
    wanted = sorted(set(account_ids))
    for start in range(0, len(wanted), _CHUNK):
        rank = (
            func.row_number()
            .over(
                partition_by=(table.c.account_id, table.c.contact_id, table.c.dimension),
                order_by=(table.c.measured_at.desc(), table.c.id.desc()),
            )
            .label("rank")
        )
        inner = select(
            table.c.account_id,
            table.c.contact_id,
            table.c.dimension,
            table.c.score,
            table.c.measured_at,
            table.c.source,
            rank,
        ).where(among(uow.connection, table.c.account_id, wanted[start : start + _CHUNK]))
        if visible is not None:
            inner = inner.where(visible)
        ranked = inner.subquery()
        query = (
            select(ranked)
            .where(ranked.c.rank <= 2)
            .order_by(ranked.c.account_id, ranked.c.contact_id, ranked.c.dimension, ranked.c.rank)
        )
        for row in uow.connection.execute(query):
            scope = found.setdefault((row.account_id, row.contact_id), {})
            score = float(row.score)
            if row.rank == 1:
                scope[row.dimension] = ScoreTrend(row.dimension, score, row.measured_at, row.source)
            else:
                latest = scope[row.dimension]
                scope[row.dimension] = ScoreTrend(
                    latest.dimension,
                    latest.score,
                    latest.measured_at,
                    latest.source,
                    previous=score,
                    change=round(latest.score - score, 6),
                )
    return {scope: {d: dims[d] for d in DIMENSIONS if d in dims} for scope, dims in found.items()}


def _scope_name(account_id: int, contact_id: int | None) -> str:
    if contact_id is None:
        return "relationship"
    return f"relationship with decision maker {contact_id}"


def signals_of(trends: Trends, weak_score: float, falling_drop: float) -> list[ChurnSignal]:
    """The churn signals of these trends (see the module docstring): weak, falling, per scope."""
    signals = []
    for (account_id, contact_id), dims in sorted(
        trends.items(), key=lambda kv: (kv[0][0], -1 if kv[0][1] is None else kv[0][1])
    ):
        scope = _scope_name(account_id, contact_id)
        weak = [t for t in dims.values() if t.score < weak_score]
        if weak:
            gap = max(weak_score - t.score for t in weak)
            shown = ", ".join(f"{t.dimension} {t.score:g}" for t in weak)
            signals.append(
                ChurnSignal(
                    account_id,
                    SIGNAL_SOURCE,
                    f"{scope} weak: {shown} (below {weak_score:g})",
                    round(min(1.0, 0.3 + gap / 100), 3),
                )
            )
        falling = [t for t in dims.values() if t.change is not None and -t.change >= falling_drop]
        if falling:
            drop = max(-(t.change or 0.0) for t in falling)
            shown = ", ".join(
                f"{t.dimension} {t.previous:g} -> {t.score:g} ({t.change:+g})" for t in falling
            )
            signals.append(
                ChurnSignal(
                    account_id,
                    SIGNAL_SOURCE,
                    f"{scope} falling: {shown}",
                    round(min(1.0, 0.3 + drop / 100), 3),
                )
            )
    return signals


class ScoresPart(AccountsBase):
    """Relationship scores (part of ``crm.accounts``)."""

    @staticmethod
    def _contact_scores_visible(seen: ColumnElement[bool] | None) -> ColumnElement[bool]:
        """The account's own scores, and those of decision makers the user may read."""
        return or_(
            relationship_scores.c.contact_id.is_(None),
            visible(relationship_scores.c.contact_id, seen),
        )

    def record_scores(
        self,
        account_id: int,
        scores: Mapping[str, float],
        *,
        contact_id: int | None = None,
        source: str = "manual",
        measured_at: datetime | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> list[RelationshipScore]:
        """Store one measurement of some dimensions (0-100) of an account's relationship.

        ``scores`` maps dimensions (:data:`~crmcore.model.accounts.DIMENSIONS`)
        to numbers from 0 to 100. ``contact_id`` measures the relationship
        with one decision maker: a contact of the account on the day of
        ``measured_at`` (default now; never in the future). ``source`` says
        where it came from (``manual``, ``survey`` ...). The acting user must
        write the account. Audited as ``account.scores.recorded``.
        """
        if not isinstance(scores, Mapping) or not scores:
            raise ValidationError(
                "scores: expected a non-empty mapping of dimension to score", field="scores"
            )
        values = [_score(d, v) for d, v in scores.items()]
        origin = check_text(source, "source", 40)
        if origin is None:
            raise ValidationError("source: must not be empty", field="source")
        with self._crm.unit_of_work(actor, ctx) as uow:
            when = uow.now if measured_at is None else measured_at
            if not isinstance(when, datetime) or when.tzinfo is None:
                raise ValidationError(
                    f"measured_at: must be a timezone-aware datetime, got {when!r}",
                    field="measured_at",
                )
            if problem := timestamp_problem(when):
                raise ValidationError(f"measured_at: {problem}", field="measured_at")
            if when > uow.now:
                raise ValidationError(
                    f"measured_at: {when.isoformat()} is in the future", field="measured_at"
                )
            account = self._load(uow, account_id, Action.WRITE, "account_id", ORG)
            assert account.id is not None
            if contact_id is not None:
                self._check_contact(uow, account.id, check_id(contact_id, "contact_id"), when)
            ids = allocate_ids(uow.connection, relationship_scores, len(values))
            who = acting_user(uow)
            stored = [
                RelationshipScore(
                    account_id=account.id,
                    dimension=dimension,
                    score=score,
                    measured_at=when,
                    source=origin,
                    contact_id=contact_id,
                    actor=who,
                    id=new_id,
                )
                for new_id, (dimension, score) in zip(ids, values, strict=True)
            ]
            uow.connection.execute(
                insert(relationship_scores),
                [
                    {
                        "id": s.id,
                        "account_id": s.account_id,
                        "contact_id": s.contact_id,
                        "dimension": s.dimension,
                        "score": s.score,
                        "measured_at": s.measured_at,
                        "source": s.source,
                        "actor": s.actor,
                    }
                    for s in stored
                ],
            )
            self._crm.audit.record(
                uow,
                [
                    AuditEntry(
                        "account.scores.recorded",
                        "relationship_score",
                        None,
                        account.id,
                        {
                            "dimensions": sorted(d for d, _ in values),
                            "contact_id": contact_id,
                            "source": origin,
                        },
                    )
                ],
            )
        return stored

    def _check_contact(
        self, uow: UnitOfWork, account_id: int, contact_id: int, when: datetime
    ) -> None:
        self._crm.access.guard(uow, [contact_id], Action.READ)
        span = uow.connection.execute(
            select(contacts.c.start_date, contacts.c.end_date).where(
                contacts.c.organisation_id == account_id, contacts.c.person_id == contact_id
            )
        ).first()
        day = utc_day(when)
        if span is None or not is_current(span.start_date, span.end_date, day):
            raise ValidationError(
                f"contact_id: customer {contact_id} is not a current contact of organisation "
                f"{account_id} on {day.isoformat()}",
                field="contact_id",
            )

    def scores(
        self,
        account_id: int,
        *,
        contact_id: int | None = None,
        dimension: str | None = None,
        limit: int = 100,
        ctx: UnitOfWork | None = None,
    ) -> list[RelationshipScore]:
        """The history of an account's scores, newest first (at most ``limit``, up to 1000).

        Every scope (the account's own and each decision maker's) unless
        ``contact_id`` picks one decision maker; per-contact scores of
        contacts the acting user may not read are left out.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError(f"limit: must be from 1 to 1000, got {limit!r}", field="limit")
        if dimension is not None:
            check_dimension(dimension)
        with self._crm.reading(ctx) as uow:
            account = self._load(uow, account_id, Action.READ, "account_id", ORG)
            table = relationship_scores
            query = select(table).where(
                table.c.account_id == account.id, self._contact_scores_visible(self._seen(uow))
            )
            if contact_id is not None:
                query = query.where(table.c.contact_id == check_id(contact_id, "contact_id"))
            if dimension is not None:
                query = query.where(table.c.dimension == dimension)
            rows = uow.connection.execute(
                query.order_by(table.c.measured_at.desc(), table.c.id.desc()).limit(limit)
            ).all()
        return [score_from_row(r) for r in rows]

    def latest_scores(
        self, account_id: int, *, contact_id: int | None = None, ctx: UnitOfWork | None = None
    ) -> dict[str, ScoreTrend]:
        """The trend of each measured dimension: the account's, or one decision maker's."""
        with self._crm.reading(ctx) as uow:
            account = self._load(uow, account_id, Action.READ, "account_id", ORG)
            assert account.id is not None
            scope = None if contact_id is None else check_id(contact_id, "contact_id")
            trends = read_trends(uow, [account.id], self._contact_scores_visible(self._seen(uow)))
        return trends.get((account.id, scope), {})

    def churn_signals(
        self, customer_ids: Sequence[int], *, ctx: UnitOfWork | None = None
    ) -> list[ChurnSignal]:
        """Weak or falling relationship scores of these accounts (source ``accounts``).

        The acting user must read every customer given.
        """
        ids = sorted({check_id(cid, "customer_ids") for cid in customer_ids})
        with self._crm.reading(ctx) as uow:
            self._crm.access.guard(uow, ids, Action.READ)
            trends = read_trends(uow, ids, self._contact_scores_visible(self._seen(uow)))
        settings = self.settings
        return signals_of(trends, settings.weak_score, settings.falling_drop)


__all__ = [
    "SIGNAL_SOURCE",
    "ScoresPart",
    "check_dimension",
    "read_trends",
    "score_from_row",
    "signals_of",
]
