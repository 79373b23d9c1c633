"""Cadence and care rules: add, list, switch on and off.

A rule says which customers (``targets``) get which task (``kind``,
``subject``, ``priority``, ``assign``) on which days (``type`` and
``params``); :mod:`crmcore_activities.planner` turns rules into tasks. Types:

* ``cadence``: on each occurrence of ``params.rrule`` (an RFC 5545 RRULE,
  ``dateutil.rrule``; counted from ``start_date``), every targeted customer
  without a matching interaction in the ``window_days`` days before it
  ("every key account is visited at least every 30 days": ``FREQ=DAILY;
  INTERVAL=30`` and ``window_days = 30``);
* ``onboarding``: ``params.offsets`` days after the customer was created
  (``[3, 14]``: called on day 3 and day 14);
* ``birthday`` (persons' birth dates; 29 February is celebrated on
  28 February in other years), ``anniversary`` (organisations' founding
  dates, same rule), ``holiday`` (each public holiday of ``params.country``
  and optional ``params.subdiv`` in the ``holidays`` package, e.g. ``CN``);
* ``repurchase``: ``params.days`` after a purchase with an item of
  ``params.category``; ``winback``: ``params.days`` (default 1) after a move to
  churned (the customer still churned).

Offsets and ``days`` are at least 1: a day's tasks then depend only on what
happened on earlier days, so the first run of a day already sees all of it.

Common params: ``window_days`` (default 30 for cadences, else 0: a matching
interaction in the window days before the occurrence day means no task),
``match_kinds`` (interaction kinds that count; default the kind's
interaction), ``consent`` (a consent flag the customer must have given, or
``none``; care types default to the flag of the kind's channel:
phone → ``marketing_phone``, email → ``marketing_email``, sms →
``marketing_sms``). Targets (all optional, combined with AND): ``stages``,
``tags`` (any of), ``owners``, ``customer_kind``, ``team_role`` (an account
team member in that role), ``segment`` (a saved segment's key; segmentation
installed). ``assign``: ``owner`` (default), ``manager`` (the owner's
configured manager, else the owner), ``team:<role>`` (that team member, else
the owner) or ``user:<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import holidays
from dateutil.rrule import rrulestr
from sqlalchemy import insert, select, update

from crmcore import CRM, CustomerKind, InteractionKind, Stage, UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_activities.settings import settings_of
from crmcore_activities.tables import rules_table
from crmcore_activities.validation import bad, choice, day, integer, text

#: Rule types.
TYPES = ("cadence", "onboarding", "birthday", "anniversary", "holiday", "repurchase", "winback")
#: Types that are customer care (consent applies by default).
CARE_TYPES = ("birthday", "anniversary", "holiday", "repurchase", "winback")
#: Consent flags a rule may require.
CONSENTS = ("marketing_email", "marketing_sms", "marketing_phone", "none")
#: The consent flag of a channel (care rules default to it).
CHANNEL_CONSENT = {"phone": "marketing_phone", "email": "marketing_email", "sms": "marketing_sms"}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_FIELDS = ("name", "type", "kind", "subject", "priority", "params", "targets", "assign")
_TARGETS = ("stages", "tags", "owners", "customer_kind", "team_role", "segment")


def _strings(field: str, value: Any, allowed: Any = None) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        bad(field, "expected a non-empty list of text", value)
    out = []
    for n, item in enumerate(value):
        given = text(f"{field}[{n}]", item, 200, required=True)
        assert given is not None
        if allowed is not None:
            choice(f"{field}[{n}]", given, allowed)
        out.append(given)
    return sorted(set(out))


def _targets(crm: CRM, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        bad("targets", f"expected a mapping, got {type(value).__name__}", value)
    out: dict[str, Any] = {}
    for key, given in value.items():
        field = f"targets.{key}"
        if key not in _TARGETS:
            bad(field, f"is not a target (accepts: {', '.join(_TARGETS)})")
        if key == "stages":
            out[key] = _strings(field, given, [s.value for s in Stage])
        elif key in ("tags", "owners"):
            out[key] = _strings(field, given)
        elif key == "customer_kind":
            out[key] = choice(field, given, [k.value for k in CustomerKind])
        elif key == "team_role":
            out[key] = choice(field, given, crm.config.accounts.team_roles)
        else:
            if crm.pm.get_plugin("segmentation") is None:
                bad(field, "the segmentation plugin is not installed", given)
            out[key] = text(field, given, 100, required=True)
    return out


def _params(crm: CRM, type_: str, kind: str, value: Any, start: date) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        bad("params", f"expected a mapping, got {type(value).__name__}", value)
    given = dict(value)
    out: dict[str, Any] = {}
    settings = settings_of(crm)
    if type_ == "cadence":
        rule = text("params.rrule", given.pop("rrule", None), 500, required=True)
        try:
            rrulestr(str(rule), dtstart=start)
        except (ValueError, TypeError) as exc:
            bad("params.rrule", f"{rule!r} is not a recurrence rule ({exc})", rule)
        out["rrule"] = rule
    elif type_ == "onboarding":
        offsets = given.pop("offsets", None)
        if not isinstance(offsets, list | tuple) or not offsets:
            bad("params.offsets", "expected a non-empty list of days", offsets)
        out["offsets"] = sorted(
            {integer(f"params.offsets[{n}]", o, 1, 3650) for n, o in enumerate(offsets)}
        )
    elif type_ == "holiday":
        country = text("params.country", given.pop("country", None), 10, required=True)
        subdiv = text("params.subdiv", given.pop("subdiv", None), 10)
        try:
            holidays.country_holidays(str(country), subdiv=subdiv, years=start.year)
        except NotImplementedError:
            bad("params.country", f"{country!r} is not a country of the holidays package")
        out.update(country=country, subdiv=subdiv)
    elif type_ == "repurchase":
        out["category"] = text("params.category", given.pop("category", None), 200, required=True)
        out["days"] = integer("params.days", given.pop("days", None), 1, 3650)
    elif type_ == "winback":
        out["days"] = integer("params.days", given.pop("days", 1), 1, 3650)
    default_window = 30 if type_ == "cadence" else 0
    out["window_days"] = integer(
        "params.window_days", given.pop("window_days", default_window), 0, 3650
    )
    match = given.pop("match_kinds", [settings.kinds[kind].interaction])
    out["match_kinds"] = _strings("params.match_kinds", match, [k.value for k in InteractionKind])
    channel = settings.kinds[kind].channel
    default_consent = CHANNEL_CONSENT.get(channel, "none") if type_ in CARE_TYPES else "none"
    out["consent"] = choice("params.consent", given.pop("consent", default_consent), CONSENTS)
    for key in given:
        bad(f"params.{key}", f"is not a parameter of a {type_} rule")
    return out


def _assign(crm: CRM, value: Any) -> str:
    assign = text("assign", value, 250, required=True)
    assert assign is not None
    if assign in ("owner", "manager"):
        return assign
    if assign.startswith("team:"):
        choice("assign", assign[5:], crm.config.accounts.team_roles)
        return assign
    if assign.startswith("user:") and assign[5:].strip():
        return assign
    bad("assign", f"{assign!r} is not owner, manager, team:<role> or user:<name>", value)


@requires(Action.REPORT)
def add_rule(
    crm: CRM,
    data: Mapping[str, Any],
    *,
    start_date: date | str | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Add a rule (managers and administrators); return it. See the module for the fields.

    ``start_date`` (default today in the plugin's time zone) is the first
    day the rule plans for.
    """
    if not isinstance(data, Mapping):
        bad("data", f"expected a mapping of fields, got {type(data).__name__}", data)
    for key in data:
        if key not in _FIELDS:
            bad(str(key), f"is not a field of a rule (accepts: {', '.join(_FIELDS)})")
    settings = settings_of(crm)
    name = data.get("name")
    if not isinstance(name, str) or not _CODE.match(name):
        bad("name", f"{name!r} is not a rule name (lower case letters, digits, _)", name)
    type_ = choice("type", data.get("type"), TYPES)
    kind = choice("kind", data.get("kind"), list(settings.kinds))
    subject = text("subject", data.get("subject"), 200, required=True)
    priority = integer("priority", data.get("priority", 2), 1, 3)
    targets = _targets(crm, data.get("targets", {}))
    assign = _assign(crm, data.get("assign", "owner"))
    rules = rules_table(crm.metadata)
    with crm.unit_of_work(actor, ctx) as uow:
        start = (
            day("start_date", start_date)
            if start_date is not None
            else uow.now.astimezone(settings.zone_of(None)).date()
        )
        params = _params(crm, type_, kind, data.get("params", {}), start)
        if uow.connection.execute(select(rules.c.id).where(rules.c.name == name)).first():
            bad("name", f"a rule named {name!r} exists", name)
        values = {
            "name": name,
            "type": type_,
            "kind": kind,
            "subject": subject,
            "priority": priority,
            "params": params,
            "targets": targets,
            "assign": assign,
            "start_date": start,
            "planned_through": None,
            "active": True,
            "created_at": uow.now,
        }
        inserted = uow.connection.execute(insert(rules).values(values)).inserted_primary_key
        assert inserted is not None
        rule_id = int(inserted[0])
        crm.audit.record_batch(
            uow, "activities.rule_add", "rule", [(rule_id, None, {"type": type_})]
        )
        return {"id": rule_id, **values}


