"""Saved rule-based segments: define, list, refresh membership in SQL, history, members.

Refreshing a segment compiles its rule (:mod:`.rules`) to one query, compares the
result with the stored members in SQL (two anti-joins), writes the difference
(joins and leaves, each recorded in ``segmentation_history``) and fires
``segmentation_membership_changed`` with the changes, all in one unit of work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from attrs import frozen
from sqlalchemy import Select, delete, func, insert, literal, select, union_all, update
from sqlalchemy.sql.elements import ColumnElement

from crmcore import CRM, NotFoundError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import UTCDateTime
from crmcore_segmentation.rules import compile_rule
from crmcore_segmentation.tables import HISTORY, MEMBERS, SEGMENTS, table

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
#: Changes per call of ``segmentation_membership_changed``.
HOOK_BATCH = 500


@frozen
class Segment:
    """A saved segment definition and its last refresh."""

    id: int
    key: str
    name: str
    description: str | None
    rule: Mapping[str, Any]
    member_count: int
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "rule": dict(self.rule),
            "member_count": self.member_count,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _segment(row: Any) -> Segment:
    return Segment(
        id=int(row.id),
        key=row.key,
        name=row.name,
        description=row.description,
        rule=row.rule,
        member_count=int(row.member_count),
        refreshed_at=row.refreshed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _audit(uow: UnitOfWork, action: str, segment: Segment, details: Mapping[str, Any]) -> None:
    """Audit a change of a saved segment through core."""
    uow.crm.audit.record(uow, [AuditEntry(action, "segment", segment.id, None, details)])


def _get(uow: UnitOfWork, key: str, *, lock: bool = False) -> Segment:
    segments = table(uow.crm.metadata, SEGMENTS)
    query = select(segments).where(segments.c.key == key)
    if lock and uow.connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = uow.connection.execute(query).first()
    if row is None:
        raise NotFoundError(f"segment {key!r} does not exist")
    return _segment(row)


@requires(Action.WRITE)  # a rule is evaluated over every customer: only who may act on all
def define_segment(
    crm: CRM,
    key: str,
    rule: Mapping[str, Any],
    *,
    name: str | None = None,
    description: str | None = None,
    refresh: bool = True,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Segment:
    """Create segment ``key`` or replace its rule, then (by default) refresh its members.

    Raises ValidationError for a bad key, name or rule (the message names
    the rule path at fault); nothing is stored then.
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValidationError(
            f"key: {key!r} must be lower-case letters, digits, '_' or '-', starting with a "
            "letter (at most 100)",
            field="key",
            value=key,
        )
    if name is not None and not 0 < len(name) <= 200:
        raise ValidationError("name: must be 1 to 200 characters", field="name", value=name)
    compile_rule(crm, rule)  # validates before anything is written
    segments = table(crm.metadata, SEGMENTS)
    with crm.unit_of_work(actor, ctx) as uow:
        existing = uow.connection.execute(
            select(segments.c.id).where(segments.c.key == key)
        ).scalar()
        if existing is None:
            uow.connection.execute(
                insert(segments).values(
                    key=key,
                    name=name or key,
                    description=description,
                    rule=dict(rule),
                    created_at=uow.now,
                    updated_at=uow.now,
                    member_count=0,
                )
            )
        else:
            values: dict[str, Any] = {"rule": dict(rule), "updated_at": uow.now}
            if name is not None:
                values["name"] = name
            if description is not None:
                values["description"] = description
            uow.connection.execute(update(segments).where(segments.c.id == existing).values(values))
        defined = _get(uow, key)
        _audit(uow, "segmentation.define", defined, {"key": key})
        if refresh:
            refresh_segments(crm, [key], ctx=uow)
        return _get(uow, key)


@requires(Action.READ, scoped=True)  # counts only visible members
def list_segments(
    crm: CRM, *, limit: int | None = None, ctx: UnitOfWork | None = None
) -> list[Segment]:
    """Every saved segment (the first ``limit`` of them), by key."""
    segments = table(crm.metadata, SEGMENTS)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(select(segments).order_by(segments.c.key).limit(limit)).all()
        return _visible_counts(uow, [_segment(r) for r in rows])


def _visible_counts(uow: UnitOfWork, found: list[Segment]) -> list[Segment]:
    """The segments with ``member_count`` counting only members the principal may read."""
    crm = uow.crm
    if not found or crm.access.visible_condition(ctx=uow) is None:
        return found
    members = table(crm.metadata, MEMBERS)
    query = (
        select(members.c.segment_id, func.count())
        .where(
            members.c.segment_id.in_([s.id for s in found]),
            crm.access.where(members.c.customer_id, ctx=uow),
        )
        .group_by(members.c.segment_id)
    )
    counts: dict[int, int] = {int(k): int(n) for k, n in uow.connection.execute(query)}
    return [attrs.evolve(s, member_count=int(counts.get(s.id, 0))) for s in found]


