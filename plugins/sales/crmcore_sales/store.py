"""Reading deals into :class:`~crmcore_sales.entities.Deal` values and writing their history.

Helpers of the service modules; those taking a unit of work are declared
with ``@requires`` like every service function (the SQL builders take the
metadata and touch no data). ``last_activity_at`` is the later of the
deal's last stage change and the latest core interaction with its customer;
a deal is *stale* when it is open, its stage has ``stale_days`` configured and
``last_activity_at`` is at least ``stale_days`` whole days (of 24 hours) before now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    MetaData,
    Row,
    Select,
    and_,
    false,
    func,
    insert,
    or_,
    select,
)

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.errors import NotFoundError
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.tables import interactions
from crmcore.unit_of_work import acting_user
from crmcore_sales.entities import Deal, DealContact, DealItem, HistoryEntry
from crmcore_sales.resolvers import deal_customer
from crmcore_sales.settings import Settings, settings_of
from crmcore_sales.tables import (
    deal_contacts_table,
    deal_items_table,
    deals_table,
    history_table,
)

#: Fields whose every change is written to ``sales_deal_history``.
TRACKED = (
    "stage",
    "status",
    "probability",
    "amount",
    "currency",
    "expected_close",
    "category",
    "owner",
    "team",
    "pipeline",
)


def as_text(value: Any) -> str | None:
    """How a tracked value is stored in the history (ISO dates, plain Decimals)."""
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def last_activity(metadata: MetaData, dialect: str) -> ColumnElement[Any]:
    """``max(stage_changed_at, latest interaction of the customer)`` for each deal row."""
    deals = deals_table(metadata)
    latest = (
        select(func.max(interactions.c.occurred_at))
        .where(interactions.c.customer_id == deals.c.customer_id)
        .scalar_subquery()
    )
    return func.coalesce(
        func.max(deals.c.stage_changed_at, latest)
        if dialect == "sqlite"
        else func.greatest(deals.c.stage_changed_at, latest),
        deals.c.stage_changed_at,
    )


def stale_condition(
    metadata: MetaData, dialect: str, settings: Settings, now: datetime
) -> ColumnElement[bool]:
    """Open deals whose stage's ``stale_days`` passed since their last activity."""
    deals = deals_table(metadata)
    activity = last_activity(metadata, dialect)
    terms = [
        and_(
            deals.c.pipeline == pipeline.name,
            deals.c.stage == stage.name,
            activity <= now - timedelta(days=stage.stale_days),
        )
        for pipeline in settings.pipelines.values()
        for stage in pipeline.stages
        if stage.stale_days is not None
    ]
    return and_(deals.c.status == "open", or_(*terms) if terms else false())


def deal_query(metadata: MetaData, dialect: str) -> Select[Any]:
    """Deal rows with their ``last_activity_at``."""
    deals = deals_table(metadata)
    return select(deals, last_activity(metadata, dialect).label("last_activity_at"))


def _stale(crm: CRM, row: Any, now: datetime) -> bool:
    pipeline = settings_of(crm).pipelines.get(row.pipeline)
    if row.status != "open" or pipeline is None or row.stage not in pipeline.stage_names:
        return False
    days = pipeline.stage(row.stage).stale_days
    activity = row.last_activity_at
    if days is None or activity is None:
        return False
    if activity.tzinfo is None:  # a raw SQLite max() of two text timestamps
        activity = activity.replace(tzinfo=now.tzinfo)
    return bool(activity <= now - timedelta(days=days))


def _aware(crm: CRM, value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=crm.clock().tzinfo)
    return datetime.fromisoformat(str(value)).replace(tzinfo=crm.clock().tzinfo)


