"""Measures: per person and team, cadence coverage, care effect, KPIs, 360° section, churn.

Definitions (also in docs/plugins/activities.md), over a half-open period
``[start, end)``:

* **planned**: activities due in the period (any status);
* **done**: activities completed (status done) with ``completed_at`` in the period;
* **overdue rate**: among activities due in the period and before now, the
  share not done by their due time (still planned, or done after ``due_at``);
  cancelled ones are left out;
* **median lateness**: the median of ``completed_at - due_at`` in hours over
  the activities done in the period (negative: done early);
* **cadence coverage** (as of an instant ``t``): for each active cadence
  rule, the customers it targets at ``t`` (targets and consent) and, of them,
  those with a matching interaction in ``[t - window_days, t)``; coverage is
  contacted / targeted (``None`` when nothing is targeted); the overall
  figure adds up the pairs (rule, customer);
* **care actions**: done activities of care rules (birthday, anniversary,
  holiday, repurchase, winback) completed in the period; **care purchases**:
  those followed by a purchase of the customer within ``care_window_days``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import and_, exists, func, or_, select

from crmcore import CRM, ChurnSignal, Customer, Period, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_activities import store
from crmcore_activities.planner import targets_condition
from crmcore_activities.rules import CARE_TYPES
from crmcore_activities.settings import PLUGIN_NAME, settings_of
from crmcore_activities.tables import activities_table, rules_table
from crmcore_activities.validation import bad, choice


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 2)


def _rows(uow: UnitOfWork, start: datetime, end: datetime) -> list[Any]:
    t = activities_table(uow.crm.metadata)
    rows = uow.connection.execute(
        select(t.c.assignee, t.c.status, t.c.due_at, t.c.completed_at).where(
            or_(
                and_(t.c.due_at >= start, t.c.due_at < end),
                and_(t.c.completed_at >= start, t.c.completed_at < end),
            )
        )
    ).all()
    return list(rows)


def _figures(rows: Iterable[Any], start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    planned = done = late = judged = 0
    lateness: list[float] = []
    for _, status, due, completed in rows:
        if start <= due < end:
            planned += 1
            if due < now and status != "cancelled":
                judged += 1
                if status == "planned" or (completed is not None and completed > due):
                    late += 1
        if status == "done" and completed is not None and start <= completed < end:
            done += 1
            lateness.append(_hours(completed - due))
    return {
        "planned": planned,
        "done": done,
        "overdue_rate": round(late / judged, 4) if judged else None,
        "median_lateness_hours": round(median(lateness), 2) if lateness else None,
    }


@requires(Action.REPORT)
def report(
    crm: CRM, period: Period, *, by: str = "person", ctx: UnitOfWork | None = None
) -> list[dict[str, Any]]:
    """Planned, done, overdue rate and median lateness per person (or per team) in ``period``.

    A team is a manager's people (``users.<name>.manager``); an assignee
    without a configured manager is their own team.
    """
    by = choice("by", by, ("person", "team"))
    settings = settings_of(crm)
    with crm.reading(ctx) as uow:
        groups: dict[str, list[Any]] = defaultdict(list)
        for row in _rows(uow, period.start, period.end):
            who = row[0] or "(unassigned)"
            if by == "team":
                user = settings.users.get(who)
                who = user.manager if user is not None and user.manager else who
            groups[who].append(row)
        return [
            {by: who, **_figures(rows, period.start, period.end, uow.now)}
            for who, rows in sorted(groups.items())
        ]


@requires(Action.REPORT)
def coverage(
    crm: CRM, *, at: datetime | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Cadence coverage at ``at`` (default now): per rule and overall (see the module)."""
    if at is not None and (not isinstance(at, datetime) or at.tzinfo is None):
        bad("at", f"expected a timezone-aware timestamp, got {at!r}", at)
    c = crm.metadata.tables["crm_customers"]
    i = crm.metadata.tables["crm_interactions"]
    rules = rules_table(crm.metadata)
    out: dict[str, Any] = {"rules": {}}
    targeted_all = contacted_all = 0
    with crm.reading(ctx) as uow:
        when = at or uow.now
        cadences = uow.connection.execute(
            select(rules).where(rules.c.type == "cadence", rules.c.active.is_(True))
        ).all()
        for row in cadences:
            rule = dict(row._mapping)
            params = rule["params"]
            contacted = exists().where(
                i.c.customer_id == c.c.id,
                i.c.kind.in_(params["match_kinds"]),
                i.c.occurred_at >= when - timedelta(days=params["window_days"]),
                i.c.occurred_at < when,
            )
            targeted, reached = uow.connection.execute(
                select(func.count(), func.count().filter(contacted)).where(
                    targets_condition(crm.metadata, rule), c.c.created_at < when
                )
            ).one()
            targeted_all += int(targeted)
            contacted_all += int(reached or 0)
            out["rules"][rule["name"]] = {
                "targeted": int(targeted),
                "contacted": int(reached or 0),
                "coverage": round(int(reached or 0) / int(targeted), 4) if targeted else None,
            }
    out.update(
        targeted=targeted_all,
        contacted=contacted_all,
        coverage=round(contacted_all / targeted_all, 4) if targeted_all else None,
    )
    return out


