"""``plan``: turn the rules into tasks, set-based in SQL, idempotently.

For each active rule, ``plan`` walks the days after the rule's
``planned_through`` (else from its ``start_date``) up to ``through`` (default
today; days are calendar days in the plugin's time zone). For each
occurrence day of the rule it runs **one** ``INSERT ... SELECT`` over
``crm_customers``: the customers the rule targets on that day, that gave the
required consent, without a matching interaction in the ``window_days`` days
before the day, and without the rule's task for that day already (the unique
key ``(rule_id, occurrence, customer_id)``; the anti-join is left out when the
rule has no task of that day yet, one index probe tells). The statements per run grow with
rules x days covered, never with customers. A run records the day it reached
in ``planned_through`` (not a dry run), so running ``plan`` daily, weekly or
once at the end produces the same tasks.

Each task is due on its day at ``due_time`` in its assignee's time zone
(moved forward out of a DST gap), with the default reminder. A care rule's new
tasks are then offered to a messaging plugin (:mod:`crmcore_activities.care`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

import holidays
from dateutil.rrule import rrulestr
from sqlalchemy import (
    ColumnElement,
    MetaData,
    and_,
    case,
    exists,
    extract,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    update,
)

from crmcore import CRM, UnitOfWork
from crmcore.access import Action
from crmcore.dry_run import unit_or_dry_run
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.types import UTCDateTime
from crmcore_activities import care
from crmcore_activities.rules import CARE_TYPES
from crmcore_activities.settings import Settings, settings_of
from crmcore_activities.tables import activities_table, rules_table
from crmcore_activities.validation import bad, day, wall

#: The columns ``plan`` fills, in the order of its SELECT.
COLUMNS = (
    "customer_id",
    "kind",
    "subject",
    "assignee",
    "due_at",
    "timezone",
    "priority",
    "status",
    "source",
    "rule_id",
    "occurrence",
    "remind_at",
    "created_at",
    "updated_at",
)


def occurrences(rule: Mapping[str, Any], first: date, last: date) -> list[date]:
    """The days in ``[first, last]`` on which ``rule`` may create tasks."""
    if first > last:
        return []
    params = rule["params"]
    if rule["type"] == "cadence":
        start = datetime.combine(rule["start_date"], time(0))
        recurrence = rrulestr(params["rrule"], dtstart=start)
        found = recurrence.between(
            datetime.combine(first, time(0)), datetime.combine(last, time(0)), inc=True
        )
        return [d.date() for d in found]
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if rule["type"] == "holiday":
        years = list(range(first.year, last.year + 1))
        calendar = holidays.country_holidays(
            params["country"], subdiv=params["subdiv"], years=years
        )
        return [d for d in days if d in calendar]
    return days


def _assignee(crm: CRM, rule: Mapping[str, Any], settings: Settings) -> ColumnElement[Any]:
    customers = crm.metadata.tables["crm_customers"]
    assign: str = rule["assign"]
    if assign.startswith("user:"):
        return literal(assign[5:])
    if assign.startswith("team:"):
        team = crm.metadata.tables["crm_account_team"]
        member = (
            select(func.min(team.c.user))
            .where(team.c.customer_id == customers.c.id, team.c.role == assign[5:])
            .scalar_subquery()
        )
        return func.coalesce(member, customers.c.owner)
    if assign == "manager":
        managed = [(u, s.manager) for u, s in sorted(settings.users.items()) if s.manager]
        if managed:
            return case(
                *[(customers.c.owner == u, literal(m)) for u, m in managed],
                else_=customers.c.owner,
            )
    return customers.c.owner


def _by_zone(
    assignee: ColumnElement[Any], settings: Settings, value: Any, type_: Any = None
) -> ColumnElement[Any]:
    """A CASE over the users whose zone differs from the default: ``value(user_or_None)``."""
    own = [u for u, s in sorted(settings.users.items()) if s.timezone != settings.timezone]
    default = literal(value(None), type_=type_)
    if not own:
        return default
    return case(*[(assignee == u, literal(value(u), type_=type_)) for u in own], else_=default)


def targets_condition(metadata: MetaData, rule: Mapping[str, Any]) -> ColumnElement[bool]:
    """The customers ``rule`` targets, whatever the day: its targets and its consent."""
    tables = metadata.tables
    c = tables["crm_customers"]
    params, targets = rule["params"], rule["targets"]
    parts: list[ColumnElement[bool]] = []
    if "stages" in targets:
        parts.append(c.c.stage.in_(targets["stages"]))
    if "owners" in targets:
        parts.append(c.c.owner.in_(targets["owners"]))
    if "customer_kind" in targets:
        parts.append(c.c.kind == targets["customer_kind"])
    if "tags" in targets:
        tags = tables["crm_customer_tags"]
        parts.append(exists().where(tags.c.customer_id == c.c.id, tags.c.tag.in_(targets["tags"])))
    if "team_role" in targets:
        team = tables["crm_account_team"]
        parts.append(
            exists().where(team.c.customer_id == c.c.id, team.c.role == targets["team_role"])
        )
    if "segment" in targets:
        members, segments = tables["segmentation_members"], tables["segmentation_segments"]
        parts.append(
            exists().where(
                members.c.customer_id == c.c.id,
                members.c.segment_id == segments.c.id,
                segments.c.key == targets["segment"],
            )
        )
    if params["consent"] != "none":
        parts.append(c.c[f"consent_{params['consent']}"].is_(True))
    return and_(true(), *parts)


def _condition(
    crm: CRM, uow: UnitOfWork, rule: Mapping[str, Any], d: date, settings: Settings
) -> ColumnElement[bool]:
    """Which customers ``rule`` creates a task for on day ``d``."""
    tables = crm.metadata.tables
    c = tables["crm_customers"]
    zone = settings.zone_of(None)

    def start(of: date) -> datetime:
        return datetime.combine(of, time(0), tzinfo=zone)

    params = rule["params"]
    parts = [targets_condition(crm.metadata, rule)]
    type_ = rule["type"]
    if type_ == "onboarding":
        parts.append(
            or_(
                *[
                    and_(
                        c.c.created_at >= start(d - timedelta(days=k)),
                        c.c.created_at < start(d - timedelta(days=k - 1)),
                    )
                    for k in params["offsets"]
                ]
            )
        )
    elif type_ in ("birthday", "anniversary"):
        column = c.c.birth_date if type_ == "birthday" else c.c.founding_date
        kind = "person" if type_ == "birthday" else "organization"
        days = [d.day]
        if d.month == 2 and d.day == 28 and not _leap(d.year):
            days.append(29)  # born on 29 February: celebrated on the 28th in other years
        parts += [
            c.c.kind == kind,
            column < d,
            extract("month", column) == d.month,
            extract("day", column).in_(days),
        ]
    elif type_ == "repurchase":
        parts.append(c.c.id.in_(sorted(_buyers(uow, params, start, d))))
    elif type_ == "winback":
        events = tables["crm_lifecycle_events"]
        moved = d - timedelta(days=params["days"])
        parts += [
            c.c.stage == "churned",
            exists().where(
                events.c.customer_id == c.c.id,
                events.c.to_stage == "churned",
                events.c.at >= start(moved),
                events.c.at < start(moved + timedelta(days=1)),
            ),
        ]
    if params["window_days"]:
        interactions = tables["crm_interactions"]
        parts.append(
            ~exists().where(
                interactions.c.customer_id == c.c.id,
                interactions.c.kind.in_(params["match_kinds"]),
                interactions.c.occurred_at >= start(d - timedelta(days=params["window_days"])),
                interactions.c.occurred_at < start(d),
            )
        )
    tasks = activities_table(crm.metadata)
    same_day = and_(tasks.c.rule_id == rule["id"], tasks.c.occurrence == d)
    if uow.connection.execute(select(tasks.c.id).where(same_day).limit(1)).first() is not None:
        # only when the day was planned before (a dry run, an earlier ``through``):
        # a first planning of the day needs no anti-join on a table that grows as it runs
        parts.append(~exists().where(same_day, tasks.c.customer_id == c.c.id))
    return and_(*parts)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _buyers(uow: UnitOfWork, params: Mapping[str, Any], start: Any, d: date) -> set[int]:
    """Customers with a purchase of an item of ``params.category`` on day ``d - days``."""
    interactions = uow.crm.metadata.tables["crm_interactions"]
    bought = d - timedelta(days=params["days"])
    rows = uow.connection.execute(
        select(interactions.c.customer_id, interactions.c["items"]).where(
            interactions.c.kind == "purchase",
            interactions.c.occurred_at >= start(bought),
            interactions.c.occurred_at < start(bought + timedelta(days=1)),
        )
    )
    wanted = params["category"]
    return {
        int(cid)
        for cid, items in rows
        if any(isinstance(i, Mapping) and i.get("category") == wanted for i in items or ())
    }


def _insert_day(
    crm: CRM, uow: UnitOfWork, rule: Mapping[str, Any], d: date, settings: Settings
) -> None:
    c = crm.metadata.tables["crm_customers"]
    assignee = _assignee(crm, rule, settings)
    lead = timedelta(minutes=settings.reminder_minutes)

    def due(user: str | None) -> datetime:
        return wall(d, settings.due_time, settings.zone_of(user))

    remind = (
        _by_zone(assignee, settings, lambda u: due(u) - lead, UTCDateTime())
        if settings.reminder_minutes
        else null()
    )
    query = select(
        c.c.id,
        literal(rule["kind"]),
        literal(rule["subject"]),
        assignee,
        _by_zone(assignee, settings, due, UTCDateTime()),
        _by_zone(assignee, settings, settings.tz_name),
        literal(rule["priority"]),
        literal("planned"),
        literal("rule"),
        literal(rule["id"]),
        literal(d),
        remind,
        literal(uow.now, type_=UTCDateTime()),
        literal(uow.now, type_=UTCDateTime()),
    ).where(_condition(crm, uow, rule, d, settings))
    tasks = activities_table(crm.metadata)
    uow.connection.execute(insert(tasks).from_select(list(COLUMNS), query))


def _count(uow: UnitOfWork, rule_id: int) -> int:
    # rowcount of INSERT ... SELECT is not reliable on every driver: count instead.
    tasks = activities_table(uow.crm.metadata)
    found = uow.connection.execute(
        select(func.count()).select_from(tasks).where(tasks.c.rule_id == rule_id)
    ).scalar()
    return int(found or 0)


@requires(Action.REPORT)
def plan(
    crm: CRM,
    *,
    through: date | str | None = None,
    dry_run: bool = False,
    rules: list[str] | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Create the tasks every active rule (or the rules named) owes up to ``through``.

    Managers and administrators (it covers every customer; for cron or a
    systemd timer). Returns ``{"through", "dry_run", "created", "rules":
    {name: count}}``. ``dry_run`` does the same inserts and rolls them back.
    """
    if not isinstance(dry_run, bool):
        bad("dry_run", f"expected true or false, got {dry_run!r}", dry_run)
    settings = settings_of(crm)
    table = rules_table(crm.metadata)
    with unit_or_dry_run(crm, actor, ctx, dry_run) as uow:
        today = uow.now.astimezone(settings.zone_of(None)).date()
        last = today if through is None else day("through", through)
        if last > today:
            bad("through", f"{last.isoformat()} is in the future (today is {today.isoformat()})")
        query = select(table).where(table.c.active.is_(True)).order_by(table.c.id)
        if rules is not None:
            if not isinstance(rules, list | tuple) or not all(isinstance(r, str) for r in rules):
                bad("rules", "expected a list of rule names", rules)
            known = {r for (r,) in uow.connection.execute(select(table.c.name))}
            for name in rules:
                if name not in known:
                    bad("rules", f"no rule is named {name!r}", name)
            query = query.where(table.c.name.in_(rules))
        counts: dict[str, int] = {}
        for row in uow.connection.execute(query).all():
            rule = dict(row._mapping)
            first = (
                rule["planned_through"] + timedelta(days=1)
                if rule["planned_through"]
                else rule["start_date"]
            )
            days = occurrences(rule, first, last)
            before = _count(uow, rule["id"]) if days else 0
            for d in days:
                _insert_day(crm, uow, rule, d, settings)
                if rule["type"] in CARE_TYPES and not dry_run:
                    care.deliver(uow, rule["id"], d)
            counts[rule["name"]] = _count(uow, rule["id"]) - before if days else 0
            if first <= last:
                uow.connection.execute(
                    update(table).where(table.c.id == rule["id"]).values(planned_through=last)
                )
        total = sum(counts.values())
        if total:
            crm.audit.record_batch(
                uow,
                "activities.plan",
                "rule",
                [(None, None, {"through": last.isoformat(), **counts})],
            )
            uow.emit("activities.plan_run", None, {"through": last.isoformat(), "created": total})
        return {"through": last, "dry_run": dry_run, "created": total, "rules": counts}


enforce_declared(__name__)
