"""The integrations (other plugins' messages) obey the principal: the access conformance matrix."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crmcore_messaging import builtin_templates, integrations

from crmcore import CRM
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import EVERYONE_ONLY, Case, in_unit_of_work, run_conformance

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _invitation(customer_id: int) -> list[dict[str, Any]]:
    return [
        {
            "invitation_id": 1,
            "customer_id": customer_id,
            "token": "kit-token",
            "survey_key": "kit",
            "survey_title": "Kit",
            "channel": "email",
        }
    ]


def _progress(customer_id: int) -> list[dict[str, Any]]:
    return [{"complaint_id": 1, "customer_id": customer_id, "state": "resolved", "at": AT}]


def _reminder(customer_id: int) -> list[dict[str, Any]]:
    return [
        {
            "activity_id": 1,
            "customer_id": customer_id,
            "assignee": "kit-user",
            "subject": "Call",
            "due_at": AT,
            "due_local": "2026-01-01T08:00:00+08:00",
            "timezone": "Asia/Shanghai",
            "priority": 2,
        }
    ]


def _task(customer_id: int) -> list[dict[str, Any]]:
    return [
        {
            "activity_id": 1,
            "customer_id": customer_id,
            "kind": "message",
            "channel": "email",
            "subject": "Happy birthday",
        }
    ]


CASES = [
    Case(
        "integrations.survey_invitations",
        in_unit_of_work(lambda u, s: integrations.survey_invitations(u, _invitation(s.visible))),
    ),
    Case(
        "integrations.complaint_progress",
        in_unit_of_work(lambda u, s: integrations.complaint_progress(u, _progress(s.visible))),
    ),
    Case(
        "integrations.reminders",
        in_unit_of_work(lambda u, s: integrations.reminders(u, _reminder(s.visible))),
        EVERYONE_ONLY,
    ),
    Case(
        "integrations.care_messages",
        in_unit_of_work(lambda u, s: integrations.care_messages(u, _task(s.visible))),
    ),
]


def test_every_integration_is_declared() -> None:
    assert undeclared(integrations, builtin_templates) == []


def test_integrations_conformance_matrix(mcrm: CRM) -> None:
    matrix = run_conformance(
        mcrm,
        "messaging-integrations",
        CASES,
        functions=service_functions(integrations, builtin_templates),
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("integrations.complaint_progress", "foreign")] == "denied"
    assert outcome[("integrations.complaint_progress", "owner")] == "allowed"
