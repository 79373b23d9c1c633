"""Issue 16: every surveys service function obeys the principal and is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from crmcore_surveys import catalog, distribution, relationship, responses, scoring, service
from crmcore_surveys.evaluation import service as evaluation
from crmcore_surveys.templates import template

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    in_unit_of_work,
    run_conformance,
)

MODULES = (catalog, distribution, relationship, responses, scoring, service, evaluation)
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    catalog.create_survey(crm, template("nps"))
    for cid in (visible, hidden):
        crm.customers.update(cid, {"consent": {"surveys": True}})
        responses.record_response(crm, survey="nps", customer_id=cid, answers={"recommend": 2})
    survey = crm.interactions.timeline(visible, kinds=["survey"]).items[0]
    return {"customer": crm.customers.get(visible), "survey_interaction": survey}


def _fresh_invitee(crm: CRM, s: Subjects) -> int:
    from crmcore.testing import fresh_customer

    cid = fresh_customer(crm, s)
    crm.customers.update(cid, {"consent": {"surveys": True}})
    return cid


NPS_V2 = {**template("nps"), "title": "NPS, second edition"}

CASES = [
    Case(
        "relationship.record_relationship_scores",
        in_unit_of_work(
            lambda u, s: relationship.record_relationship_scores(u, [s.data["survey_interaction"]])
        ),
    ),
    Case(
        "catalog.create_survey",
        lambda c, s: catalog.create_survey(c, template("csat")),
        EVERYONE_ONLY,
    ),
    Case("catalog.update_survey", lambda c, s: catalog.update_survey(c, NPS_V2), EVERYONE_ONLY),
    Case("catalog.get_survey", lambda c, s: catalog.get_survey(c, "nps")),
    Case(
        "catalog.list_surveys",
        lambda c, s: catalog.list_surveys(c),
        reveals=lambda r, cid, s: any(row["responses"] > 1 for row in r),
    ),
    Case(
        "distribution.invite",
        lambda c, s: distribution.invite(c, "nps", customer_ids=[s.fresh]),
        setup=_fresh_invitee,
    ),
    Case(
        "distribution.invite (population)",
        lambda c, s: distribution.invite(c, "nps", filters={"owner": "kit-owner"}),
        setup=_fresh_invitee,
    ),
    Case(
        "responses.record_response",
        lambda c, s: responses.record_response(
            c, survey="nps", customer_id=s.visible, answers={"recommend": 9}
        ),
    ),
    Case(
        "responses.record_responses",
        lambda c, s: responses.record_responses(
            c, [{"survey": "nps", "customer_id": s.visible, "answers": {"recommend": 8}}]
        ),
    ),
    Case("scoring.survey_report", lambda c, s: scoring.survey_report(c, "nps"), EVERYONE_ONLY),
    Case("scoring.survey_drivers", lambda c, s: scoring.survey_drivers(c, "nps"), EVERYONE_ONLY),
    Case("scoring.report_charts", lambda c, s: scoring.report_charts(c, PERIOD), EVERYONE_ONLY),
    Case("scoring.overall_metrics", lambda c, s: scoring.overall_metrics(c, PERIOD), EVERYONE_ONLY),
    Case("service.evaluate", lambda c, s: evaluation.evaluate(c, "nps", "pca"), EVERYONE_ONLY),
    Case("service.profile_section", lambda c, s: service.profile_section(c, s.data["customer"])),
    Case("service.metrics", lambda c, s: service.metrics(c, PERIOD), EVERYONE_ONLY),
    Case("service.churn_signals", lambda c, s: service.churn_signals(c, [s.visible])),
    Case(
        "service.export", in_unit_of_work(lambda u, s: service.export(u, s.visible)), EVERYONE_ONLY
    ),
    Case(
        "service.erase",
        in_unit_of_work(lambda u, s: service.erase(u, s.fresh)),
        ADMIN_ONLY,
        setup=_fresh_invitee,
    ),
    Case(
        "service.forget",
        in_unit_of_work(lambda u, s: service.forget(u, [s.fresh])),
        EVERYONE_ONLY,
        setup=_fresh_invitee,
    ),
]


def test_every_surveys_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []


def test_surveys_conformance_matrix(scrm: CRM) -> None:
    matrix = run_conformance(
        scrm,
        "surveys",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES),
        exempt={
            "catalog.latest_row": "connection helper",
            "catalog.survey_by_id": "connection helper",
        },
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("distribution.invite", "foreign")] == "denied"


def test_agent_cannot_invite_a_foreign_customer(scrm: CRM) -> None:
    mine, theirs = scrm.customers.create_many(
        [
            {"name": "Mine", "owner": "alice", "consent": {"surveys": True}},
            {"name": "Theirs", "owner": "bob", "consent": {"surveys": True}},
        ]
    )
    assert mine.id is not None and theirs.id is not None
    catalog.create_survey(scrm, template("nps"))
    alice = scrm.as_user(Principal("alice"))
    with pytest.raises(AccessDeniedError):
        distribution.invite(alice, "nps", customer_ids=[theirs.id])
    everyone = distribution.invite(alice, "nps")
    assert [i.customer_id for i in everyone.invitations] == [mine.id]
    assert everyone.matched == 1
    responses.record_response(alice, survey="nps", customer_id=mine.id, answers={"recommend": 9})
    actions = {e.action for e in scrm.audit.query(action="surveys.*").items}
    assert {"surveys.create", "surveys.invite", "surveys.response"} <= actions
    assert {e.actor for e in scrm.audit.query(action="surveys.*").items} >= {"alice"}
