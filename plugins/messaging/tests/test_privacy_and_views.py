"""Export, erasure, deletion, merge; the 360° section; KPIs; leases; bad input; configuration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crmcore_messaging import delivery, listing, queue
from crmcore_messaging.tables import messages_table, unsubscribes_table
from sqlalchemy import insert, update

from crmcore import CRM, ConfigError, NotFoundError, Period, ValidationError
from crmcore.errors import ConflictError
from crmcore.testing import FrozenClock

from .conftest import SMTPServer, add_customer, queue_text, stored_messages


def test_export_profile_and_metrics(dcrm: CRM, clock: FrozenClock) -> None:
    ann = add_customer(dcrm, "Ann")
    queue_text(dcrm, ann, subject="One")
    queue_text(dcrm, ann, channel="inbox", text="Two", ref_type="campaigns.campaign", ref_id="3")
    queue_text(dcrm, ann, channel="sms")  # no phone: refused
    delivery.send_pending(dcrm)
    with dcrm.unit_of_work() as uow:
        uow.connection.execute(
            insert(unsubscribes_table(dcrm.metadata)).values(
                customer_id=ann,
                channel="email",
                consent_field="marketing_email",
                at=uow.now,
            )
        )
    exported = dcrm.customers.export(ann)["plugins"]["messaging"]
    assert [m["state"] for m in exported["messages"]] == ["sent", "sent", "refused"]
    assert exported["unsubscribes"][0]["channel"] == "email"
    section = dcrm.customers.profile(ann)["plugins"]["messaging"]
    assert [m["channel"] for m in section["received"]] == ["inbox", "email"]
    assert section["received"][0]["ref"] == "campaigns.campaign:3"
    assert section["by_state"] == {"refused": 1, "sent": 2}
    period = Period(clock() - timedelta(days=1), clock() + timedelta(days=1))
    figures = dcrm.metrics(period)["messaging"]
    assert figures["messages_sent"] == 2
    assert figures["messages_sent_email"] == 1 and figures["messages_sent_inbox"] == 1
    assert figures["messages_sent_sms"] == 0
    assert figures["messages_refused"] == 1 and figures["opt_outs"] == 1
    assert figures["opt_out_rate"] == 0.5
    earlier = Period(clock() - timedelta(days=9), clock() - timedelta(days=8))
    assert dcrm.metrics(earlier)["messaging"]["messages_sent"] == 0
    assert dcrm.metrics(earlier)["messaging"]["opt_out_rate"] is None
    other = add_customer(dcrm, "Other")
    assert "messaging" not in dcrm.customers.profile(other)["plugins"]


def test_erase_empties_messages_and_refuses_pending(dcrm: CRM) -> None:
    ann = add_customer(dcrm, "Ann")
    queue_text(dcrm, ann, subject="Private", text="secret text")
    delivery.send_pending(dcrm)
    queue_text(dcrm, ann, text="not yet")
    dcrm.customers.erase(ann)
    rows = stored_messages(dcrm)
    assert [(r.state, r.reason) for r in rows] == [("sent", None), ("refused", "erased")]
    assert all(r.recipient is None and r.body_text is None and r.subject is None for r in rows)


def test_delete_and_merge(dcrm: CRM) -> None:
    keep = add_customer(dcrm, "Keep")
    dup = add_customer(dcrm, "Dup")
    gone = add_customer(dcrm, "Gone")
    for customer in (keep, dup, gone):
        queue_text(dcrm, customer)
    dcrm.customers.merge(keep, dup)
    assert sorted(r.customer_id for r in stored_messages(dcrm)) == [keep, keep, gone]
    late = queue_text(dcrm, dup)  # a plugin still holding the merged id
    assert [r.customer_id for r in stored_messages(dcrm) if r.id == late.message_id] == [keep]
    queue_text(dcrm, dup, channel="inbox")
    dcrm.customers.delete(gone)
    assert [r.customer_id for r in stored_messages(dcrm)] == [keep, keep, keep, keep]


def test_a_crashed_sender_is_never_resent(
    dcrm: CRM, clock: FrozenClock, smtp_server: SMTPServer
) -> None:
    ann = add_customer(dcrm, "Ann")
    queued = queue_text(dcrm, ann)
    table = messages_table(dcrm.metadata)
    with dcrm.unit_of_work() as uow:  # what a worker that died after claiming leaves
        uow.connection.execute(
            update(table)
            .where(table.c.id == queued.message_id)
            .values(state="sending", claimed_by="dead", claimed_at=uow.now)
        )
    clock.advance(minutes=9)
    assert delivery.send_pending(dcrm).interrupted == 0  # still within the lease
    assert stored_messages(dcrm)[0].state == "sending"
    clock.advance(minutes=2)
    report = delivery.send_pending(dcrm)
    assert (report.interrupted, report.sent) == (1, 0)
    (row,) = stored_messages(dcrm)
    assert (row.state, row.reason) == ("failed", "interrupted")
    assert delivery.send_pending(dcrm).claimed == 0
    assert smtp_server.sink.ids() == []
    with pytest.raises(ConflictError, match="only a failed or bounced"):  # an operator's retry
        listing.retry_message(dcrm, queue_text(dcrm, ann).message_id or 0)
    again = listing.retry_message(dcrm, row.id)
    assert (again["state"], again["reason"], again["attempts"]) == ("queued", None, 0)
    assert delivery.send_pending(dcrm).sent == 2
    assert len(smtp_server.sink.ids()) == 2
    assert [e.details["was"] for e in dcrm.audit.query(action="messaging.message_retry").items] == [
        "failed"
    ]


def test_cancel_status_listing_and_show(dcrm: CRM) -> None:
    ann = add_customer(dcrm, "Ann")
    first = queue_text(dcrm, ann)
    second = queue_text(dcrm, ann, channel="inbox")
    status = listing.queue_status(dcrm)
    assert status["by_state"]["queued"] == 2 and status["due_now"] == 2
    assert status["by_channel"] == {"email": {"queued": 1}, "inbox": {"queued": 1}}
    assert first.message_id is not None and second.message_id is not None
    cancelled = listing.cancel_message(dcrm, first.message_id)
    assert (cancelled["state"], cancelled["reason"]) == ("refused", "cancelled")
    with pytest.raises(ConflictError, match="only a queued or deferred"):
        listing.cancel_message(dcrm, first.message_id)
    with pytest.raises(NotFoundError):
        listing.cancel_message(dcrm, 999_999)
    delivery.send_pending(dcrm)
    assert listing.get_message(dcrm, second.message_id)["state"] == "sent"
    assert [m["id"] for m in listing.list_messages(dcrm, state="sent")] == [second.message_id]
    assert [m["id"] for m in listing.customer_messages(dcrm, ann)] == [
        second.message_id,
        first.message_id,
    ]
    with pytest.raises(NotFoundError):
        listing.get_message(dcrm, 999_999)
    with pytest.raises(NotFoundError):
        listing.mark_read(dcrm, ann, first.message_id)  # not sent


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": None}, "give either template or text"),
        ({"template": "welcome"}, "give either template or text"),
        ({"text": "  "}, "text: must not be empty"),
        ({"purpose": "staff"}, "purpose: 'staff' is not one of"),
        ({"channel": "fax"}, "channel: 'fax' is not a configured channel"),
        ({"text": 5}, "text: expected text"),
        ({"subject": "x" * 1000}, "subject: is longer than 998"),
        ({"not_before": datetime(2026, 1, 1)}, "not_before: expected a timezone-aware"),
        ({"dedupe_key": "k" * 201}, "dedupe_key: is longer than 200"),
        ({"ref_type": "r" * 61}, "ref_type: is longer than 60"),
        ({"locale": "x" * 21}, "locale: is longer than 20"),
        ({"template": "t" * 101, "text": None}, "template: is longer than 100"),
        ({"variables": ["a"]}, "variables: expected a mapping"),
    ],
)
def test_bad_enqueue_arguments(dcrm: CRM, fields: dict[str, Any], message: str) -> None:
    ann = add_customer(dcrm, "Ann")
    with pytest.raises(ValidationError, match=message):
        queue_text(dcrm, ann, **fields)
    assert stored_messages(dcrm) == []


def test_bad_arguments_elsewhere(dcrm: CRM) -> None:
    with pytest.raises(NotFoundError):
        queue_text(dcrm, 999_999)
    with pytest.raises(ValidationError, match="limit"):
        delivery.send_pending(dcrm, limit=0)
    with pytest.raises(ValidationError, match="state"):
        listing.list_messages(dcrm, state="lost")
    with pytest.raises(ValidationError, match="limit"):
        listing.list_messages(dcrm, limit=0)
    with pytest.raises(ValidationError, match="user: is required"), dcrm.unit_of_work() as uow:
        queue.enqueue_staff(uow, user=" ", subject="s", text="t")
    with (
        pytest.raises(ValidationError, match="text: must not be empty"),
        dcrm.unit_of_work() as uow,
    ):
        queue.enqueue_staff(uow, user="alice", subject="s", text="")
    assert stored_messages(dcrm) == []


def test_not_before_delays_and_limit_bounds_a_run(dcrm: CRM, clock: FrozenClock) -> None:
    ann = add_customer(dcrm, "Ann")
    later = queue_text(dcrm, ann, not_before=clock() + timedelta(hours=1))
    for _ in range(3):
        queue_text(dcrm, ann, channel="inbox")
    assert later.state == "queued"
    assert delivery.send_pending(dcrm, limit=2).sent == 2
    assert delivery.send_pending(dcrm).sent == 1
    clock.advance(hours=1)
    assert delivery.send_pending(dcrm).sent == 1


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ({"x": {"type": "pigeon"}}, "'pigeon' is not a channel type"),
        ({"x": {"type": "smtp"}}, "option 'from' is required"),
        ({"x": {"type": "smtp", "from": "nobody"}}, "is not an email address"),
        ({"x": {"type": "smtp", "from": "a@b.c", "ssl": True, "starttls": True}}, "exclude"),
        ({"x": {"type": "smtp", "from": "a@b.c", "hots": "h"}}, "unknown option 'hots'"),
        ({"x": {"type": "http", "url": "ftp://x"}}, "is not an http"),
        (
            {"x": {"type": "http", "url": "http://x", "body": {"a": "{secret}"}}},
            "not a placeholder",
        ),
        (
            {"x": {"type": "http", "url": "http://x", "body": {"a": "{to.real}"}}},
            "not a placeholder",
        ),
        ({"x": {"type": "folder"}}, "option 'path' is required"),
        ({"x": {"type": "in_app", "interaction_channel": "wechat"}}, "not one of core's channels"),
    ],
)
def test_bad_channel_configuration(
    crm_factory: Callable[..., CRM], channels: dict[str, Any], message: str
) -> None:
    import crmcore_messaging.plugin

    with pytest.raises(ConfigError, match=message):
        crm_factory(
            plugins=[crmcore_messaging.plugin],
            plugin_sections={"messaging": {"channels": channels}},
        )


def test_bad_settings(crm_factory: Callable[..., CRM]) -> None:
    import crmcore_messaging.plugin

    for section, message in (
        ({"default_timezone": "Mars/Base"}, "not a known time zone"),
        ({"default_channel": "fax"}, "'fax' .* is not a configured channel"),
        ({"caps": [{"channel": "fax", "max": 1, "days": 1}]}, "'fax' is not a configured"),
        ({"staff": {"al": {"fax": "x"}}}, "'fax' is not a configured channel"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "quiet_hours"),
    ):
        with pytest.raises(ConfigError, match=message):
            crm_factory(plugins=[crmcore_messaging.plugin], plugin_sections={"messaging": section})


def test_default_channel_is_in_app(crm_factory: Callable[..., CRM]) -> None:
    import crmcore_messaging.plugin

    crm = crm_factory(plugins=[crmcore_messaging.plugin])
    ann = add_customer(crm, "Ann")
    queued = queue_text(crm, ann)
    assert queued.state == "queued"
    assert stored_messages(crm)[0].channel == "in_app"
    assert delivery.send_pending(crm).sent == 1
    assert [m["text"] for m in listing.inbox(crm, ann)] == ["Hello"]
    assert datetime(2026, 1, 1, tzinfo=UTC) <= stored_messages(crm)[0].sent_at
