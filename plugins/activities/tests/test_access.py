"""Every activities service function obeys the principal (the access conformance matrix)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

from crmcore_activities import (
    activities,
    care,
    demo,
    followups,
    measures,
    planner,
    privacy,
    resolvers,
    rules,
    settings,
    store,
    workbench,
)
from rich.console import Console

from crmcore import CRM, Period
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

MODULES: tuple[Any, ...] = (
    activities,
    care,
    workbench,
    rules,
    planner,
    followups,
    measures,
    privacy,
    store,
    demo,
)
EXEMPT = {
    "settings.remember_settings": "reads the configuration once at start-up (crm_startup)",
    "settings.settings_of": "returns the configuration the CRM opened with",
    "resolvers.activity_customer": "a @requires resolver: core's check calls it",
}
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _add(crm: CRM, customer_id: int) -> int:
    data = {"customer_id": customer_id, "kind": "call", "subject": "kit", "due": "2026-01-02T10:00"}
    return int(activities.add_activity(crm, data)["id"])


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    rules.add_rule(
        crm,
        {
            "name": "kit",
            "type": "cadence",
            "kind": "call",
            "subject": "kit",
            "params": {"rrule": "FREQ=DAILY"},
        },
    )
    return {
        "activity": _add(crm, visible),
        "hidden_activity": _add(crm, hidden),
        "customer": crm.customers.get(visible),
    }


def _fresh(crm: CRM, s: Subjects) -> int:
    return _add(crm, s.visible)


def _item(s: Subjects) -> dict[str, Any]:
    return {"key": uuid.uuid4().hex, "customer_id": s.visible, "kind": "call", "subject": "kit"}


A = "activity"
CASES: list[Case] = [
    Case("activities.add_activity", lambda c, s: _add(c, s.visible)),
    Case("activities.get_activity", lambda c, s: activities.get_activity(c, s.data[A])),
    Case("activities.list_activities", lambda c, s: activities.list_activities(c)),
    Case(
        "activities.complete_activity",
        lambda c, s: activities.complete_activity(c, s.fresh),
        setup=_fresh,
    ),
    Case(
        "activities.cancel_activity",
        lambda c, s: activities.cancel_activity(c, s.fresh),
        setup=_fresh,
    ),
    Case(
        "activities.reschedule_activity",
        lambda c, s: activities.reschedule_activity(c, s.fresh, "2026-01-03T10:00"),
        setup=_fresh,
    ),
    Case("workbench.workbench", lambda c, s: workbench.workbench(c, "overdue")),
    Case("workbench.reminders", lambda c, s: workbench.reminders(c)),
    Case("workbench.send_reminders", lambda c, s: workbench.send_reminders(c), EVERYONE_ONLY),
    Case(
        "rules.add_rule",
        lambda c, s: rules.add_rule(
            c,
            {
                "name": f"r{uuid.uuid4().hex[:8]}",
                "type": "birthday",
                "kind": "care",
                "subject": "x",
            },
        ),
        EVERYONE_ONLY,
    ),
    Case("rules.list_rules", lambda c, s: rules.list_rules(c)),
    Case(
        "rules.set_rule_active", lambda c, s: rules.set_rule_active(c, "kit", True), EVERYONE_ONLY
    ),
    Case("planner.plan", lambda c, s: planner.plan(c), EVERYONE_ONLY),
    Case(
        "care.deliver",
        in_unit_of_work(lambda u, s: care.deliver(u, 1, datetime(2026, 1, 1).date())),
        EVERYONE_ONLY,
    ),
    Case(
        "followups.create_followups",
        in_unit_of_work(lambda u, s: followups.create_followups(u, "detractor", [_item(s)])),
    ),
    Case(
        "followups.churn_alerts",
        in_unit_of_work(lambda u, s: followups.churn_alerts(u, [{"customer_id": s.visible}])),
    ),
    Case(
        "followups.sla_breaches",
        in_unit_of_work(
            lambda u, s: followups.sla_breaches(
                u,
                [
                    {
                        "complaint_id": uuid.uuid4().int % 10**9,
                        "customer_id": s.visible,
                        "target": "resolution",
                    }
                ],
            )
        ),
    ),
    Case(
        "followups.detractors",
        in_unit_of_work(
            lambda u, s: followups.detractors(
                u,
                [
                    {
                        "response_id": uuid.uuid4().int % 10**9,
                        "customer_id": s.visible,
                        "metric": "nps",
                        "score": 1.0,
                    }
                ],
            )
        ),
    ),
    Case(
        "followups.renewals",
        in_unit_of_work(
            lambda u, s: followups.renewals(
                u,
                [
                    {
                        "contract_id": uuid.uuid4().int % 10**9,
                        "customer_id": s.visible,
                        "renewal_date": "2026-02-01",
                    }
                ],
            )
        ),
    ),
    Case(
        "followups.overdue_payments",
        in_unit_of_work(
            lambda u, s: followups.overdue_payments(
                u,
                [
                    {
                        "instalment_id": uuid.uuid4().int % 10**9,
                        "contract_id": 1,
                        "customer_id": s.visible,
                        "outstanding": "5",
                        "currency": "EUR",
                        "days_overdue": 3,
                    }
                ],
            )
        ),
    ),
    Case("measures.report", lambda c, s: measures.report(c, PERIOD), EVERYONE_ONLY),
    Case("measures.coverage", lambda c, s: measures.coverage(c), EVERYONE_ONLY),
    Case("measures.care_effect", lambda c, s: measures.care_effect(c, PERIOD), EVERYONE_ONLY),
    Case("measures.metrics", lambda c, s: measures.metrics(c, PERIOD), EVERYONE_ONLY),
    Case("measures.profile_section", lambda c, s: measures.profile_section(c, s.data["customer"])),
    Case("measures.churn_signals", lambda c, s: measures.churn_signals(c, [s.visible])),
    Case("store.load", in_unit_of_work(lambda u, s: store.load(u, s.data[A]))),
    Case("store.audit", in_unit_of_work(lambda u, s: store.audit(u, "kit", s.data[A], s.visible))),
    Case(
        "privacy.export", in_unit_of_work(lambda u, s: privacy.export(u, s.visible)), EVERYONE_ONLY
    ),
    Case(
        "privacy.erase",
        in_unit_of_work(lambda u, s: privacy.erase(u, s.fresh)),
        ADMIN_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "privacy.forget",
        in_unit_of_work(lambda u, s: privacy.forget(u, [s.fresh])),
        EVERYONE_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "privacy.merge_rows",
        in_unit_of_work(lambda u, s: privacy.merge_rows(u, s.visible, s.fresh)),
        setup=fresh_customer,
    ),
    Case("demo.load", lambda c, s: demo.load(c, 1, complete=2), EVERYONE_ONLY),
    Case("demo.run", lambda c, s: demo.run(c, 2, Console(file=io.StringIO())), EVERYONE_ONLY),
]


def test_every_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []
    assert set(undeclared(settings, resolvers)) == set(EXEMPT)


def test_activities_conformance_matrix(acrm: CRM) -> None:
    matrix = run_conformance(
        acrm,
        "activities",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES, settings, resolvers),
        exempt=EXEMPT,
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("activities.complete_activity", "foreign")] == "denied"
    assert outcome[("activities.complete_activity", "granted")] == "allowed"
    assert outcome[("activities.list_activities", "foreign")] == "nothing foreign"