@requires(Action.REPORT)
def care_effect(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, int]:
    """Care actions done in ``period`` and how many were followed by a purchase in the window."""
    t = activities_table(crm.metadata)
    r = rules_table(crm.metadata)
    i = crm.metadata.tables["crm_interactions"]
    window = timedelta(days=settings_of(crm).care_window_days)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(
            select(t.c.customer_id, t.c.completed_at)
            .join(r, r.c.id == t.c.rule_id)
            .where(
                r.c.type.in_(CARE_TYPES),
                t.c.status == "done",
                t.c.completed_at >= period.start,
                t.c.completed_at < period.end,
            )
        ).all()
        followed = 0
        for cid, done_at in rows:
            found = uow.connection.execute(
                select(i.c.id)
                .where(
                    i.c.customer_id == cid,
                    i.c.kind == "purchase",
                    i.c.occurred_at > done_at,
                    i.c.occurred_at <= done_at + window,
                )
                .limit(1)
            ).first()
            followed += found is not None
    return {"care_actions": len(rows), "care_purchases": followed}


@requires(Action.REPORT)
def metrics(crm: CRM, period: Period) -> dict[str, Any]:
    """The plugin's KPIs for ``crm.metrics(period)``: a flat mapping of numbers."""
    with crm.reading() as uow:
        figures = _figures(_rows(uow, period.start, period.end), period.start, period.end, uow.now)
    cover = coverage(crm, at=min(period.end, crm.clock()))
    care = care_effect(crm, period)
    return {
        "activities_planned": figures["planned"],
        "activities_done": figures["done"],
        "overdue_rate": figures["overdue_rate"],
        "median_lateness_hours": figures["median_lateness_hours"],
        "cadence_coverage": cover["coverage"],
        **care,
    }


@requires(Action.READ, customer=lambda crm, ctx, a: [a["customer"].id])
def profile_section(crm: CRM, customer: Customer) -> dict[str, Any] | None:
    """The next three planned and the last three done activities, and the overdue count."""
    t = activities_table(crm.metadata)
    with crm.reading() as uow:
        base = select(t).where(t.c.customer_id == customer.id)
        upcoming = uow.connection.execute(
            base.where(t.c.status == "planned").order_by(t.c.due_at, t.c.id).limit(3)
        ).all()
        last = uow.connection.execute(
            base.where(t.c.status == "done").order_by(t.c.completed_at.desc(), t.c.id).limit(3)
        ).all()
        overdue = uow.connection.execute(
            select(func.count()).where(
                t.c.customer_id == customer.id, t.c.status == "planned", t.c.due_at < uow.now
            )
        ).scalar()
        if not upcoming and not last:
            return None
        keep = ("id", "kind", "subject", "assignee", "due_local", "status", "overdue")
        return {
            "next": [{k: store.to_dict(r, uow.now)[k] for k in keep} for r in upcoming],
            "last": [
                {**{k: store.to_dict(r, uow.now)[k] for k in keep[:5]}, "outcome": r.outcome}
                for r in last
            ],
            "overdue": int(overdue or 0),
        }


@requires(Action.READ, customer="customer_ids")
def churn_signals(crm: CRM, customer_ids: Sequence[int]) -> list[ChurnSignal]:
    """Key customers (``key_tag``) with no interaction in the last ``no_contact_days`` days."""
    if not customer_ids:
        return []
    settings = settings_of(crm)
    c = crm.metadata.tables["crm_customers"]
    tags = crm.metadata.tables["crm_customer_tags"]
    i = crm.metadata.tables["crm_interactions"]
    with crm.reading() as uow:
        since = uow.now - timedelta(days=settings.no_contact_days)
        ids = uow.connection.execute(
            select(c.c.id).where(
                c.c.id.in_(list(customer_ids)),
                c.c.created_at < since,
                exists().where(tags.c.customer_id == c.c.id, tags.c.tag == settings.key_tag),
                ~exists().where(i.c.customer_id == c.c.id, i.c.occurred_at >= since),
            )
        ).scalars()
        return [
            ChurnSignal(
                int(cid),
                PLUGIN_NAME,
                f"key customer not contacted for {settings.no_contact_days} days",
                0.5,
            )
            for cid in ids
        ]


enforce_declared(__name__)
