"""The other plugins' messages, end to end to the real SMTP server on loopback.

Survey invitations with their personal link, complaint acknowledgement and
resolution, activity reminders to staff and care greetings to customers: each
queued in the other plugin's unit of work, sent by ``send_pending``, recorded
as one outbound interaction, and refused (with the cause still committed) when
consent is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import crmcore_activities.plugin
import crmcore_complaints.plugin
import crmcore_messaging.plugin
import crmcore_surveys.plugin
import pytest
import sqlalchemy as sa
from crmcore_activities import activities as act
from crmcore_activities import planner, rules, workbench
from crmcore_complaints import ComplaintService
from crmcore_messaging import integrations
from crmcore_messaging.builtin_templates import BUILTINS
from crmcore_messaging.delivery import send_pending
from crmcore_messaging.rendering import check_renders
from crmcore_surveys import catalog, distribution
from crmcore_surveys.templates import template
from pytest_httpserver import HTTPServer

from crmcore import CRM
from crmcore.testing import FrozenClock

from .conftest import SMTPServer, add_customer, channels_section


@pytest.fixture
def open_all(
    crm_factory: Callable[..., CRM], smtp_server: SMTPServer, httpserver: HTTPServer, tmp_path: Path
) -> Callable[..., CRM]:
    """A CRM with messaging (SMTP email as default), surveys, complaints and activities."""

    def factory(**messaging: Any) -> CRM:
        section = channels_section(smtp_server, httpserver, tmp_path / "outbox", **messaging)
        return crm_factory(
            plugins=[
                crmcore_messaging.plugin,
                crmcore_surveys.plugin,
                crmcore_complaints.plugin,
                crmcore_activities.plugin,
            ],
            plugin_sections={
                "messaging": section,
                "activities": {"users": {"alice": {"timezone": "UTC"}}},
            },
        )

    return factory


def subject(mail: Any) -> str:
    """A received message's decoded Subject."""
    return str(make_header(decode_header(str(mail["Subject"]))))


def messages(crm: CRM) -> list[Any]:
    """Every message row, by id."""
    with crm.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT * FROM messaging_messages ORDER BY id")))


def test_survey_invitations_are_sent_with_their_personal_link(
    open_all: Callable[..., CRM], smtp_server: SMTPServer
) -> None:
    crm = open_all()
    ann = add_customer(crm, "Ann")
    ben = add_customer(crm, "Ben", attributes={"locale": "en"})
    add_customer(crm, "Cy", consent={"surveys": True})  # no e-mail consent: refused
    catalog.create_survey(crm, template("nps"))
    result = distribution.invite(crm, "nps", channel="email")
    tokens = {i.customer_id: i.token for i in result.invitations}
    assert len(tokens) == 3
    rows = messages(crm)
    assert [(r.purpose, r.state) for r in rows] == [("survey", "queued")] * 2 + [
        ("survey", "refused")
    ]
    assert rows[2].reason == "no_consent"
    report = send_pending(crm)
    assert report.sent == 2
    bodies = {str(m["To"]): m for m in smtp_server.sink.messages}
    ben_mail = bodies["ben@example.com"]
    assert subject(ben_mail).endswith("tell us what you think")  # the customer's locale
    text = ben_mail.get_payload(decode=True) if not ben_mail.is_multipart() else None
    body = (text or ben_mail.get_payload(0).get_payload(decode=True)).decode()
    assert f"http://localhost:8000/crm/s/{tokens[ben]}" in body
    ann_mail = bodies["ann@example.com"]
    assert "诚邀您参与调查" in subject(ann_mail)  # the default locale, zh-CN
    # A re-run of the hook for the same invitations queues nothing twice.
    with crm.unit_of_work("test") as uow:
        again = [
            {
                "invitation_id": i.id,
                "customer_id": i.customer_id,
                "token": i.token,
                "survey_key": "nps",
                "survey_title": "NPS",
                "channel": "email",
            }
            for i in result.invitations
        ]
        # Each is found by its dedupe key (the refused one too): handled, nothing new.
        assert integrations.survey_invitations(uow, again) == 3
    assert len(messages(crm)) == 3
    interactions = crm.interactions.list(customer_id=ann).items
    assert [(i.direction.value, i.source) for i in interactions] == [("outbound", "messaging")]


