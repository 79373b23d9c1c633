"""What the example plugin does: count touches, moves and updates per customer.

Service functions do the work; :mod:`crmcore_example.plugin` only forwards
hook calls here, and :mod:`crmcore_example.cli` only parses and prints.
Writes go through the unit of work's connection (``ctx.connection``) so they
commit or roll back with the core operation that caused them. Every
function is batch-first: a constant number of statements per batch, however
many rows it holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from attrs import frozen
from sqlalchemy import Table, bindparam, case, delete, func, insert, or_, select, update

from crmcore import (
    CRM,
    ChurnSignal,
    Customer,
    CustomerChange,
    Interaction,
    LifecycleEvent,
    Period,
    UnitOfWork,
)
from crmcore.access import Action
from crmcore.reporting import ReportChart
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import UTCDateTime
from crmcore_example.tables import touches_table

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "example"

#: JSON Schema of ``[plugins.example]`` in crm.toml.
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "milestone": {"type": "integer", "minimum": 1},
        "blocked_domain": {"type": "string"},
        "read_only_users": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
}

#: Source name of the churn signals this plugin emits.
SIGNAL_SOURCE = "example"

# Ids per IN (...) list, well below every backend's bind-parameter limit.
_CHUNK = 500


@frozen
class Settings:
    """The validated ``[plugins.example]`` section."""

    milestone: int = 10
    blocked_domain: str | None = None
    read_only_users: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section already validated against :data:`CONFIG_SCHEMA`."""
        blocked = section.get("blocked_domain")
        return cls(
            milestone=int(section.get("milestone", 10)),
            blocked_domain=blocked.strip().lower() if blocked else None,
            read_only_users=frozenset(section.get("read_only_users", ())),
        )


_settings: WeakKeyDictionary[CRM, Settings] = WeakKeyDictionary()


@requires(Action.READ, scoped=True)  # configuration, no customer data
def remember_settings(crm: CRM) -> Settings:
    """Read the plugin's section once, when ``crm`` has opened (``crm_startup``)."""
    settings = Settings.from_config(crm.plugin_config(PLUGIN_NAME))
    _settings[crm] = settings
    return settings


@requires(Action.READ, scoped=True)  # configuration, no customer data
def settings_of(crm: CRM) -> Settings:
    """Return the settings ``crm`` opened with."""
    settings = _settings.get(crm)
    return settings if settings is not None else remember_settings(crm)


@requires(Action.READ, scoped=True)  # the policy itself: must not ask itself
def authorize(crm: CRM, user: str, action: str) -> bool | None:
    """Deny everything but reading to the configured ``read_only_users``; no opinion otherwise."""
    if user in settings_of(crm).read_only_users:
        return action == "read"
    return None


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _CHUNK):
        yield wanted[start : start + _CHUNK]


def _table(crm: CRM) -> Table:
    return touches_table(crm.metadata)


def _lock_rows(ctx: UnitOfWork, customer_ids: Iterable[int]) -> dict[int, int]:
    """Lock these customers' rows and return their touches; create missing rows at zero.

    Rows are missing for customers created while the plugin was disabled.
    On PostgreSQL ``FOR UPDATE`` keeps concurrent recordings from losing a
    count; SQLite serialises writers anyway.
    """
    table = _table(ctx.crm)
    current: dict[int, int] = {}
    wanted = sorted(set(customer_ids))
    for chunk in _chunks(wanted):
        query = select(table.c.customer_id, table.c.touches).where(table.c.customer_id.in_(chunk))
        if ctx.connection.dialect.name == "postgresql":
            query = query.with_for_update()
        current.update((cid, touches) for cid, touches in ctx.connection.execute(query))
    missing = [cid for cid in wanted if cid not in current]
    if missing:
        start_tracking(ctx, missing)
        current.update(dict.fromkeys(missing, 0))
    return current


# --- events ------------------------------------------------------------------


