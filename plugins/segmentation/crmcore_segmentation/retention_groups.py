"""Retention by group: retention, churn rate, cohort matrix and purchase intervals per group.

A **grouping** puts customers in groups (a customer may be in several, or none):

* ``field:NAME``: the customer column ``NAME`` (one of :data:`FIELDS`), or
  ``field:attributes.KEY`` a custom field; customers without a value are in ``(none)``;
* ``tag``: one group per tag; ``segment``: one per saved segment (current members);
* ``tier`` (or ``tier:profit``): the value tier (:mod:`.tiers`) as of ``as_of``.

The groups are written once to an indexed temporary table, which every figure joins.
Per group, with the definitions of :mod:`.retention`: ``customers`` (buyers before
``as_of``), the **retention rate** of the last ``days`` days against the ``days`` before
(of the group's customers with a counted purchase in the previous period, the share with
one in the period), the **churn rate** (100 - retention), the **cohort matrix** of the
group's customers, and the median and mean **days between purchases** over all the
group's purchase intervals (:mod:`.intervals`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    case,
    cast,
    func,
    insert,
    literal,
    select,
)

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import UTCDateTime
from crmcore_segmentation.basket import item_key
from crmcore_segmentation.calendar_sql import month_label
from crmcore_segmentation.intervals import gaps_query, median_of
from crmcore_segmentation.purchases import counted_purchases
from crmcore_segmentation.retention import last_month, percent
from crmcore_segmentation.rfm import days_before, resolve_as_of
from crmcore_segmentation.settings import settings_of
from crmcore_segmentation.tables import MEMBERS, SEGMENTS, table
from crmcore_segmentation.tiers import BASES, tier_query

#: Customer columns a grouping ``field:NAME`` may use.
FIELDS = ("kind", "stage", "source_channel", "owner", "industry", "gender", "company_name")
NONE_GROUP = "(none)"


def groups_query(connection: Connection, crm: CRM, grouping: str, as_of: datetime) -> Select[Any]:
    """``customer_id``, ``grp`` (text) of a grouping (module docstring); ValidationError."""
    customers = crm.metadata.tables["crm_customers"]
    if grouping.startswith("field:"):
        name = grouping[len("field:") :]
        if name.startswith("attributes.") and len(name) > len("attributes."):
            key = name[len("attributes.") :]
            value: Any = item_key(connection, customers.c.attributes, key)
        elif name in FIELDS:
            value = customers.c[name]
        else:
            raise ValidationError(
                f"group: field {name!r} is not one of: {', '.join(FIELDS)}, attributes.KEY",
                field="group",
                value=grouping,
            )
        label = func.coalesce(cast(value, String), literal(NONE_GROUP))
        return select(customers.c.id.label("customer_id"), label.label("grp"))
    if grouping == "tag":
        tags = crm.metadata.tables["crm_customer_tags"]
        return select(tags.c.customer_id, tags.c.tag.label("grp"))
    if grouping == "segment":
        members, segments = table(crm.metadata, MEMBERS), table(crm.metadata, SEGMENTS)
        return select(members.c.customer_id, segments.c.key.label("grp")).join(
            segments, segments.c.id == members.c.segment_id
        )
    if grouping == "tier" or (grouping.startswith("tier:") and grouping[5:] in BASES):
        basis = grouping[5:] or None
        tiered = tier_query(crm, basis, as_of=as_of).subquery("gtier")
        return select(tiered.c.customer_id, tiered.c.tier.label("grp"))
    raise ValidationError(
        f"group: {grouping!r} is not field:NAME, tag, segment, tier or tier:BASIS",
        field="group",
        value=grouping,
    )


@contextmanager
def group_table(
    connection: Connection, crm: CRM, grouping: str, as_of: datetime
) -> Iterator[Table]:
    """The grouping in a temporary table indexed by customer, dropped afterwards."""
    name = f"segmentation_groups_{uuid.uuid4().hex[:12]}"
    groups = Table(
        name,
        MetaData(),
        Column("customer_id", BigInteger, nullable=False),
        Column("grp", String(300), nullable=False),
        Index(f"ix_{name}", "customer_id", "grp"),
        prefixes=["TEMPORARY"],
    )
    query = groups_query(connection, crm, grouping, as_of).distinct()
    groups.create(connection)
    try:
        connection.execute(insert(groups).from_select(["customer_id", "grp"], query))
        yield groups
    finally:
        groups.drop(connection)


@frozen
class GroupRetention:
    """One group's retention figures, cohort matrix and purchase intervals."""

    group: str
    customers: int
    previous_customers: int
    retained: int
    retention_rate: Any
    churn_rate: Any
    median_interval_days: float | None
    mean_interval_days: float | None
    cohorts: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (rates as strings)."""
        return {
            "group": self.group,
            "customers": self.customers,
            "previous_customers": self.previous_customers,
            "retained": self.retained,
            "retention_rate": None if self.retention_rate is None else str(self.retention_rate),
            "churn_rate": None if self.churn_rate is None else str(self.churn_rate),
            "median_interval_days": self.median_interval_days,
            "mean_interval_days": self.mean_interval_days,
            "cohorts": list(self.cohorts),
        }


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"{name}: must be a positive integer, got {value!r}", field=name, value=value
        )
    return value


def _retention_counts(
    connection: Connection, crm: CRM, groups: Table, moment: datetime, days: int
) -> dict[str, tuple[int, int]]:
    boundary = days_before(moment, days, "days")
    start = days_before(boundary, days, "days")
    purchases = counted_purchases(
        crm, moment, since=start, currency=settings_of(crm).currency
    ).subquery("gp")
    mark = literal(boundary, UTCDateTime)
    per_customer = (
        select(
            purchases.c.customer_id,
            func.max(case((purchases.c.occurred_at < mark, 1), else_=0)).label("was"),
            func.max(case((purchases.c.occurred_at >= mark, 1), else_=0)).label("stays"),
        )
        .group_by(purchases.c.customer_id)
        .subquery("gper")
    )
    query = (
        select(
            groups.c.grp,
            func.sum(per_customer.c.was),
            func.sum(per_customer.c.was * per_customer.c.stays),
        )
        .select_from(per_customer.join(groups, groups.c.customer_id == per_customer.c.customer_id))
        .group_by(groups.c.grp)
    )
    return {str(g): (int(w or 0), int(k or 0)) for g, w, k in connection.execute(query)}


def _cohorts(
    connection: Connection, crm: CRM, groups: Table, moment: datetime, months: int
) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    last = last_month(moment)
    first_cohort = last - months + 1
    purchases = counted_purchases(crm, moment, currency=settings_of(crm).currency).subquery("gc")
    firsts = (
        select(purchases.c.customer_id, func.min(purchases.c.month).label("cohort"))
        .group_by(purchases.c.customer_id)
        .subquery("gfirsts")
    )
    buyers = (
        select(groups.c.grp, func.count())
        .select_from(firsts.join(groups, groups.c.customer_id == firsts.c.customer_id))
        .group_by(groups.c.grp)
    )
    activity = (
        select(purchases.c.customer_id, purchases.c.month)
        .where(purchases.c.month >= literal(first_cohort, Integer))
        .distinct()
        .subquery("gactivity")
    )
    offset = (activity.c.month - firsts.c.cohort).label("offset")
    query = (
        select(groups.c.grp, firsts.c.cohort, offset, func.count().label("active"))
        .select_from(
            activity.join(firsts, firsts.c.customer_id == activity.c.customer_id).join(
                groups, groups.c.customer_id == activity.c.customer_id
            )
        )
        .where(firsts.c.cohort >= literal(first_cohort, Integer))
        .group_by(groups.c.grp, firsts.c.cohort, offset)
    )
    counts: dict[str, dict[int, dict[int, int]]] = {}
    for grp, cohort, k, active in connection.execute(query):
        counts.setdefault(str(grp), {}).setdefault(int(cohort), {})[int(k)] = int(active)
    matrices: dict[str, list[dict[str, Any]]] = {}
    for grp, by_cohort in counts.items():
        rows = []
        for cohort in sorted(by_cohort):
            size = by_cohort[cohort].get(0, 0)
            active = [
                None if cohort + k > last else by_cohort[cohort].get(k, 0) for k in range(months)
            ]
            rows.append(
                {
                    "cohort": month_label(cohort),
                    "size": size,
                    "active": active,
                    "retention": [None if a is None else str(percent(a, size)) for a in active],
                }
            )
        matrices[grp] = rows
    return {str(g): int(n) for g, n in connection.execute(buyers)}, matrices


@requires(Action.REPORT)  # an aggregate over every customer
def retention_by_group(
    crm: CRM,
    group: str,
    *,
    as_of: datetime | None = None,
    days: int = 365,
    months: int = 12,
    ctx: UnitOfWork | None = None,
) -> list[GroupRetention]:
    """Retention, churn rate, cohort matrix and intervals per group, by group name.

    Raises ValidationError for an unknown grouping or non-positive ``days``/``months``.
    """
    period = _check_positive("days", days)
    span = _check_positive("months", months)
    moment = resolve_as_of(crm, as_of)
    with crm.reading(ctx) as uow, group_table(uow.connection, crm, group, moment) as groups:
        conn = uow.connection
        kept = _retention_counts(conn, crm, groups, moment, period)
        buyers, matrices = _cohorts(conn, crm, groups, moment, span)
        spacing = _group_intervals(conn, crm, groups, moment)
    found = []
    for name in sorted(set(buyers) | set(kept)):
        before, retained = kept.get(name, (0, 0))
        rate = percent(retained, before)
        median, mean = spacing.get(name, (None, None))
        found.append(
            GroupRetention(
                group=name,
                customers=buyers.get(name, 0),
                previous_customers=before,
                retained=retained,
                retention_rate=rate,
                churn_rate=None if rate is None else 100 - rate,
                median_interval_days=median,
                mean_interval_days=mean,
                cohorts=tuple(matrices.get(name, [])),
            )
        )
    return found


def _group_intervals(
    connection: Connection, crm: CRM, groups: Table, moment: datetime
) -> dict[str, tuple[float, float]]:
    gaps = gaps_query(crm, as_of=moment).subquery("ggaps")
    joined = (
        select(groups.c.grp, gaps.c.gap)
        .select_from(gaps.join(groups, groups.c.customer_id == gaps.c.customer_id))
        .subquery("gjoined")
    )
    query = median_of(joined, joined.c.grp)
    return {
        str(row.key): (
            round(float(row.median_interval_days), 4),
            round(float(row.mean_interval_days), 4),
        )
        for row in connection.execute(query)
    }


@requires(Action.REPORT)  # an aggregate over every customer
def interval_stats_by_group(
    crm: CRM, group: str, *, as_of: datetime | None = None, ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Per group: ``group``, ``customers`` with 2+ purchase days, median and mean interval."""
    moment = resolve_as_of(crm, as_of)
    with crm.reading(ctx) as uow, group_table(uow.connection, crm, group, moment) as groups:
        spacing = _group_intervals(uow.connection, crm, groups, moment)
        gaps = gaps_query(crm, as_of=moment).subquery("gcount")
        counted = (
            select(groups.c.grp, func.count(func.distinct(gaps.c.customer_id)))
            .select_from(gaps.join(groups, groups.c.customer_id == gaps.c.customer_id))
            .group_by(groups.c.grp)
        )
        customers = {str(g): int(n) for g, n in uow.connection.execute(counted)}
    return [
        {
            "group": name,
            "customers": customers.get(name, 0),
            "median_interval_days": median,
            "mean_interval_days": mean,
        }
        for name, (median, mean) in sorted(spacing.items())
    ]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