def _row_customers(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> list[int]:
    return sorted({r.customer_id for r in arguments["rows"] if r.customer_id is not None})


def _audited_customer(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> list[int]:
    customer_id = arguments.get("customer_id")
    return [] if customer_id is None else [customer_id]


@requires(Action.READ, customer=_row_customers)
def deals_from_rows(uow: UnitOfWork, rows: Sequence[Row[Any]]) -> list[Deal]:
    """Deal values for rows of :func:`deal_query`, with their contacts and items (two queries)."""
    crm = uow.crm
    ids = [r.id for r in rows]
    contacts: dict[int, list[DealContact]] = {}
    items: dict[int, list[DealItem]] = {}
    if ids:
        dc, di = deal_contacts_table(crm.metadata), deal_items_table(crm.metadata)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for c in uow.connection.execute(
                select(dc).where(dc.c.deal_id.in_(chunk)).order_by(dc.c.id)
            ):
                contacts.setdefault(c.deal_id, []).append(DealContact(c.contact_id, c.role))
            for i in uow.connection.execute(
                select(di).where(di.c.deal_id.in_(chunk)).order_by(di.c.id)
            ):
                items.setdefault(i.deal_id, []).append(
                    DealItem(i.product, i.quantity, i.unit_price)
                )
    found = []
    for row in rows:
        values = dict(row._mapping)
        activity = _aware(crm, values.pop("last_activity_at", None))
        stale = _stale(crm, _Activity(row, activity), uow.now)
        found.append(
            Deal(
                **values,
                contacts=tuple(contacts.get(row.id, ())),
                items=tuple(items.get(row.id, ())),
                last_activity_at=activity,
                stale=stale,
            )
        )
    return found


class _Activity:
    """A row with its activity time made aware (for :func:`_stale`)."""

    def __init__(self, row: Any, activity: datetime | None) -> None:
        self.pipeline, self.stage, self.status = row.pipeline, row.stage, row.status
        self.last_activity_at = activity


@requires(Action.READ, customer=deal_customer)
def load_deal(uow: UnitOfWork, deal_id: Any, *, lock: bool = False) -> Deal:
    """The deal ``deal_id`` (``lock``: ``FOR UPDATE`` on PostgreSQL); NotFoundError if unknown."""
    if isinstance(deal_id, bool) or not isinstance(deal_id, int):
        raise NotFoundError(f"deal {deal_id!r} does not exist")
    deals = deals_table(uow.crm.metadata)
    query = deal_query(uow.crm.metadata, uow.connection.dialect.name).where(deals.c.id == deal_id)
    if lock and uow.connection.dialect.name == "postgresql":
        query = query.with_for_update(of=deals)
    row = uow.connection.execute(query).first()
    if row is None:
        raise NotFoundError(f"deal {deal_id} does not exist")
    return deals_from_rows(uow, [row])[0]


@requires(Action.WRITE, customer=deal_customer)
def write_history(
    uow: UnitOfWork,
    deal_id: int,
    changes: Iterable[tuple[str, Any, Any]],
    at: datetime,
) -> list[dict[str, Any]]:
    """Append one history row per ``(field, old, new)`` that differs; return the rows written."""
    rows = [
        {
            "deal_id": deal_id,
            "field": name,
            "old": as_text(old),
            "new": as_text(new),
            "at": at,
            "actor": acting_user(uow),
        }
        for name, old, new in changes
        if as_text(old) != as_text(new)
    ]
    if rows:
        uow.connection.execute(insert(history_table(uow.crm.metadata)), rows)
    return rows


@requires(Action.WRITE, customer=_audited_customer)
def audit(
    uow: UnitOfWork,
    action: str,
    entity: str,
    entity_id: int,
    customer_id: int | None,
    **details: Any,
) -> None:
    """Record one audit entry ``sales.<action>`` (ids and codes only, no personal data)."""
    uow.crm.audit.record(
        uow, [AuditEntry(f"sales.{action}", entity, entity_id, customer_id, details)]
    )


@requires(Action.READ, customer=deal_customer)
def history_of(uow: UnitOfWork, deal_id: int) -> list[HistoryEntry]:
    """Every history row of a deal, oldest first."""
    history = history_table(uow.crm.metadata)
    rows = uow.connection.execute(
        select(history).where(history.c.deal_id == deal_id).order_by(history.c.id)
    ).all()
    return [HistoryEntry(r.deal_id, r.field, r.old, r.new, r.at, r.actor, r.id) for r in rows]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)

__all__ = [
    "TRACKED",
    "as_text",
    "audit",
    "deal_query",
    "deals_from_rows",
    "history_of",
    "last_activity",
    "load_deal",
    "stale_condition",
    "write_history",
]
