"""Queue and delivery: real SMTP and HTTP servers, the folder and in-app channels, outcomes."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crmcore_messaging import delivery, listing, queue, tokens
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from crmcore import CRM
from crmcore.testing import FrozenClock

from .conftest import SMTPServer, add_customer, queue_text, stored_messages


def test_email_reaches_the_smtp_server_once_and_is_recorded_as_an_interaction(
    dcrm: CRM, smtp_server: SMTPServer
) -> None:
    ann = add_customer(dcrm, "Ann")
    queued = queue_text(
        dcrm, ann, subject="Spring offer", text="Hello Ann", html="<p>Hello Ann</p>"
    )
    assert queued.state == "queued" and queued.message_id is not None
    assert smtp_server.sink.ids() == []  # nothing leaves before send_pending
    report = delivery.send_pending(dcrm)
    assert (report.claimed, report.sent, report.failed) == (1, 1, 0)
    (row,) = stored_messages(dcrm)
    assert row.state == "sent" and row.attempts == 1 and row.sent_at is not None
    assert smtp_server.sink.ids() == [f"<{row.token}@example.com>"]
    (mail,) = smtp_server.sink.messages
    assert mail["To"] == "ann@example.com" and mail["Subject"] == "Spring offer"
    assert mail.is_multipart()  # text with an HTML alternative
    interactions = dcrm.interactions.list(customer_id=ann).items
    assert [(i.kind, i.channel, i.direction, i.external_id, i.source) for i in interactions] == [
        ("email", "email", "outbound", row.token, "messaging")
    ]
    assert row.interaction_id == interactions[0].id
    (event,) = dcrm.events.iter(type="messaging.message_sent")
    assert (event.customer_id, dict(event.data)) == (
        ann,
        {
            "message_id": row.id,
            "channel": "email",
            "purpose": "marketing",
            "state": "sent",
            "reason": None,
            "ref_type": None,
            "ref_id": None,
        },
    )
    again = delivery.send_pending(dcrm)
    assert (again.claimed, again.sent) == (0, 0)
    assert len(smtp_server.sink.ids()) == 1


def test_nothing_is_queued_when_the_unit_of_work_rolls_back(
    dcrm: CRM, smtp_server: SMTPServer
) -> None:
    ann = add_customer(dcrm, "Ann")
    with pytest.raises(RuntimeError), dcrm.unit_of_work() as uow:
        queue.enqueue(uow, customer_id=ann, text="Hello")
        raise RuntimeError("the caller fails")
    assert stored_messages(dcrm) == []
    assert delivery.send_pending(dcrm).claimed == 0
    assert smtp_server.sink.ids() == []


def test_sms_goes_to_the_http_gateway_with_the_configured_body(
    dcrm: CRM, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGING_TEST_TOKEN", "s3cret")
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response(json.dumps({"id": "gw-1"}), status=200, content_type="application/json")

    httpserver.expect_request("/sms", method="POST").respond_with_handler(answer)
    bob = add_customer(dcrm, "Bob", phone="+8613800138000")
    queued = queue_text(dcrm, bob, channel="sms", text="Your code is {1234}")
    report = delivery.send_pending(dcrm)
    assert report.sent == 1
    (request,) = seen
    (row,) = stored_messages(dcrm)
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert json.loads(request.get_data()) == {
        "to": "+8613800138000",
        "text": "Your code is {1234}",
        "ref": str(queued.message_id),
        "stop": {"url": tokens.unsubscribe_url(dcrm, row.token), "n": 1},
    }
    assert (row.state, row.provider_id, row.recipient) == ("sent", "gw-1", "+8613800138000")
    (interaction,) = dcrm.interactions.list(customer_id=bob).items
    assert (interaction.kind, interaction.channel) == ("chat", "sms")


def test_gateway_5xx_is_retried_with_backoff_then_failed(
    dcrm: CRM, httpserver: HTTPServer, clock: FrozenClock
) -> None:
    httpserver.expect_request("/sms").respond_with_data("busy", status=503)
    bob = add_customer(dcrm, "Bob", phone="+8613800138000")
    queue_text(dcrm, bob, channel="sms")
    start = clock()
    first = delivery.send_pending(dcrm)
    assert (first.sent, first.retried) == (0, 1)
    (row,) = stored_messages(dcrm)
    assert (row.state, row.attempts, row.reason) == ("queued", 1, "http_503")
    assert row.not_before == start + timedelta(seconds=60)  # base_seconds * 2^0
    assert delivery.send_pending(dcrm).claimed == 0  # not due yet
    clock.advance(seconds=60)
    assert delivery.send_pending(dcrm).retried == 1
    (row,) = stored_messages(dcrm)
    assert row.attempts == 2 and row.not_before == clock() + timedelta(seconds=120)
    clock.advance(seconds=120)
    third = delivery.send_pending(dcrm)
    assert third.failed == 1  # max_attempts = 3
    (row,) = stored_messages(dcrm)
    assert (row.state, row.attempts, row.reason) == ("failed", 3, "http_503")
    assert "503" in row.detail
    assert len(list(dcrm.events.iter(type="messaging.message_failed"))) == 1  # not the retries
    assert len(httpserver.log) == 3


def test_gateway_4xx_fails_at_once(dcrm: CRM, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/sms").respond_with_data("bad number", status=400)
    bob = add_customer(dcrm, "Bob", phone="+8613800138000")
    queue_text(dcrm, bob, channel="sms")
    assert delivery.send_pending(dcrm).failed == 1
    (row,) = stored_messages(dcrm)
    assert (row.state, row.reason, row.attempts) == ("failed", "http_400", 1)
    assert dcrm.interactions.list(customer_id=bob).items == []
    (event,) = dcrm.events.iter(type="messaging.message_failed")
    assert (event.customer_id, event.data["state"], event.data["reason"]) == (
        bob,
        "failed",
        "http_400",
    )
    assert list(dcrm.events.iter(type="messaging.message_sent")) == []


def test_refused_recipient_bounces_and_4xx_is_retried(dcrm: CRM, smtp_server: SMTPServer) -> None:
    gone = add_customer(dcrm, "Gone")
    busy = add_customer(dcrm, "Busy")
    fine = add_customer(dcrm, "Fine")
    smtp_server.sink.refuse.add("gone@example.com")
    smtp_server.sink.busy.add("busy@example.com")
    for customer in (gone, busy, fine):
        queue_text(dcrm, customer)
    report = delivery.send_pending(dcrm)
    assert (report.sent, report.bounced, report.retried) == (1, 1, 1)
    states = {r.customer_id: (r.state, r.reason) for r in stored_messages(dcrm)}
    assert states == {
        gone: ("bounced", "bounced"),
        busy: ("queued", "recipient"),
        fine: ("sent", None),
    }
    assert smtp_server.sink.to() == ["fine@example.com"]


def test_smtp_server_down_is_a_temporary_failure(dcrm: CRM, smtp_server: SMTPServer) -> None:
    ann = add_customer(dcrm, "Ann")
    queue_text(dcrm, ann)
    smtp_server.stop()
    report = delivery.send_pending(dcrm)
    smtp_server.start()
    assert report.retried == 1
    (row,) = stored_messages(dcrm)
    assert (row.state, row.reason) == ("queued", "connect")


def test_folder_and_in_app_channels(dcrm: CRM, tmp_path: Path) -> None:
    ann = add_customer(dcrm, "Ann")
    by_file = queue_text(dcrm, ann, channel="files", subject="Hi", text="In a file")
    in_app = queue_text(dcrm, ann, channel="inbox", text="In the app")
    assert delivery.send_pending(dcrm).sent == 2
    rows = {r.id: r for r in stored_messages(dcrm)}
    written = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert written == [f"{by_file.message_id}-{rows[by_file.message_id].token}.eml"]
    content = (tmp_path / "outbox" / written[0]).read_text()
    assert "In a file" in content and "To: ann@example.com" in content
    assert rows[in_app.message_id].recipient == str(ann)
    listed = listing.inbox(dcrm, ann)
    assert [(m["id"], m["text"], m["read"]) for m in listed] == [
        (in_app.message_id, "In the app", False)
    ]
    listing.mark_read(dcrm, ann, in_app.message_id)
    assert [m["read"] for m in listing.inbox(dcrm, ann)] == [True]


def test_staff_message_goes_to_the_users_address(dcrm: CRM, smtp_server: SMTPServer) -> None:
    with dcrm.unit_of_work() as uow:
        queued = queue.enqueue_staff(uow, user="alice", subject="Call Ann", text="Due at 10:00")
        nowhere = queue.enqueue_staff(uow, user="bob", subject="x", text="y")
    assert queued.state == "queued"
    assert (nowhere.state, nowhere.reason) == ("refused", "no_address")
    assert delivery.send_pending(dcrm).sent == 1
    assert smtp_server.sink.to() == ["alice@example.com"]


def test_dedupe_key_queues_once(dcrm: CRM) -> None:
    ann = add_customer(dcrm, "Ann")
    first = queue_text(dcrm, ann, dedupe_key="care:1")
    second = queue_text(dcrm, ann, dedupe_key="care:1", text="another text")
    assert first.state == "queued"
    assert (second.state, second.message_id) == ("duplicate", first.message_id)
    assert len(stored_messages(dcrm)) == 1


def test_an_email_whose_answer_never_came_is_not_sent_again(
    open_dcrm: Any, smtp_server: SMTPServer, clock: FrozenClock
) -> None:
    crm = open_dcrm()
    channels = dict(crm.plugin_config("messaging")["channels"])
    channels["email"] = {**channels["email"], "timeout": 0.5}
    crm = open_dcrm(channels=channels)
    slow = add_customer(crm, "Slow")
    smtp_server.sink.slow.add("slow@example.com")
    smtp_server.sink.delay = 1.5
    queue_text(crm, slow)
    report = delivery.send_pending(crm)
    assert (report.sent, report.failed, report.retried) == (0, 1, 0)
    (row,) = stored_messages(crm)
    assert (row.state, row.reason) == ("failed", "unknown_outcome")
    assert "may have arrived" in row.detail
    time.sleep(1.5)  # whatever the server made of it by now
    clock.advance(hours=1)
    assert delivery.send_pending(crm).claimed == 0
    assert len(smtp_server.sink.to()) <= 1  # at most once: the attempt is never repeated


def test_a_gateway_that_does_not_answer_is_not_called_again(
    open_dcrm: Any, httpserver: HTTPServer, clock: FrozenClock
) -> None:
    def late(request: Request) -> Response:
        time.sleep(1.2)
        return Response("{}", status=200)

    httpserver.expect_request("/sms").respond_with_handler(late)
    crm = open_dcrm()
    channels = dict(crm.plugin_config("messaging")["channels"])
    channels["sms"] = {**channels["sms"], "timeout": 0.4}
    crm = open_dcrm(channels=channels)
    bob = add_customer(crm, "Bob", phone="+8613800138000")
    queue_text(crm, bob, channel="sms")
    report = delivery.send_pending(crm)
    assert (report.failed, report.retried) == (1, 0)
    (row,) = stored_messages(crm)
    assert (row.state, row.reason) == ("failed", "unknown_outcome")
    clock.advance(hours=1)
    assert delivery.send_pending(crm).claimed == 0
    time.sleep(1.0)
    assert len(httpserver.log) == 1


def test_gateway_down_is_a_temporary_failure(dcrm: CRM, httpserver: HTTPServer) -> None:
    bob = add_customer(dcrm, "Bob", phone="+8613800138000")
    queue_text(dcrm, bob, channel="sms")
    httpserver.stop()
    try:
        report = delivery.send_pending(dcrm)
    finally:
        httpserver.start()
    assert report.retried == 1
    (row,) = stored_messages(dcrm)
    assert (row.state, row.reason) == ("queued", "connect")


def test_staff_go_by_their_own_addresses_unless_a_mapping_names_a_staff_channel(
    open_dcrm: Any,
) -> None:
    staff = {"alice": {"email": "alice@example.com"}, "carl": {"inbox": "carl"}}
    crm = open_dcrm(staff=staff)  # default_channel = "email": the customers' default only
    with crm.unit_of_work() as uow:
        carl = queue.enqueue_staff(uow, user="carl", subject="s", text="t")
    crm = open_dcrm(staff=staff, default_channel={"marketing": "email", "staff": "email"})
    with crm.unit_of_work() as uow:
        mapped = queue.enqueue_staff(uow, user="carl", subject="s", text="t")
    rows = {r.id: r for r in stored_messages(crm)}
    assert (rows[carl.message_id].channel, rows[carl.message_id].recipient) == ("inbox", "carl")
    assert (mapped.state, mapped.reason) == ("refused", "no_address")  # carl has no email
