"""Property: ``plan`` run on any schedule of days creates the same tasks as one run at the end."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmcore_activities import planner, rules
from crmcore_activities.tables import activities_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crmcore import CRM
from crmcore.testing import FrozenClock

DAY0 = date(2028, 2, 20)  # the span covers 29 February 2028 and a month end
SPAN = 20


def _at(day: int, hour: int = 10) -> datetime:
    return datetime.combine(
        DAY0 + timedelta(days=day), datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=hour)


customers = st.lists(
    st.tuples(
        st.booleans(),  # tagged
        st.sampled_from(["alice", "bob", None]),  # owner
        st.integers(0, 3),  # created on day
        st.sampled_from([None, "2000-02-29", "1990-03-01", "1985-02-25"]),  # birth date
    ),
    min_size=1,
    max_size=5,
)
interactions = st.lists(
    st.tuples(st.integers(0, 4), st.integers(-10, SPAN), st.sampled_from(["visit", "call"])),
    max_size=8,
)
schedules = st.sets(st.integers(0, SPAN), max_size=8)
intervals = st.integers(1, 6)
windows = st.integers(0, 7)


def _tasks(crm: CRM, names: dict[str, str]) -> list[tuple[Any, ...]]:
    t = activities_table(crm.metadata)
    r = crm.metadata.tables["activities_rules"]
    with crm.reading() as uow:
        rows = uow.connection.execute(
            select(r.c.name, t.c.customer_id, t.c.occurrence, t.c.due_at, t.c.assignee)
            .join(r, r.c.id == t.c.rule_id)
            .where(r.c.name.in_(list(names)))
        ).all()
    return sorted((names[n], *rest) for n, *rest in rows)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(customers, interactions, schedules, intervals, windows)
def test_any_schedule_of_runs_equals_one_run_at_the_end(
    acrm: CRM,
    clock: FrozenClock,
    people: list[tuple[bool, str | None, int, str | None]],
    touches: list[tuple[int, int, str]],
    schedule: set[int],
    interval: int,
    window: int,
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    ids = []
    for tagged, owner, created, born in people:
        clock.set(_at(created, 8))
        ids.append(
            acrm.customers.create(
                {"name": "P", "owner": owner, "tags": [tag] if tagged else [], "birth_date": born}
            ).id
        )
    clock.set(_at(SPAN, 23))
    for who, day, kind in touches:
        if who < len(ids):
            acrm.interactions.record(
                {"customer_id": ids[who], "kind": kind, "occurred_at": _at(day, 12)}
            )
    definitions = [
        {
            "type": "cadence",
            "kind": "visit",
            "subject": "v",
            "targets": {"tags": [tag]},
            "params": {"rrule": f"FREQ=DAILY;INTERVAL={interval}", "window_days": window},
        },
        {
            "type": "onboarding",
            "kind": "call",
            "subject": "w",
            "params": {"offsets": [1, 3]},
            "targets": {"tags": [tag]},
        },
        {
            "type": "birthday",
            "kind": "care",
            "subject": "b",
            "params": {"consent": "none", "window_days": window, "match_kinds": ["call"]},
        },
        {  # Washington's Birthday, 21 February 2028, lies in the span
            "type": "holiday",
            "kind": "message",
            "subject": "h",
            "targets": {"tags": [tag]},
            "params": {"country": "US", "consent": "none", "window_days": window},
        },
    ]
    names: dict[str, dict[str, str]] = {"daily": {}, "once": {}}
    for mode in names:
        for n, definition in enumerate(definitions):
            name = f"{mode}_{n}_{tag}"
            rules.add_rule(acrm, {"name": name, **definition}, start_date=DAY0)
            names[mode][name] = str(n)
    for day in sorted(schedule):
        clock.set(_at(day, 7))
        planner.plan(acrm, rules=list(names["daily"]))
    clock.set(_at(SPAN, 7))
    planner.plan(acrm, rules=list(names["daily"]))
    planner.plan(acrm, rules=list(names["once"]))
    daily, once = _tasks(acrm, names["daily"]), _tasks(acrm, names["once"])
    assert daily == once
    # none twice; the holiday rule planned only 21 February
    assert len({t[:3] for t in daily}) == len(daily)
    assert {t[2] for t in daily if t[0] == "3"} <= {date(2028, 2, 21)}


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(["active", "prospect"])), min_size=1, max_size=6
    ),
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 40), st.sampled_from(["visit", "call"])),
        max_size=10,
    ),
    st.integers(1, 30),
)
def test_cadence_coverage_equals_a_plain_count(
    acrm: CRM,
    clock: FrozenClock,
    people: list[tuple[bool, str]],
    touches: list[tuple[int, int, str]],
    window: int,
) -> None:
    from crmcore_activities import measures

    tag = f"t{uuid.uuid4().hex[:8]}"
    clock.set(_at(-60))
    ids = []
    for tagged, stage in people:
        cid = acrm.customers.create({"name": "P", "tags": [tag] if tagged else []}).id
        assert cid is not None
        if stage == "active":
            acrm.lifecycle.move(cid, "new")
            acrm.lifecycle.move(cid, "active")
        ids.append(cid)
    clock.set(_at(41))
    seen: list[tuple[int, datetime, str]] = []
    for who, day, kind in touches:
        if who < len(ids):
            acrm.interactions.record(
                {"customer_id": ids[who], "kind": kind, "occurred_at": _at(day)}
            )
            seen.append((ids[who], _at(day), kind))
    rules.add_rule(
        acrm,
        {
            "name": f"c_{tag}",
            "type": "cadence",
            "kind": "visit",
            "subject": "v",
            "params": {"rrule": "FREQ=DAILY", "window_days": window},
            "targets": {"tags": [tag], "stages": ["active"]},
        },
        start_date=DAY0,
    )
    at = _at(30, 0)
    got = measures.coverage(acrm, at=at)["rules"][f"c_{tag}"]
    targeted = {
        cid
        for cid, (tagged, stage) in zip(ids, people, strict=True)
        if tagged and stage == "active"
    }
    contacted = {
        cid
        for cid, when, kind in seen
        if cid in targeted and kind == "visit" and at - timedelta(days=window) <= when < at
    }
    assert got["targeted"] == len(targeted) and got["contacted"] == len(contacted)
    assert got["coverage"] == (round(len(contacted) / len(targeted), 4) if targeted else None)
