"""Issue 11 item 3: B2B relationship assessments become core's relationship scores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_surveys import catalog, responses
from crmcore_surveys.definitions import validate_definition
from crmcore_surveys.relationship import relationship_scores
from crmcore_surveys.templates import template

from crmcore import CRM
from crmcore.access import Principal
from crmcore.testing import FrozenClock

#: One answer per question of the b2b template (1-7 scale).
ANSWERS = {
    "overall": 5,
    "acceptance": 7,
    "participation": 4,
    "information": 1,
    "guidance": 5,
    "project_support": 6,
    "preference": 3,
}
EXPECTED = {
    "acceptance_recognition": 100.0,
    "activity_participation": 50.0,
    "information_flow": 0.0,
    "daily_guidance": pytest.approx(66.666667),
    "project_support": pytest.approx(83.333333),
    "competitive_preference": pytest.approx(33.333333),
}


def _org(crm: CRM, name: str, **fields: object) -> int:
    created = crm.customers.create(
        {"name": name, "kind": "organization", "consent": {"surveys": True}, **fields}
    )
    assert created.id is not None
    return created.id


def _person(crm: CRM, name: str, **fields: object) -> int:
    created = crm.customers.create({"name": name, "consent": {"surveys": True}, **fields})
    assert created.id is not None
    return created.id


def test_the_template_maps_onto_the_six_dimensions() -> None:
    assert relationship_scores(validate_definition(template("b2b")), ANSWERS) == EXPECTED
    nps = validate_definition(template("nps"))
    assert relationship_scores(nps, {"recommend": 9}) == {}


def test_responses_score_accounts_and_decision_makers(scrm: CRM, clock: FrozenClock) -> None:
    huawei, li = _org(scrm, "Huawei"), _person(scrm, "Li Wei")
    gone = _person(scrm, "Former")
    scrm.accounts.add_contact(huawei, li, role="decision_maker")
    scrm.accounts.add_contact(huawei, gone, end_date=clock.now.date() - timedelta(days=10))
    catalog.create_survey(scrm, template("b2b"))
    catalog.create_survey(scrm, template("nps"))
    responses.record_response(scrm, survey="b2b", customer_id=huawei, answers=ANSWERS)
    responses.record_response(scrm, survey="b2b", customer_id=li, answers=ANSWERS)
    responses.record_response(scrm, survey="nps", customer_id=huawei, answers={"recommend": 3})
    responses.record_response(scrm, survey="b2b", customer_id=gone, answers=ANSWERS)  # left
    account = scrm.accounts.latest_scores(huawei)
    assert {d: t.score for d, t in account.items()} == EXPECTED
    assert {t.source for t in account.values()} == {"survey"}
    assert {d: t.score for d, t in scrm.accounts.latest_scores(huawei, contact_id=li).items()} == (
        EXPECTED
    )
    assert scrm.accounts.latest_scores(huawei, contact_id=gone) == {}
    assert len(scrm.accounts.scores(huawei)) == 12
    # a later, worse assessment: the trend falls and the account is a churn signal
    clock.advance(days=90)
    worse = {**ANSWERS, "acceptance": 4, "information": 1}
    responses.record_response(scrm, survey="b2b", customer_id=huawei, answers=worse)
    trend = scrm.accounts.latest_scores(huawei)["acceptance_recognition"]
    assert (trend.score, trend.previous, trend.change) == (50.0, 100.0, -50.0)
    reasons = [s.reason for s in scrm.churn_signals([huawei]) if s.source == "accounts"]
    assert any("falling: acceptance_recognition 100 -> 50" in r for r in reasons)
    assert any(r.startswith("relationship weak: information_flow 0") for r in reasons)


def test_an_agent_scores_only_accounts_they_may_write(scrm: CRM) -> None:
    theirs = _org(scrm, "Globex", owner="bob")
    li = _person(scrm, "Li Wei", owner="alice")
    scrm.accounts.add_contact(theirs, li)
    catalog.create_survey(scrm, template("b2b"))
    alice = scrm.as_user(Principal("alice"))
    recorded = responses.record_response(alice, survey="b2b", customer_id=li, answers=ANSWERS)
    assert recorded.customer_id == li  # the response is stored ...
    assert scrm.accounts.scores(theirs) == []  # ... but gives bob's account no scores
    scrm.accounts.add_member(theirs, "alice", "account_manager")
    responses.record_response(alice, survey="b2b", customer_id=li, answers=ANSWERS)
    assert len(scrm.accounts.scores(theirs)) == 6
