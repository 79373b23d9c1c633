"""Issue 11 items 2-3: account teams, relationship scores over time, churn signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crmcore import CRM, NotFoundError, ValidationError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.model.accounts import DIMENSIONS, AccountSettings
from crmcore.pytest_plugin import CRMFactory
from crmcore.testing import FrozenClock


def _org(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, "kind": "organization", **fields})
    assert customer.id is not None
    return customer.id


def _person(crm: CRM, name: str) -> int:
    customer = crm.customers.create({"name": name})
    assert customer.id is not None
    return customer.id


def test_team_members_and_roles(crm: CRM) -> None:
    org = _org(crm, "Acme", owner="olga")
    assert crm.accounts.add_member(org, "sam", "service").role == "service"
    crm.accounts.add_member(org, "alice", "account_manager")
    crm.accounts.add_member(org, "pete", "pre_sales")
    assert [(m.user, m.role) for m in crm.accounts.team(org)] == [
        ("alice", "account_manager"),
        ("pete", "pre_sales"),
        ("sam", "service"),
    ]
    moved = crm.accounts.add_member(org, "sam", "pre_sales")
    assert moved.role == "pre_sales"
    assert crm.accounts.add_member(org, "sam", "pre_sales") == moved  # no change
    assert crm.accounts.remove_member(org, "pete").user == "pete"
    with pytest.raises(NotFoundError, match="pete is not on the team"):
        crm.accounts.remove_member(org, "pete")
    with pytest.raises(ValidationError, match="role: 'boss' is not one of: account_manager"):
        crm.accounts.add_member(org, "x", "boss")
    with pytest.raises(ValidationError, match="user: must not be empty"):
        crm.accounts.add_member(org, " ", "service")
    with pytest.raises(ValidationError, match="is a person, not an organisation"):
        crm.accounts.add_member(_person(crm, "Li"), "x", "service")
    changes = [e.data for e in crm.events.list(type="account.relationship_changed")]
    assert [(c["action"], c["user"]) for c in changes] == [
        ("added", "sam"),
        ("added", "alice"),
        ("added", "pete"),
        ("updated", "sam"),
        ("removed", "pete"),
    ]
    assert changes[3]["previous_role"] == "service"
    # handing out access needs GRANT: an agent, even the owner, may not
    olga = crm.as_user(Principal("olga"))
    with pytest.raises(AccessDeniedError):
        olga.accounts.add_member(org, "friend", "service")
    mona = crm.as_user(Principal("mona", Role.MANAGER))
    assert mona.accounts.add_member(org, "friend", "service").user == "friend"
    assert {m.user for m in olga.accounts.team(org)} == {"alice", "sam", "friend"}


def test_scores_history_and_trend(crm: CRM, clock: FrozenClock) -> None:
    org, li = _org(crm, "Acme"), _person(crm, "Li")
    crm.accounts.add_contact(org, li, role="decision_maker")
    first = crm.accounts.record_scores(
        org, {"information_flow": 70, "project_support": 55.5}, measured_at=clock.now
    )
    assert [s.dimension for s in first] == ["information_flow", "project_support"]
    clock.advance(days=30)
    crm.accounts.record_scores(org, {"information_flow": 60}, source="review")
    crm.accounts.record_scores(org, {"information_flow": 90}, contact_id=li)
    latest = crm.accounts.latest_scores(org)
    assert latest["information_flow"].score == 60 and latest["information_flow"].previous == 70
    assert (
        latest["information_flow"].change == -10 and latest["information_flow"].source == "review"
    )
    assert latest["project_support"].previous is None and latest["project_support"].change is None
    assert list(latest) == [d for d in DIMENSIONS if d in latest]
    assert crm.accounts.latest_scores(org, contact_id=li)["information_flow"].score == 90
    history = crm.accounts.scores(org)
    assert [(s.dimension, s.score, s.contact_id) for s in history] == [
        ("information_flow", 90, li),
        ("information_flow", 60, None),
        ("project_support", 55.5, None),
        ("information_flow", 70, None),
    ]
    assert len(crm.accounts.scores(org, dimension="project_support")) == 1
    assert len(crm.accounts.scores(org, contact_id=li)) == 1
    assert len(crm.accounts.scores(org, limit=2)) == 2
    entries = crm.audit.query(action="account.scores.recorded", customer_id=org).items
    assert len(entries) == 3 and entries[0].details["contact_id"] == li


def test_bad_scores_are_refused(crm: CRM, clock: FrozenClock) -> None:
    org, li, bob = _org(crm, "Acme"), _person(crm, "Li"), _person(crm, "Bob")
    crm.accounts.add_contact(org, li, end_date=clock.now.date())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"scores": {}}, "scores: expected a non-empty mapping"),
        ({"scores": {"trust": 50}}, "scores.trust: unknown dimension"),
        ({"scores": {"information_flow": 101}}, "must be between 0 and 100"),
        ({"scores": {"information_flow": -1}}, "must be between 0 and 100"),
        ({"scores": {"information_flow": float("nan")}}, "must be between 0 and 100"),
        ({"scores": {"information_flow": True}}, "expected a number from 0 to 100"),
        ({"scores": {"information_flow": "50"}}, "expected a number from 0 to 100"),
        ({"source": ""}, "source: must not be empty"),
        ({"source": "x" * 41}, "source: longer than 40"),
        ({"measured_at": clock.now + timedelta(seconds=1)}, "measured_at: .* is in the future"),
        ({"measured_at": datetime(2025, 1, 1)}, "measured_at: must be a timezone-aware"),
        ({"contact_id": bob}, f"contact_id: customer {bob} is not a current contact"),
        ({"contact_id": li}, f"contact_id: customer {li} is not a current contact"),
        ({"account_id": li}, "account_id: customer .* is a person"),
    ]
    for change, message in cases:
        args: dict[str, Any] = {"account_id": org, "scores": {"information_flow": 50}, **change}
        with pytest.raises(ValidationError, match=message):
            crm.accounts.record_scores(args.pop("account_id"), args.pop("scores"), **args)
    # a contact who had not yet left on the day measured
    before = clock.now - timedelta(days=1)
    crm.accounts.record_scores(org, {"information_flow": 50}, contact_id=li, measured_at=before)
    with pytest.raises(ValidationError, match="limit"):
        crm.accounts.scores(org, limit=0)
    with pytest.raises(ValidationError, match="dimension: unknown dimension 'trust'"):
        crm.accounts.scores(org, dimension="trust")


def test_weak_and_falling_scores_are_churn_signals(crm: CRM, clock: FrozenClock) -> None:
    steady, weak, falling, person = (
        _org(crm, "Steady"),
        _org(crm, "Weak"),
        _org(crm, "Falling"),
        _person(crm, "Li"),
    )
    crm.accounts.add_contact(falling, person)
    for org in (steady, weak, falling):
        crm.accounts.record_scores(org, {"information_flow": 80, "daily_guidance": 70})
    clock.advance(days=90)
    crm.accounts.record_scores(steady, {"information_flow": 75})  # -5: not falling
    crm.accounts.record_scores(weak, {"information_flow": 35, "daily_guidance": 39.5})
    crm.accounts.record_scores(falling, {"daily_guidance": 55})  # -15: falling
    crm.accounts.record_scores(falling, {"project_support": 20}, contact_id=person)
    signals = crm.churn_signals([steady, weak, falling, person])
    found = [(s.customer_id, s.source, s.reason, s.weight) for s in signals]
    assert found == [
        (
            weak,
            "accounts",
            "relationship falling: information_flow 80 -> 35 (-45), daily_guidance 70 -> 39.5 "
            "(-30.5)",
            0.75,
        ),
        (
            weak,
            "accounts",
            "relationship weak: information_flow 35, daily_guidance 39.5 (below 40)",
            0.35,
        ),
        (falling, "accounts", "relationship falling: daily_guidance 70 -> 55 (-15)", 0.45),
        (
            falling,
            "accounts",
            f"relationship with decision maker {person} weak: project_support 20 (below 40)",
            0.5,
        ),
    ]
    assert crm.accounts.churn_signals([steady]) == []
    with pytest.raises(AccessDeniedError):
        crm.as_user(Principal("alice")).churn_signals([weak])


def test_thresholds_are_configurable(crm_factory: CRMFactory, clock: FrozenClock) -> None:
    crm = crm_factory(accounts=AccountSettings(weak_score=80, falling_drop=5))
    org = _org(crm, "Acme")
    crm.accounts.record_scores(org, {"information_flow": 85})
    clock.advance(days=1)
    crm.accounts.record_scores(org, {"information_flow": 79})
    reasons = [s.reason for s in crm.accounts.churn_signals([org])]
    assert reasons == [
        "relationship weak: information_flow 79 (below 80)",
        "relationship falling: information_flow 85 -> 79 (-6)",
    ]


def test_trends_of_many_accounts_in_one_query(crm: CRM) -> None:
    orgs = [_org(crm, f"Org {n}") for n in range(3)]
    when = datetime(2025, 6, 1, tzinfo=UTC)
    for n, org in enumerate(orgs):
        for step in range(3):
            crm.accounts.record_scores(
                org, {"acceptance_recognition": 10 * n + step}, measured_at=when + timedelta(step)
            )
    from crmcore.services.accounts.scores import read_trends

    with crm.reading() as uow:
        trends = read_trends(uow, orgs)
    assert {org: trends[(org, None)]["acceptance_recognition"].score for org in orgs} == {
        orgs[0]: 2,
        orgs[1]: 12,
        orgs[2]: 22,
    }
    assert all(trends[(o, None)]["acceptance_recognition"].change == 1 for o in orgs)
