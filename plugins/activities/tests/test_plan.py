"""``plan``: cadences, onboarding, care rules; idempotent, dry-run, set-based, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from crmcore_activities import activities as act
from crmcore_activities import planner, rules
from crmcore_activities.tables import activities_table
from sqlalchemy import event, select

from crmcore import CRM
from crmcore.errors import ValidationError
from crmcore.hooks import hookimpl
from crmcore.testing import FrozenClock


def _tasks(crm: CRM) -> list[tuple[str, int, date]]:
    t = activities_table(crm.metadata)
    r = crm.metadata.tables["activities_rules"]
    with crm.reading() as uow:
        rows = uow.connection.execute(
            select(r.c.name, t.c.customer_id, t.c.occurrence)
            .join(r, r.c.id == t.c.rule_id)
            .order_by(t.c.occurrence, r.c.name, t.c.customer_id)
        ).all()
    return [(a, int(b), c) for a, b, c in rows]


KEY = {
    "name": "key_visit",
    "type": "cadence",
    "kind": "visit",
    "subject": "Visit the key account",
    "params": {"rrule": "FREQ=DAILY;INTERVAL=30", "window_days": 30},
    "targets": {"tags": ["key_account"]},
}


def test_cadence_skips_customers_contacted_in_the_window_and_is_idempotent(
    acrm: CRM, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 1, 1, 8, 0, tzinfo=UTC))
    a, b, c = (
        acrm.customers.create({"name": n, "tags": t, "owner": o}).id
        for n, t, o in (
            ("A", ["key_account"], "alice"),
            ("B", ["key_account"], "bob"),
            ("C", [], None),
        )
    )
    assert a and b and c
    rules.add_rule(acrm, KEY, start_date="2026-01-01")
    acrm.interactions.record(
        {"customer_id": b, "kind": "visit", "occurred_at": datetime(2025, 12, 20, tzinfo=UTC)}
    )
    dry = planner.plan(acrm, dry_run=True)
    assert dry["created"] == 1 and _tasks(acrm) == []
    first = planner.plan(acrm)
    assert first["rules"] == {"key_visit": 1}
    assert _tasks(acrm) == [("key_visit", a, date(2026, 1, 1))]
    assert planner.plan(acrm)["created"] == 0
    (task,) = act.list_activities(acrm)
    # due 09:00 in alice's zone (Shanghai) = 01:00 UTC
    assert task["assignee"] == "alice" and task["due_at"] == datetime(2026, 1, 1, 1, tzinfo=UTC)
    clock.set(datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    acrm.interactions.record(
        {"customer_id": a, "kind": "visit", "occurred_at": datetime(2026, 1, 15, tzinfo=UTC)}
    )
    planner.plan(acrm)
    # 2026-01-31: a was visited on 01-15 (in the window), b's visit of 12-20 is too old.
    # 2026-03-02: neither visited within 30 days.
    assert _tasks(acrm) == [
        ("key_visit", a, date(2026, 1, 1)),
        ("key_visit", b, date(2026, 1, 31)),
        ("key_visit", a, date(2026, 3, 2)),
        ("key_visit", b, date(2026, 3, 2)),
    ]


def test_onboarding_day_3_and_14_and_the_statement_count_does_not_grow(
    acrm: CRM, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 1, 10, 12, tzinfo=UTC))
    many = acrm.customers.create_many([{"name": f"N{i}"} for i in range(30)])
    rules.add_rule(
        acrm,
        {
            "name": "welcome",
            "type": "onboarding",
            "kind": "call",
            "subject": "Welcome",
            "params": {"offsets": [3, 14]},
        },
        start_date="2026-01-10",
    )
    clock.set(datetime(2026, 1, 30, 12, tzinfo=UTC))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO ACTIVITIES_ACTIVITIES"):
            statements.append(sql)

    event.listen(acrm.engine, "before_cursor_execute", count)
    try:
        assert planner.plan(acrm)["created"] == 60
    finally:
        event.remove(acrm.engine, "before_cursor_execute", count)
    assert len(statements) == 21  # one per day covered (10..30 January), not per customer
    days = {d for _, _, d in _tasks(acrm)}
    assert days == {date(2026, 1, 13), date(2026, 1, 24)}
    assert {cid for _, cid, _ in _tasks(acrm)} == {c.id for c in many}


def test_birthdays_29_february_anniversaries_and_consent(acrm: CRM, clock: FrozenClock) -> None:
    clock.set(datetime(2027, 2, 1, 12, tzinfo=UTC))
    leap = acrm.customers.create(
        {"name": "Leap", "birth_date": "2000-02-29", "consent": {"marketing_phone": True}}
    ).id
    silent = acrm.customers.create({"name": "No consent", "birth_date": "1990-02-28"}).id
    org = acrm.customers.create(
        {
            "name": "Org",
            "kind": "organization",
            "founding_date": "2010-03-01",
            "consent": {"marketing_phone": True},
        }
    ).id
    assert leap and silent and org
    for name, type_ in (("bday", "birthday"), ("founding", "anniversary")):
        rules.add_rule(
            acrm,
            {"name": name, "type": type_, "kind": "care", "subject": "Greetings"},
            start_date="2027-02-01",
        )
    clock.set(datetime(2027, 3, 2, 12, tzinfo=UTC))
    planner.plan(acrm)
    assert _tasks(acrm) == [("bday", leap, date(2027, 2, 28)), ("founding", org, date(2027, 3, 1))]


def test_chinese_holidays(acrm: CRM, clock: FrozenClock) -> None:
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    cid = acrm.customers.create({"name": "Wang", "consent": {"marketing_sms": True}}).id
    rules.add_rule(
        acrm,
        {
            "name": "cn",
            "type": "holiday",
            "kind": "message",
            "subject": "Happy holidays",
            "params": {"country": "CN"},
        },
        start_date="2026-02-01",
    )
    clock.set(datetime(2026, 2, 28, tzinfo=UTC))
    planner.plan(acrm)
    days = [d for _, who, d in _tasks(acrm) if who == cid]
    assert date(2026, 2, 17) in days  # Spring Festival 2026
    assert all(d.month == 2 for d in days) and date(2026, 2, 10) not in days


def test_repurchase_and_winback(acrm: CRM, clock: FrozenClock) -> None:
    clock.set(datetime(2026, 1, 1, 10, tzinfo=UTC))
    buyer, other, lost = (
        acrm.customers.create({"name": n, "consent": {"marketing_phone": True}}).id
        for n in ("Buyer", "Other", "Lost")
    )
    assert buyer and other and lost
    for cid, category in ((buyer, "filters"), (other, "pumps")):
        acrm.interactions.record(
            {
                "customer_id": cid,
                "kind": "purchase",
                "occurred_at": clock(),
                "amount": "10",
                "currency": "EUR",
                "items": [{"sku": "X", "category": category}],
            }
        )
    acrm.lifecycle.move(lost, "new")
    acrm.lifecycle.move(lost, "churned")
    rules.add_rule(
        acrm,
        {
            "name": "filters",
            "type": "repurchase",
            "kind": "call",
            "subject": "New filter?",
            "params": {"category": "filters", "days": 90},
        },
        start_date="2026-01-01",
    )
    rules.add_rule(
        acrm,
        {
            "name": "winback",
            "type": "winback",
            "kind": "call",
            "subject": "Win back",
            "params": {"days": 7},
        },
        start_date="2026-01-01",
    )
    clock.set(datetime(2026, 4, 15, 10, tzinfo=UTC))
    planner.plan(acrm)
    assert _tasks(acrm) == [
        ("winback", lost, date(2026, 1, 8)),
        ("filters", buyer, date(2026, 4, 1)),
    ]


def test_due_time_across_dst(open_crm: Any, clock: FrozenClock) -> None:
    crm = open_crm({"timezone": "Europe/Berlin", "due_time": "02:30"})
    clock.set(datetime(2026, 3, 28, 12, tzinfo=UTC))
    crm.customers.create({"name": "A", "tags": ["key_account"]})
    rules.add_rule(
        crm, {**KEY, "params": {"rrule": "FREQ=DAILY", "window_days": 1}}, start_date="2026-03-28"
    )
    clock.set(datetime(2026, 3, 30, 12, tzinfo=UTC))
    planner.plan(crm)
    dues = [a["due_local"] for a in act.list_activities(crm)]
    # 02:30 does not exist on 29 March in Berlin: moved forward to 03:30 CEST.
    assert dues == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "weekly"}, "^type: 'weekly' is not one of"),
        (
            {"params": {"rrule": "FREQ=SOMETIMES"}},
            "^params.rrule: 'FREQ=SOMETIMES' is not a recurrence",
        ),
        ({"params": {"rrule": "FREQ=DAILY", "colour": 1}}, "^params.colour: is not a parameter"),
        ({"targets": {"stages": ["gone"]}}, r"^targets.stages\[0\]: 'gone' is not one of"),
        ({"targets": {"segment": "vip"}}, "^targets.segment: the segmentation plugin is not"),
        ({"assign": "someone"}, "^assign: 'someone' is not owner"),
        ({"name": "Bad Name"}, "^name: 'Bad Name' is not a rule name"),
    ],
)
def test_bad_rules_name_the_field(acrm: CRM, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rules.add_rule(acrm, {**KEY, **change})
    assert rules.list_rules(acrm) == []


def test_plan_refuses_the_future_and_unknown_rules(acrm: CRM) -> None:
    with pytest.raises(ValidationError, match=r"^through: 2027-01-01 is in the future"):
        planner.plan(acrm, through="2027-01-01")
    with pytest.raises(ValidationError, match=r"^rules: no rule is named 'nope'"):
        planner.plan(acrm, rules=["nope"])


class Messenger:
    """A messaging plugin: takes over the care tasks of even customer ids, queues them."""

    def __init__(self) -> None:
        self.offered: list[int] = []

    @hookimpl(optionalhook=True)
    def activities_care_messages(self, ctx: Any, tasks: Any) -> list[int]:
        """Take every task of an even customer id."""
        self.offered += [t["activity_id"] for t in tasks]
        return [t["activity_id"] for t in tasks if t["customer_id"] % 2 == 0]


def test_care_tasks_taken_over_by_a_messaging_plugin(open_crm: Any, clock: FrozenClock) -> None:
    messenger = Messenger()
    crm = open_crm(extra=[messenger])
    clock.set(datetime(2026, 3, 1, 12, tzinfo=UTC))
    ids = [crm.customers.create({"name": f"P{n}", "birth_date": "1990-03-02"}).id for n in range(4)]
    rules.add_rule(
        crm,
        {
            "name": "bday",
            "type": "birthday",
            "kind": "message",
            "subject": "Happy birthday",
            "params": {"consent": "none"},
        },
        start_date="2026-03-01",
    )
    clock.set(datetime(2026, 3, 2, 6, tzinfo=UTC))
    assert planner.plan(crm, dry_run=True)["created"] == 4 and messenger.offered == []
    assert planner.plan(crm)["created"] == 4 and len(messenger.offered) == 4
    assert planner.plan(crm)["created"] == 0 and len(messenger.offered) == 4
    by_customer = {a["customer_id"]: a for a in act.list_activities(crm)}
    for cid in ids:
        assert cid is not None
        task = by_customer[cid]
        if cid % 2 == 0:
            assert task["status"] == "done" and task["outcome"] == "sent as message"
            # The messenger records the interaction when it sends; this one never sends.
            assert task["interaction_id"] is None
            assert crm.interactions.list(customer_id=cid).items == []
        else:
            assert task["status"] == "planned"