def test_complaints_tell_the_customer_of_acknowledgement_and_resolution(
    open_all: Callable[..., CRM], smtp_server: SMTPServer, clock: FrozenClock
) -> None:
    crm = open_all()
    ann = add_customer(crm, "Ann", attributes={"locale": "en"})
    silent = add_customer(crm, "Dee", consent={})
    service = ComplaintService(crm)
    first = service.open({"customer_id": ann, "category": "delivery/late", "reference": "ORD-7"})
    other = service.open({"customer_id": silent, "category": "delivery/late"})
    service.move(first.id, "acknowledged", actor="ben")
    service.move(other.id, "acknowledged", actor="ben")
    clock.advance(hours=2)
    service.resolve(first.id, resolution="Re-sent", root_cause="logistics", actor="ben")
    service.resolve(other.id, resolution="Re-sent", root_cause="logistics", actor="ben")
    # Without consent the message is refused and recorded; the complaint still moved on.
    assert service.get(other.id).state.value == "resolved"
    states = [(r.customer_id, r.template, r.state) for r in messages(crm)]
    assert states == [
        (ann, "complaints.acknowledged", "queued"),
        (silent, "complaints.acknowledged", "refused"),
        (ann, "complaints.resolved", "queued"),
        (silent, "complaints.resolved", "refused"),
    ]
    send_pending(crm)
    subjects = [subject(m) for m in smtp_server.sink.messages]
    assert subjects == [
        f"We are looking into your complaint no. {first.id}",
        f"Your complaint no. {first.id} is resolved",
    ]
    body = smtp_server.sink.messages[0].get_payload(decode=True)
    assert body is not None and b"about ORD-7" in bytes(body)


def test_reminders_go_to_staff_and_care_greetings_to_customers(
    open_all: Callable[..., CRM],
    smtp_server: SMTPServer,
    httpserver: HTTPServer,
    clock: FrozenClock,
) -> None:
    """A reminder goes to alice by e-mail; a birthday greeting by SMS (the kind's channel)."""
    crm = open_all()
    httpserver.expect_request("/sms", method="POST").respond_with_json({"id": "sms-1"})
    clock.set(datetime(2026, 3, 1, 9, tzinfo=UTC))
    ann = add_customer(
        crm, "Ann", birth_date="1990-03-02", phone="+8613800138000", attributes={"locale": "en"}
    )
    add_customer(crm, "Bo", birth_date="1991-03-02", consent={})  # no consent: stays a task
    task = act.add_activity(
        crm,
        {
            "customer_id": ann,
            "kind": "call",
            "subject": "Call about the renewal",
            "due": "2026-03-01T10:00",
            "assignee": "alice",
            "reminder_minutes": 30,
        },
    )
    clock.set(datetime(2026, 3, 1, 9, 45, tzinfo=UTC))
    assert [r["activity_id"] for r in workbench.send_reminders(crm)] == [task["id"]]
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
    assert planner.plan(crm)["created"] == 2
    rows = messages(crm)
    assert [(r.purpose, r.staff_user, r.customer_id, r.state) for r in rows] == [
        ("staff", "alice", None, "queued"),
        ("marketing", None, ann, "queued"),
        ("marketing", None, rows[2].customer_id, "refused"),
    ]
    by_customer = {a["customer_id"]: a for a in act.list_activities(crm) if a.get("rule_id")}
    assert by_customer[ann]["status"] == "done"
    assert by_customer[rows[2].customer_id]["status"] == "planned"
    assert rows[1].channel == "sms" and rows[1].recipient == "+8613800138000"
    send_pending(crm)
    assert [str(m["To"]) for m in smtp_server.sink.messages] == ["alice@example.com"]
    assert subject(smtp_server.sink.messages[0]) == "Reminder: Call about the renewal"
    (request, _response), *more = httpserver.log
    assert more == [] and request.get_json()["to"] == "+8613800138000"
    assert "Happy birthday" in request.get_json()["text"]
    # One interaction for the greeting, recorded when it went out (none by activities).
    (sent,) = [i for i in crm.interactions.list(customer_id=ann).items if i.source == "messaging"]
    assert sent.direction.value == "outbound"


def test_notify_turns_an_integration_off(open_all: Callable[..., CRM]) -> None:
    crm = open_all(notify={"surveys": False})
    add_customer(crm, "Ann")
    catalog.create_survey(crm, template("nps"))
    assert len(distribution.invite(crm, "nps").invitations) == 1
    assert messages(crm) == []


def test_every_builtin_template_renders(open_all: Callable[..., CRM]) -> None:
    """The built-in templates pass the check every saved template passes."""
    crm = open_all()
    sample = {
        "survey_key": "nps",
        "survey_title": "NPS",
        "survey_url": "https://x/s/t",
        "invitation_id": 1,
        "complaint_id": 3,
        "state": "resolved",
        "reference": "ORD-1",
        "category": "c",
        "severity": "low",
        "subject": "Happy birthday",
        "kind": "message",
        "activity_id": 5,
    }
    with crm.unit_of_work("test") as uow:
        for builtin in BUILTINS.values():
            shown = check_renders(
                uow,
                subject=builtin.subject,
                text=builtin.text,
                html=None,
                purpose=builtin.purpose,
                locale=builtin.locale,
                sample=sample,
            )
            assert shown.text.strip() and "{{" not in shown.text
    assert {locale for _, locale in BUILTINS} == {"en", "zh-CN"}