@requires(Action.READ, scoped=True)
def list_rules(crm: CRM, *, ctx: UnitOfWork | None = None) -> list[dict[str, Any]]:
    """Every rule, by name (rules hold no customer data; any user may read them)."""
    rules = rules_table(crm.metadata)
    with crm.reading(ctx) as uow:
        rows = uow.connection.execute(select(rules).order_by(rules.c.name)).all()
        return [dict(r._mapping) for r in rows]


@requires(Action.REPORT)
def set_rule_active(
    crm: CRM, name: str, active: bool, *, actor: str | None = None, ctx: UnitOfWork | None = None
) -> dict[str, Any]:
    """Switch a rule on or off (its tasks stay); a ValidationError names an unknown rule."""
    if not isinstance(active, bool):
        bad("active", f"expected true or false, got {active!r}", active)
    rules = rules_table(crm.metadata)
    with crm.unit_of_work(actor, ctx) as uow:
        row = uow.connection.execute(select(rules).where(rules.c.name == name)).first()
        if row is None:
            bad("name", f"no rule is named {name!r}", name)
        uow.connection.execute(update(rules).where(rules.c.id == row.id).values(active=active))
        crm.audit.record_batch(
            uow, "activities.rule_active", "rule", [(int(row.id), None, {"active": active})]
        )
        return {**dict(row._mapping), "active": active}


enforce_declared(__name__)