@requires(Action.WRITE, customer="customer_ids")
def start_tracking(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Give new customers a row at zero (one executemany for the batch)."""
    if customer_ids:
        ctx.connection.execute(
            insert(_table(ctx.crm)),
            [{"customer_id": cid, "touches": 0, "moves": 0, "updates": 0} for cid in customer_ids],
        )


@requires(Action.WRITE, customer="customer_ids")
def stop_tracking(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the rows of customers about to be deleted or erased."""
    table = _table(ctx.crm)
    for chunk in _chunks(customer_ids):
        ctx.connection.execute(delete(table).where(table.c.customer_id.in_(chunk)))


@requires(Action.WRITE, customer="keep_id")
def merge_counts(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    """A merge: the kept customer's counters become the sums of both; the latest touch wins."""
    table = _table(ctx.crm)
    _lock_rows(ctx, [keep_id, duplicate_id])
    theirs = ctx.connection.execute(select(table).where(table.c.customer_id == duplicate_id)).one()
    mine = ctx.connection.execute(select(table).where(table.c.customer_id == keep_id)).one()
    touched = [t for t in (mine.last_touch_at, theirs.last_touch_at) if t is not None]
    ctx.connection.execute(
        update(table)
        .where(table.c.customer_id == keep_id)
        .values(
            touches=mine.touches + theirs.touches,
            moves=mine.moves + theirs.moves,
            updates=mine.updates + theirs.updates,
            last_touch_at=max(touched) if touched else None,
        )
    )
    ctx.connection.execute(delete(table).where(table.c.customer_id == duplicate_id))


def _increment(ctx: UnitOfWork, column: str, counts: Mapping[int, int]) -> None:
    """Add ``counts[customer_id]`` to ``column``: one executemany, one row per customer."""
    if not counts:
        return
    _lock_rows(ctx, counts)
    table = _table(ctx.crm)
    ctx.connection.execute(
        update(table)
        .where(table.c.customer_id == bindparam("cid"))
        .values({column: table.c[column] + bindparam("n")}),
        [{"cid": cid, "n": n} for cid, n in counts.items()],
    )


@requires(
    Action.WRITE,
    customer=lambda crm, ctx, a: [c.after.id for c in a["changes"] if c.after.id is not None],
)
def count_updates(ctx: UnitOfWork, changes: Sequence[CustomerChange]) -> None:
    """Count updates that changed something, per customer."""
    counts = Counter(c.after.id for c in changes if c.changed and c.after.id is not None)
    _increment(ctx, "updates", counts)


@requires(Action.WRITE, customer=lambda crm, ctx, a: [e.customer_id for e in a["events"]])
def count_moves(ctx: UnitOfWork, events: Sequence[LifecycleEvent]) -> None:
    """Count lifecycle moves per customer (the initial stage at creation is no move)."""
    _increment(ctx, "moves", Counter(e.customer_id for e in events if e.from_stage is not None))


@requires(Action.WRITE, customer=lambda crm, ctx, a: [i.customer_id for i in a["interactions"]])
def record_touches(ctx: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """Add the batch's interactions to each customer's touches; fire milestones.

    One locking read and one executemany per batch, however many
    interactions hit the same customer. ``last_touch_at`` only moves forward
    (interactions may be recorded late).
    """
    counts: Counter[int] = Counter()
    latest: dict[int, datetime] = {}
    for interaction in interactions:
        cid = interaction.customer_id
        counts[cid] += 1
        if cid not in latest or interaction.occurred_at > latest[cid]:
            latest[cid] = interaction.occurred_at
    if not counts:
        return
    before = _lock_rows(ctx, counts)
    table = _table(ctx.crm)
    last = bindparam("last", type_=UTCDateTime)
    ctx.connection.execute(
        update(table)
        .where(table.c.customer_id == bindparam("cid"))
        .values(
            touches=table.c.touches + bindparam("n"),
            last_touch_at=case(
                (or_(table.c.last_touch_at.is_(None), table.c.last_touch_at < last), last),
                else_=table.c.last_touch_at,
            ),
        ),
        [{"cid": cid, "n": n, "last": latest[cid]} for cid, n in counts.items()],
    )
    milestone = settings_of(ctx.crm).milestone
    for cid in sorted(counts):
        old, new = before[cid], before[cid] + counts[cid]
        for reached in range((old // milestone + 1) * milestone, new + 1, milestone):
            ctx.crm.call_hook("example_touch_milestone", ctx=ctx, customer_id=cid, touches=reached)


#: Per kind of relationship change: the key naming the customer it is about.
_CHANGE_SUBJECT = {
    "contact": "organisation_id",
    "parent": "organisation_id",
    "link": "from_id",
    "team": "account_id",
}


def _subjects(changes: Sequence[Mapping[str, Any]]) -> list[int]:
    return sorted({int(c[_CHANGE_SUBJECT[c["kind"]]]) for c in changes})


@requires(Action.READ, customer=lambda crm, ctx, a: _subjects(a["changes"]))
def note_relationships(ctx: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
    """Emit ``example.relationships_noted`` per customer: how many changes of each kind.

    Emitted in the operation's unit of work, so it is published only if the
    change commits.
    """
    counts: dict[int, Counter[str]] = {}
    for change in changes:
        subject = int(change[_CHANGE_SUBJECT[change["kind"]]])
        counts.setdefault(subject, Counter())[change["kind"]] += 1
    ctx.emit_many(
        "example.relationships_noted",
        [{"customer_id": cid, "changes": dict(sorted(n.items()))} for cid, n in counts.items()],
    )


# --- validation ------------------------------------------------------------------


@requires(Action.READ, scoped=True)  # looks only at the customers given
def blocked_emails(crm: CRM, customers: Sequence[Customer]) -> list[tuple[int, str]]:
    """``(index, message)`` for each customer whose email is in the blocked domain."""
    blocked = settings_of(crm).blocked_domain
    if not blocked:
        return []
    problems = []
    for index, customer in enumerate(customers):
        if not customer.email or "@" not in customer.email:
            continue
        domain = customer.email.rsplit("@", 1)[1].strip().lower()
        if domain == blocked or domain.endswith("." + blocked):
            problems.append(
                (index, f"email: domain {domain} is blocked by the {PLUGIN_NAME} plugin")
            )
    return problems


# --- views -----------------------------------------------------------------------


def _row_data(row: Any) -> dict[str, Any]:
    return {
        "touches": row.touches,
        "last_touch_at": row.last_touch_at.isoformat() if row.last_touch_at else None,
        "moves": row.moves,
        "updates": row.updates,
    }


def _read(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    table = _table(ctx.crm)
    row = ctx.connection.execute(select(table).where(table.c.customer_id == customer_id)).first()
    return None if row is None else _row_data(row)


@requires(Action.READ, customer="customer_id")
def touches_of(crm: CRM, customer_id: int) -> dict[str, Any]:
    """Return one customer's counts (zero when not tracked); NotFoundError for unknown ids."""
    with crm.reading() as uow:
        crm.customers.get(customer_id, ctx=uow)
        data = _read(uow, customer_id)
    empty = {"touches": 0, "last_touch_at": None, "moves": 0, "updates": 0}
    return {"customer_id": customer_id, **(data or empty)}


@requires(Action.READ, customer=lambda crm, ctx, a: a["customer"].id)
def profile_section(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """Return the customer's section of the 360° view: ``touches``, ``last_touch_at``."""
    if customer.id is None:
        return None
    with crm.reading() as uow:
        data = _read(uow, customer.id)
    if data is None:
        return {"touches": 0, "last_touch_at": None}
    return {"touches": data["touches"], "last_touch_at": data["last_touch_at"]}


@requires(Action.READ, customer="member_ids")
def account_touches(crm: CRM, account_id: int, member_ids: Sequence[int]) -> dict[str, int]:
    """An account's section of its 360° view: touches summed over its members (roll-up)."""
    table = _table(crm)
    touches = members_touched = 0
    with crm.reading() as uow:
        for chunk in _chunks(member_ids):
            total, touched = uow.connection.execute(
                select(func.coalesce(func.sum(table.c.touches), 0), func.count()).where(
                    table.c.customer_id.in_(chunk), table.c.touches > 0
                )
            ).one()
            touches += int(total)
            members_touched += int(touched)
    return {"touches": touches, "members_touched": members_touched}


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period) -> dict[str, int]:
    """Count interactions in ``[period.start, period.end)`` and the customers they touched."""
    interactions = crm.metadata.tables["crm_interactions"]
    query = select(
        func.count(interactions.c.id), func.count(func.distinct(interactions.c.customer_id))
    ).where(interactions.c.occurred_at >= period.start, interactions.c.occurred_at < period.end)
    with crm.reading() as uow:
        touches, customers = uow.connection.execute(query).one()
    return {"touches_in_period": int(touches), "customers_touched": int(customers)}


@requires(Action.REPORT)
def touches_by_channel_chart(crm: CRM, period: Period) -> ReportChart:
    """A bar chart of the interactions in ``period`` per channel."""
    interactions = crm.metadata.tables["crm_interactions"]
    query = (
        select(interactions.c.channel, func.count())
        .where(interactions.c.occurred_at >= period.start, interactions.c.occurred_at < period.end)
        .group_by(interactions.c.channel)
        .order_by(interactions.c.channel)
    )
    with crm.reading() as uow:
        rows = uow.connection.execute(query).all()
    return ReportChart(
        title="Touches per channel",
        kind="bar",
        x_labels=[channel for channel, _ in rows],
        series={"touches": [float(n) for _, n in rows]},
    )


@requires(Action.READ, customer="customer_ids")
def never_touched(crm: CRM, customer_ids: Sequence[int]) -> list[ChurnSignal]:
    """Return a churn signal for each of these customers without a single touch."""
    table = _table(crm)
    found: list[int] = []
    with crm.reading() as uow:
        for chunk in _chunks(customer_ids):
            found.extend(
                uow.connection.execute(
                    select(table.c.customer_id).where(
                        table.c.customer_id.in_(chunk), table.c.touches == 0
                    )
                ).scalars()
            )
    return [
        ChurnSignal(customer_id=cid, source=SIGNAL_SOURCE, reason="never touched", weight=0.3)
        for cid in sorted(found)
    ]


@requires(Action.READ, scoped=True)  # the query keeps visible customers only
def top_touched(crm: CRM, limit: int = 5) -> list[dict[str, Any]]:
    """Return the most touched customers the acting user may see, most touches first."""
    table = _table(crm)
    customers = crm.metadata.tables["crm_customers"]
    query = (
        select(customers.c.id, customers.c.name, table.c.touches, table.c.last_touch_at)
        .join(table, table.c.customer_id == customers.c.id)
        .where(table.c.touches > 0, crm.access.where(customers.c.id))
        .order_by(table.c.touches.desc(), customers.c.id)
        .limit(limit)
    )
    with crm.reading() as uow:
        rows = uow.connection.execute(query).all()
    return [
        {
            "customer_id": row.id,
            "name": row.name,
            "touches": row.touches,
            "last_touch_at": row.last_touch_at,
        }
        for row in rows
    ]


# --- privacy ---------------------------------------------------------------------


@requires(Action.EXPORT, customer="customer_id")
def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Return everything the plugin holds on the customer, JSON-safe (``None``: nothing)."""
    return _read(ctx, customer_id)


@requires(Action.ERASE, customer="customer_id")
def erase(ctx: UnitOfWork, customer_id: int) -> None:
    """Forget the customer: the counts are about them, so the row goes."""
    stop_tracking(ctx, [customer_id])


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
