"""Configuration errors, discovery, team-role targets and assignees, bad rule parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from crmcore_activities import activities as act
from crmcore_activities import planner, rules

from crmcore import CRM
from crmcore.errors import ConfigError, ValidationError
from crmcore.testing import FrozenClock


def test_bad_configuration_names_the_field(open_crm: Any) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.activities\.timezone: 'Mars/Base'"):
        open_crm({"timezone": "Mars/Base"})
    with pytest.raises(ConfigError, match=r"plugins\.activities\.due_time"):
        open_crm({"due_time": "25:00"})


def test_discovered_through_the_entry_point(db_url: str) -> None:
    with CRM.open(db_url, upgrade=True, load_plugins=["activities"]) as crm:
        (info,) = [p for p in crm.plugins() if p.name == "activities"]
        assert info.version == "0.1.0"


def test_team_role_targets_and_assignees(acrm: CRM, clock: FrozenClock) -> None:
    clock.set(datetime(2026, 1, 1, 6, tzinfo=UTC))
    org = acrm.customers.create({"name": "Org", "kind": "organization", "owner": "alice"}).id
    other = acrm.customers.create({"name": "Other", "kind": "organization", "owner": "bob"}).id
    assert org and other
    acrm.accounts.add_member(org, "carol", "service")
    for name, assign in (
        ("by_team", "team:service"),
        ("by_manager", "manager"),
        ("by_user", "user:dan"),
    ):
        rules.add_rule(
            acrm,
            {
                "name": name,
                "type": "cadence",
                "kind": "visit",
                "subject": "Service visit",
                "params": {"rrule": "FREQ=MONTHLY"},
                "targets": {"team_role": "service"},
                "assign": assign,
            },
            start_date="2026-01-01",
        )
    planner.plan(acrm)
    got = sorted(
        (a["customer_id"], a["assignee"], a["timezone"]) for a in act.list_activities(acrm)
    )
    assert got == [
        (org, "carol", "Europe/Berlin"),
        (org, "dan", "Europe/Berlin"),
        (org, "olga", "Europe/Berlin"),
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"type": "holiday", "params": {"country": "XX"}}, r"^params\.country: 'XX' is not"),
        ({"type": "onboarding", "params": {"offsets": []}}, r"^params\.offsets: expected"),
        (
            {"type": "onboarding", "params": {"offsets": [0]}},
            r"^params\.offsets\[0\]: 0 is outside 1-3650",
        ),
        ({"type": "repurchase", "params": {"category": "filters"}}, r"^params\.days: expected"),
        ({"type": "birthday", "params": {"consent": "maybe"}}, r"^params\.consent: 'maybe'"),
        (
            {"type": "cadence", "params": {"rrule": "FREQ=DAILY", "match_kinds": ["dance"]}},
            r"^params\.match_kinds\[0\]: 'dance'",
        ),
        (
            {"type": "cadence", "params": {"rrule": "FREQ=DAILY"}, "targets": {"team_role": "x"}},
            r"^targets\.team_role: 'x' is not one of",
        ),
    ],
)
def test_bad_rule_parameters(acrm: CRM, rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rules.add_rule(acrm, {"name": "r", "kind": "care", "subject": "s", **rule})
    assert rules.list_rules(acrm) == []


def test_duplicate_rule_name_and_switching_off(acrm: CRM, clock: FrozenClock) -> None:
    acrm.customers.create({"name": "A"})
    rule = {
        "name": "r",
        "type": "cadence",
        "kind": "call",
        "subject": "s",
        "params": {"rrule": "FREQ=DAILY", "window_days": 0},
    }
    rules.add_rule(acrm, rule, start_date=date(2026, 1, 1))
    with pytest.raises(ValidationError, match=r"^name: a rule named 'r' exists"):
        rules.add_rule(acrm, rule)
    rules.set_rule_active(acrm, "r", False)
    assert planner.plan(acrm)["created"] == 0
    rules.set_rule_active(acrm, "r", True)
    assert planner.plan(acrm)["created"] == 1
    with pytest.raises(ValidationError, match=r"^name: no rule is named 'nope'"):
        rules.set_rule_active(acrm, "nope", True)
