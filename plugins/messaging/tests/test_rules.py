"""The rules every send obeys: consent, erasure, address, quiet hours, frequency caps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crmcore_messaging import delivery, queue, rules
from crmcore_messaging.settings import Settings

from crmcore import CRM, Customer, NotFoundError, ValidationError
from crmcore.testing import FrozenClock

from .conftest import SMTPServer, add_customer, queue_text, stored_messages


def _states(crm: CRM) -> list[tuple[str, str | None]]:
    return [(r.state, r.reason) for r in stored_messages(crm)]


def test_consent_is_checked_at_enqueue_and_again_at_claim(
    dcrm: CRM, smtp_server: SMTPServer
) -> None:
    no = add_customer(dcrm, "No", consent={"marketing_email": False, "surveys": True})
    yes = add_customer(dcrm, "Yes")
    refused = queue_text(dcrm, no)
    assert (refused.state, refused.reason) == ("refused", "no_consent")
    queue_text(dcrm, yes)
    dcrm.customers.update(yes, {"consent": {"marketing_email": False}})  # withdrawn after
    report = delivery.send_pending(dcrm)
    assert (report.sent, report.refused) == (0, 1)
    assert _states(dcrm) == [("refused", "no_consent"), ("refused", "no_consent")]
    assert smtp_server.sink.ids() == []


def test_surveys_also_need_the_surveys_flag_and_service_the_channel_flag(dcrm: CRM) -> None:
    mail_only = add_customer(dcrm, "Mail", consent={"marketing_email": True, "surveys": False})
    nothing = add_customer(dcrm, "None", consent={"marketing_email": False, "surveys": True})
    assert queue_text(dcrm, mail_only, purpose="survey").reason == "no_consent"
    assert queue_text(dcrm, mail_only, purpose="service").state == "queued"
    assert queue_text(dcrm, nothing, purpose="service").reason == "no_consent"
    assert queue_text(dcrm, nothing, purpose="survey").reason == "no_consent"


def test_erased_customers_are_suppressed(dcrm: CRM, smtp_server: SMTPServer) -> None:
    ann = add_customer(dcrm, "Ann")
    pending = queue_text(dcrm, ann)
    dcrm.customers.erase(ann)
    assert (
        stored_messages(dcrm)[0].state == "refused" and stored_messages(dcrm)[0].reason == "erased"
    )
    later = queue_text(dcrm, ann, channel="inbox")
    assert (later.state, later.reason) == ("refused", "erased")
    assert delivery.send_pending(dcrm).claimed == 0
    assert smtp_server.sink.ids() == []
    assert pending.message_id is not None


def test_no_address_for_the_channel(dcrm: CRM) -> None:
    no_phone = add_customer(dcrm, "Ann")
    assert queue_text(dcrm, no_phone, channel="sms").reason == "no_address"
    assert queue_text(dcrm, no_phone, channel="inbox").state == "queued"  # in-app: the id


def test_address_attribute_addresses_a_chat_app(open_dcrm: Callable[..., CRM]) -> None:
    crm = open_dcrm()
    base = crm.plugin_config("messaging")
    channels = dict(base["channels"])
    channels["wechat"] = {**channels["sms"], "address_attribute": "openid"}
    crm = open_dcrm(channels=channels)
    with_id = add_customer(crm, "Wei", attributes={"openid": "o-123"})
    without = add_customer(crm, "Li")
    too_long = add_customer(crm, "Long", attributes={"openid": "o" * 321})
    assert queue_text(crm, with_id, channel="wechat").state == "queued"
    assert queue_text(crm, without, channel="wechat").reason == "no_address"
    assert queue_text(crm, too_long, channel="wechat").reason == "no_address"
    assert stored_messages(crm)[0].recipient == "o-123"


def test_frequency_caps_per_channel_and_overall(
    open_dcrm: Callable[..., CRM], clock: FrozenClock
) -> None:
    crm = open_dcrm(
        caps=[
            {"channel": "*", "max": 3, "days": 7},
            {"channel": "inbox", "max": 1, "days": 1, "purposes": ["marketing"]},
        ]
    )
    ann = add_customer(crm, "Ann")
    for _ in range(2):
        queue_text(crm, ann, channel="inbox")
    for _ in range(3):
        queue_text(crm, ann)
    queue_text(crm, ann, purpose="service")  # not capped: service is not among the purposes
    report = delivery.send_pending(crm)
    assert (report.sent, report.refused) == (4, 2)
    assert _states(crm) == [
        ("sent", None),
        ("refused", "frequency_cap"),  # inbox: 1 a day
        ("sent", None),
        ("sent", None),
        ("refused", "frequency_cap"),  # 3 a week overall
        ("sent", None),
    ]
    assert queue_text(crm, ann).reason == "frequency_cap"  # already full at enqueue
    with crm.unit_of_work() as uow:  # staff messages are exempt
        assert queue.enqueue_staff(uow, user="alice", subject="s", text="t").state == "queued"
    clock.advance(days=7)  # the window rolls: sent_at + 7 days is out
    assert queue_text(crm, ann).state == "queued"
    assert delivery.send_pending(crm).sent == 2


def test_cap_window_boundary(open_dcrm: Callable[..., CRM], clock: FrozenClock) -> None:
    crm = open_dcrm(caps=[{"channel": "*", "max": 1, "days": 1}])
    ann = add_customer(crm, "Ann")
    queue_text(crm, ann, channel="inbox")
    delivery.send_pending(crm)
    clock.advance(days=1, seconds=-1)
    assert queue_text(crm, ann, channel="inbox").reason == "frequency_cap"
    clock.advance(seconds=1)  # exactly one day later: the first one is out of the window
    assert queue_text(crm, ann, channel="inbox").state == "queued"


def test_quiet_hours_defer_to_their_end_in_the_customers_zone(
    open_dcrm: Callable[..., CRM], clock: FrozenClock
) -> None:
    crm = open_dcrm(quiet_hours={"start": "21:00", "end": "08:00"})
    clock.set(datetime(2026, 3, 2, 14, 30, tzinfo=UTC))  # 22:30 in Shanghai, 15:30 in Berlin
    shanghai = add_customer(crm, "Wei", attributes={"timezone": "Asia/Shanghai"})
    berlin = add_customer(crm, "Jan", attributes={"timezone": "Europe/Berlin"})
    late = queue_text(crm, shanghai, channel="inbox")
    day = queue_text(crm, berlin, channel="inbox")
    assert (late.state, day.state) == ("deferred", "queued")
    rows = {r.id: r for r in stored_messages(crm)}
    assert rows[late.message_id].not_before == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00
    assert delivery.send_pending(crm).sent == 1
    clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    assert delivery.send_pending(crm).sent == 1
    assert {r.state for r in stored_messages(crm)} == {"sent"}


def test_quiet_hours_are_checked_again_at_claim(
    open_dcrm: Callable[..., CRM], clock: FrozenClock
) -> None:
    crm = open_dcrm(quiet_hours={"start": "21:00", "end": "08:00"})
    clock.set(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # 20:00 in Shanghai
    wei = add_customer(crm, "Wei", phone="+8613800138000")  # zone from the number
    queue_text(crm, wei, channel="inbox")
    clock.advance(hours=1, minutes=30)  # 21:30: quiet now
    report = delivery.send_pending(crm)
    assert (report.sent, report.deferred) == (0, 1)
    (row,) = stored_messages(crm)
    assert (row.state, row.reason) == ("deferred", "quiet_hours")
    assert row.not_before == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert row.timezone == "Asia/Shanghai"


def _settings(**section: Any) -> Settings:
    return Settings.from_config({"default_timezone": "UTC", **section})


@pytest.mark.parametrize(
    ("local", "start", "end", "until"),
    [
        ("2026-03-02T22:00", "21:00", "08:00", "2026-03-03T08:00"),
        ("2026-03-03T07:59", "21:00", "08:00", "2026-03-03T08:00"),
        ("2026-03-03T08:00", "21:00", "08:00", None),
        ("2026-03-03T20:59", "21:00", "08:00", None),
        ("2026-03-03T21:00", "21:00", "08:00", "2026-03-04T08:00"),
        ("2026-03-03T12:30", "12:00", "14:00", "2026-03-03T14:00"),
        ("2026-03-03T14:00", "12:00", "14:00", None),
        ("2026-03-03T11:59", "12:00", "14:00", None),
        ("2026-03-03T12:00", "12:00", "12:00", None),
    ],
)
def test_quiet_until(local: str, start: str, end: str, until: str | None) -> None:
    settings = _settings(quiet_hours={"start": start, "end": end})
    now = datetime.fromisoformat(local).replace(tzinfo=UTC)
    found = rules.quiet_until(now, "UTC", settings)
    assert found == (None if until is None else datetime.fromisoformat(until).replace(tzinfo=UTC))


def test_quiet_hours_across_a_daylight_saving_change() -> None:
    settings = _settings(quiet_hours={"start": "22:00", "end": "07:00"})
    # 2026-03-29: Berlin moves from UTC+1 to UTC+2 at 02:00 local.
    now = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 00:00 local, quiet
    assert rules.quiet_until(now, "Europe/Berlin", settings) == datetime(
        2026, 3, 29, 5, 0, tzinfo=UTC
    )


def test_customer_zone_attribute_then_phone_then_default() -> None:
    settings = _settings(default_timezone="Europe/Paris")
    zone = rules.customer_zone
    assert zone(Customer(name="a", attributes={"timezone": "Asia/Tokyo"}), settings) == "Asia/Tokyo"
    bad = Customer(name="b", attributes={"timezone": "Mars/Olympus"}, phone="+8613800138000")
    assert zone(bad, settings) == "Asia/Shanghai"  # bad name: the number decides
    us = Customer(name="c", phone="+12025550100")
    assert zone(us, settings) == "America/New_York"
    assert zone(Customer(name="d"), settings) == "Europe/Paris"
    several = Customer(name="e", phone="+61491570156")  # an Australian mobile: many zones
    assert zone(several, settings) == "Europe/Paris"


def test_cap_counter_counts_a_batch(dcrm: CRM) -> None:
    settings = _settings(caps=[{"channel": "*", "max": 2, "days": 1}])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with dcrm.reading() as uow:
        counter = rules.CapCounter(uow.connection, dcrm.metadata, settings, [1], now)
    assert [counter.admit(1, "email", "marketing") for _ in range(3)] == [True, True, False]
    assert counter.admit(1, "email", "service")  # not a capped purpose
    assert counter.counts == [{1: 2}]


def test_enqueue_many_equals_enqueue_one_by_one(
    open_dcrm: Callable[..., CRM], clock: FrozenClock
) -> None:
    crm = open_dcrm(caps=[{"channel": "*", "max": 1, "days": 7}])
    ann = add_customer(crm, "Ann")
    no = add_customer(crm, "No", consent={"marketing_email": False})
    keep = add_customer(crm, "Keep")
    dup = add_customer(crm, "Dup")
    crm.customers.merge(keep, dup)
    requests: list[dict[str, Any]] = [
        {"customer_id": ann, "text": "a", "dedupe_key": "k1"},
        {"customer_id": ann, "text": "b", "dedupe_key": "k1"},  # repeats the first
        {"customer_id": no, "text": "c"},
        {"customer_id": dup, "text": "d", "channel": "inbox", "purpose": "service"},
        {"customer_id": ann, "text": "later", "not_before": clock() + timedelta(days=1)},
        {"customer_id": ann, "channel": "sms", "text": "no phone"},
    ]
    with crm.unit_of_work() as uow:
        many = queue.enqueue_many(uow, requests, batch_size=4)
    assert [(q.state, q.reason) for q in many] == [
        ("queued", None),
        ("duplicate", None),
        ("refused", "no_consent"),
        ("queued", None),
        ("queued", None),
        ("refused", "no_address"),
    ]
    assert many[1].message_id == many[0].message_id
    rows = stored_messages(crm)
    assert [r.customer_id for r in rows] == [ann, no, keep, ann, ann]
    with crm.unit_of_work() as uow:  # again: every keyed request is a duplicate now
        again = queue.enqueue_many(uow, requests[:2])
    assert [(q.state, q.message_id) for q in again] == [("duplicate", many[0].message_id)] * 2
    delivery.send_pending(crm)
    with crm.unit_of_work() as uow:  # the cap (1 in 7 days) is full for ann: refused at once
        full = queue.enqueue_many(uow, [{"customer_id": ann, "text": "x"}])
        one = queue.enqueue(uow, customer_id=ann, text="y")
    assert [(full[0].state, full[0].reason), (one.state, one.reason)] == [
        ("refused", "frequency_cap")
    ] * 2


def test_enqueue_many_names_the_bad_item_and_stores_nothing(dcrm: CRM) -> None:
    ann = add_customer(dcrm, "Ann")
    for bad, message in (
        (
            {"customer_id": ann, "text": "x", "colour": "red"},
            r"messages\[1\]: colour: is not a field",
        ),
        ({"customer_id": ann}, r"messages\[1\]: message: give either template or text"),
        ({"customer_id": "1", "text": "x"}, r"messages\[1\]: customer_id: expected an integer"),
        ({"customer_id": ann, "text": "x", "variables": [1]}, r"messages\[1\]: variables"),
    ):
        with pytest.raises(ValidationError, match=message), dcrm.unit_of_work() as uow:
            queue.enqueue_many(uow, [{"customer_id": ann, "text": "ok"}, bad])
    with pytest.raises(NotFoundError, match="customer 999999"), dcrm.unit_of_work() as uow:
        queue.enqueue_many(uow, [{"customer_id": 999_999, "text": "x"}])
    with pytest.raises(ValidationError, match="batch_size"), dcrm.unit_of_work() as uow:
        queue.enqueue_many(uow, [], batch_size=0)
    assert stored_messages(dcrm) == []


def test_two_callers_with_one_dedupe_key_queue_one_message(dcrm: CRM) -> None:
    """The second waits for the first's commit (the key's lock or the write lock), then skips."""
    import threading

    ann = add_customer(dcrm, "Ann")
    inside, results = threading.Event(), {}

    def first() -> None:
        with dcrm.unit_of_work() as uow:
            results["first"] = queue.enqueue(uow, customer_id=ann, text="a", dedupe_key="same")
            inside.set()
            threading.Event().wait(0.5)  # hold the transaction open a while

    def second() -> None:
        inside.wait(10)
        with dcrm.unit_of_work() as uow:
            results["second"] = queue.enqueue(uow, customer_id=ann, text="b", dedupe_key="same")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results["first"].state == "queued"
    assert results["second"] == queue.Queued(results["first"].message_id, "duplicate")
    assert [r.body_text for r in stored_messages(dcrm)] == ["a"]