@requires(Action.READ, scoped=True)  # counts only visible members
def get_segment(crm: CRM, key: str, *, ctx: UnitOfWork | None = None) -> Segment:
    """One saved segment; NotFoundError when unknown."""
    with crm.reading(ctx) as uow:
        return _visible_counts(uow, [_get(uow, key)])[0]


@requires(Action.WRITE)  # a rule is evaluated over every customer: only who may act on all
def delete_segment(
    crm: CRM, key: str, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> None:
    """Delete segment ``key`` with its members and history; NotFoundError when unknown."""
    segments = table(crm.metadata, SEGMENTS)
    with crm.unit_of_work(actor, ctx) as uow:
        segment = _get(uow, key, lock=True)
        for name in (MEMBERS, HISTORY):
            target = table(crm.metadata, name)
            uow.connection.execute(delete(target).where(target.c.segment_id == segment.id))
        uow.connection.execute(delete(segments).where(segments.c.id == segment.id))
        _audit(uow, "segmentation.delete", segment, {"key": key})


@requires(Action.WRITE)  # a rule is evaluated over every customer: only who may act on all
def refresh_segments(
    crm: CRM,
    keys: Sequence[str] | None = None,
    *,
    as_of: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, dict[str, int]]:
    """Recompute the members of ``keys`` (default: every segment) in one unit of work.

    Returns ``{key: {"joined": n, "left": n, "members": n}}``. RFM and tier
    conditions are evaluated as of ``as_of`` (default: the unit of work's
    ``now``). Raises NotFoundError for an unknown key. The work is done in
    the database (``INSERT ... SELECT``), so memory does not grow with the
    number of members; ``segmentation_membership_changed`` is called once
    per batch of at most :data:`HOOK_BATCH` changes.
    """
    segments = table(crm.metadata, SEGMENTS)
    members = table(crm.metadata, MEMBERS)
    results: dict[str, dict[str, int]] = {}
    with crm.unit_of_work(actor, ctx) as uow:
        if keys is None:
            keys = list(
                uow.connection.execute(select(segments.c.key).order_by(segments.c.key)).scalars()
            )
        moment = as_of or uow.now
        for key in keys:
            segment = _get(uow, key, lock=True)
            wanted = compile_rule(crm, segment.rule, as_of=moment)
            joined, left = _write_changes(uow, segment.id, key, wanted)
            count = uow.connection.execute(
                select(func.count()).select_from(members).where(members.c.segment_id == segment.id)
            ).scalar_one()
            uow.connection.execute(
                update(segments)
                .where(segments.c.id == segment.id)
                .values(member_count=count, refreshed_at=uow.now)
            )
            results[key] = {"joined": joined, "left": left, "members": int(count)}
            _audit(uow, "segmentation.refresh", segment, {"key": key, **results[key]})
    return results


def _write_changes(
    uow: UnitOfWork, segment_id: int, key: str, wanted: Select[Any]
) -> tuple[int, int]:
    """Record and apply the difference between ``wanted`` and the stored members, in SQL.

    One ``INSERT ... SELECT`` writes the joins and leaves to the history (the
    rule's query runs once: wanted and current members side by side, grouped
    by customer); the members follow from those history rows; the hook gets
    them in batches. Returns ``(joined, left)``.
    """
    metadata = uow.crm.metadata
    members, history = table(metadata, MEMBERS), table(metadata, HISTORY)
    conn = uow.connection
    mine = members.c.segment_id == segment_id
    before = conn.execute(
        select(func.coalesce(func.max(history.c.id), 0)).where(history.c.segment_id == segment_id)
    ).scalar_one()
    rule = wanted.subquery("wanted")
    sides = union_all(
        select(rule.c.customer_id, literal(1).label("w"), literal(0).label("m")),
        select(members.c.customer_id, literal(0).label("w"), literal(1).label("m")).where(mine),
    ).subquery("sides")
    is_joined = func.max(sides.c.w) == 1
    changed = (
        select(
            literal(segment_id).label("segment_id"),
            sides.c.customer_id,
            is_joined.label("joined"),
            literal(uow.now, UTCDateTime).label("at"),
        )
        .group_by(sides.c.customer_id)
        .having(func.max(sides.c.w) != func.max(sides.c.m))
        .order_by(is_joined.desc(), sides.c.customer_id)
    )
    conn.execute(
        insert(history).from_select(["segment_id", "customer_id", "joined", "at"], changed)
    )
    this_refresh = (history.c.segment_id == segment_id) & (history.c.id > before)
    conn.execute(
        insert(members).from_select(
            ["segment_id", "customer_id", "joined_at"],
            select(
                history.c.segment_id, history.c.customer_id, literal(uow.now, UTCDateTime)
            ).where(this_refresh, history.c.joined.is_(True)),
        )
    )
    leaving = select(history.c.customer_id).where(this_refresh, history.c.joined.is_(False))
    conn.execute(delete(members).where(mine, members.c.customer_id.in_(leaving)))
    counts = {
        bool(joined): int(n)
        for joined, n in conn.execute(
            select(history.c.joined, func.count()).where(this_refresh).group_by(history.c.joined)
        )
    }
    for batch in _change_batches(uow, this_refresh):
        uow.crm.call_hook(
            "segmentation_membership_changed",
            ctx=uow,
            changes=[
                {"segment": key, "customer_id": cid, "joined": j, "at": uow.now} for cid, j in batch
            ],
        )
    return int(counts.get(True, 0)), int(counts.get(False, 0))


def _change_batches(
    uow: UnitOfWork, this_refresh: ColumnElement[bool]
) -> Iterator[list[tuple[int, bool]]]:
    """The changes of one refresh, joins then leaves, each by customer id, in keyset pages."""
    history = table(uow.crm.metadata, HISTORY)
    for joined in (True, False):
        last = 0
        while True:
            page = [
                (int(cid), joined)
                for cid in uow.connection.execute(
                    select(history.c.customer_id)
                    .where(
                        this_refresh,
                        history.c.joined.is_(joined),
                        history.c.customer_id > last,
                    )
                    .order_by(history.c.customer_id)
                    .limit(HOOK_BATCH)
                ).scalars()
            ]
            if not page:
                break
            yield page
            last = page[-1][0]


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def iter_segment_members(
    crm: CRM, key: str, *, limit: int | None = None, ctx: UnitOfWork | None = None
) -> Iterator[dict[str, Any]]:
    """:func:`segment_members` as an iterator: rows stream from the database as consumed.

    NotFoundError for an unknown key is raised at the call.
    """
    members = table(crm.metadata, MEMBERS)
    customers = crm.metadata.tables["crm_customers"]
    segment = get_segment(crm, key)
    query = (
        select(members.c.customer_id, customers.c.name, members.c.joined_at)
        .join(customers, customers.c.id == members.c.customer_id)
        .where(
            members.c.segment_id == segment.id,
            crm.access.where(members.c.customer_id, ctx=ctx),
        )
        .order_by(members.c.customer_id)
        .limit(limit)
        .execution_options(yield_per=1000)
    )
    return _stream_members(crm, query, ctx=ctx)


def _stream_members(
    crm: CRM, query: Select[Any], *, ctx: UnitOfWork | None = None
) -> Iterator[dict[str, Any]]:
    with crm.reading(ctx) as uow:
        for r in uow.connection.execute(query):
            yield {"customer_id": int(r.customer_id), "name": r.name, "joined_at": r.joined_at}


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def segment_members(
    crm: CRM, key: str, *, limit: int | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Current members of segment ``key`` by id: ``customer_id``, ``name``, ``joined_at``."""
    return list(iter_segment_members(crm, key, limit=limit, ctx=ctx))


@requires(Action.READ, scoped=True)  # rows only of customers the principal may read
def membership_history(
    crm: CRM,
    key: str | None = None,
    *,
    customer_id: int | None = None,
    ctx: UnitOfWork | None = None,
) -> list[dict[str, Any]]:
    """Joins and leaves, oldest first, of one segment and/or one customer."""
    history = table(crm.metadata, HISTORY)
    segments = table(crm.metadata, SEGMENTS)
    query = (
        select(segments.c.key, history.c.customer_id, history.c.joined, history.c.at)
        .join(segments, segments.c.id == history.c.segment_id)
        .order_by(history.c.at, history.c.id)
    )
    if key is not None:
        query = query.where(segments.c.key == key)
    if customer_id is not None:
        query = query.where(history.c.customer_id == customer_id)
    query = query.where(crm.access.where(history.c.customer_id, ctx=ctx))
    with crm.reading(ctx) as uow:
        return [
            {
                "segment": r.key,
                "customer_id": int(r.customer_id),
                "joined": bool(r.joined),
                "at": r.at,
            }
            for r in uow.connection.execute(query)
        ]


@requires(Action.READ, customer="customer_id")
def segments_of(uow: UnitOfWork, customer_id: int) -> list[str]:
    """Keys of the saved segments the customer is currently a member of."""
    members = table(uow.crm.metadata, MEMBERS)
    segments = table(uow.crm.metadata, SEGMENTS)
    return list(
        uow.connection.execute(
            select(segments.c.key)
            .join(members, members.c.segment_id == segments.c.id)
            .where(members.c.customer_id == customer_id)
            .order_by(segments.c.key)
        ).scalars()
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
