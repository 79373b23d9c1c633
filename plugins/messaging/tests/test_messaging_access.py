"""Every delivery service function obeys the principal (the access conformance matrix)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from crmcore_messaging import (
    claims,
    delivery,
    demo,
    listing,
    measures,
    privacy,
    queue,
    settings,
)
from crmcore_messaging.channels import registry
from rich.console import Console

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal, Role
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

MODULES: tuple[Any, ...] = (queue, delivery, claims, listing, measures, privacy, demo)
#: Functions taking the CRM first that are not service functions, and why.
EXEMPT = {
    "settings.remember_settings": "reads the configuration once at start-up (crm_startup)",
    "settings.settings_of": "returns the configuration the CRM opened with",
    "registry.channel_types": "lists channel classes (configuration, no customer data)",
    "registry.check_channels": "builds the configured channels at start-up (crm_startup)",
    "registry.channel_of": "returns a built channel (configuration, no customer data)",
    "registry.new_channel": "builds a channel to send a batch with (configuration only)",
}
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
CONSENT = {"consent": {"marketing_email": True, "data_processing": True}}


def _send_to(crm: CRM, customer_id: int, channel: str = "in_app") -> int:
    with crm.unit_of_work() as uow:
        queued = queue.enqueue(uow, customer_id=customer_id, text="kit text", channel=channel)
    assert queued.message_id is not None
    return queued.message_id


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    for customer_id in (visible, hidden):
        crm.customers.update(customer_id, CONSENT)
    data = {"visible_message": _send_to(crm, visible), "hidden_message": _send_to(crm, hidden)}
    _send_to(crm, visible, "email")
    _send_to(crm, hidden, "email")
    delivery.send_pending(crm)
    with crm.unit_of_work() as uow:
        queue.enqueue_staff(uow, user="kit-stranger", subject="for the stranger", text="t")
    data["visible_customer"] = crm.customers.get(visible)
    return data


def _fresh_consenting(crm: CRM, s: Subjects) -> int:
    customer_id = fresh_customer(crm, s)
    crm.customers.update(customer_id, CONSENT)
    return customer_id


def _fresh_message(crm: CRM, s: Subjects) -> int:
    """A queued message to a new customer (``visible`` may have reached its caps)."""
    customer_id = _fresh_consenting(crm, s)
    with crm.unit_of_work() as uow:
        queued = queue.enqueue(uow, customer_id=customer_id, text="fresh", channel="in_app")
    assert queued.state == "queued" and queued.message_id is not None
    return queued.message_id


def _failed_message(crm: CRM, s: Subjects) -> int:
    """A message failed for good (what an operator may queue again)."""
    message_id = _fresh_message(crm, s)
    with crm.unit_of_work() as uow:
        table = crm.metadata.tables["messaging_messages"]
        uow.connection.execute(
            table.update()
            .where(table.c.id == message_id)
            .values(state="failed", reason="unknown_outcome")
        )
    return message_id


M = "visible_message"

CASES: list[Case] = [
    Case(
        "queue.enqueue",
        in_unit_of_work(lambda u, s: queue.enqueue(u, customer_id=s.visible, text="kit")),
    ),
    Case(
        "queue.enqueue_many",
        in_unit_of_work(
            lambda u, s: queue.enqueue_many(u, [{"customer_id": s.visible, "text": "kit"}])
        ),
    ),
    Case(
        "queue.enqueue_staff",
        in_unit_of_work(lambda u, s: queue.enqueue_staff(u, user="kit", subject="s", text="t")),
        EVERYONE_ONLY,
    ),
    Case("queue.send_message", lambda c, s: queue.send_message(c, s.visible, text="kit")),
    Case("delivery.send_pending", lambda c, s: delivery.send_pending(c), ADMIN_ONLY),
    Case("claims.claim", lambda c, s: claims.claim(c, "kit-worker", 1), ADMIN_ONLY),
    Case("claims.expire_interrupted", lambda c, s: claims.expire_interrupted(c), ADMIN_ONLY),
    Case("listing.list_messages", lambda c, s: listing.list_messages(c)),
    Case("listing.get_message", lambda c, s: listing.get_message(c, s.data[M])),
    Case("listing.customer_messages", lambda c, s: listing.customer_messages(c, s.visible)),
    Case("listing.inbox", lambda c, s: listing.inbox(c, s.visible)),
    Case("listing.mark_read", lambda c, s: listing.mark_read(c, s.visible, s.data[M])),
    Case(
        "listing.cancel_message",
        lambda c, s: listing.cancel_message(c, s.fresh),
        ADMIN_ONLY,
        setup=_fresh_message,
    ),
    Case(
        "listing.retry_message",
        lambda c, s: listing.retry_message(c, s.fresh),
        ADMIN_ONLY,
        setup=_failed_message,
    ),
    Case("listing.queue_status", lambda c, s: listing.queue_status(c), EVERYONE_ONLY),
    Case("measures.metrics", lambda c, s: measures.metrics(c, PERIOD), EVERYONE_ONLY),
    Case(
        "measures.profile_section",
        lambda c, s: measures.profile_section(c, s.data["visible_customer"]),
    ),
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
        setup=_fresh_consenting,
    ),
    Case("demo.run", lambda c, s: demo.run(c, 3, Console(file=io.StringIO())), ADMIN_ONLY),
]


def test_every_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []
    assert set(undeclared(settings, registry)) == set(EXEMPT)


def test_messaging_conformance_matrix(mcrm: CRM) -> None:
    matrix = run_conformance(
        mcrm,
        "messaging",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES, settings, registry),
        exempt=EXEMPT,
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("listing.cancel_message", "admin")] == "allowed"
    assert outcome[("listing.retry_message", "admin")] == "allowed"
    assert outcome[("queue.send_message", "foreign")] == "denied"
    assert outcome[("queue.enqueue_many", "foreign")] == "denied"
    assert outcome[("queue.send_message", "granted")] == "allowed"
    assert outcome[("listing.list_messages", "foreign")] == "nothing foreign"
    assert outcome[("delivery.send_pending", "manager")] == "denied"


def test_agents_see_their_customers_messages_and_their_own_staff_messages(mcrm: CRM) -> None:
    mine = mcrm.customers.create({"name": "Mine", "owner": "alice", **CONSENT}).id
    theirs = mcrm.customers.create({"name": "Theirs", "owner": "bob", **CONSENT}).id
    assert mine is not None and theirs is not None
    alice = mcrm.as_user(Principal("alice"))
    own = queue.send_message(alice, mine, text="hi", channel="in_app")
    with pytest.raises(AccessDeniedError):
        queue.send_message(alice, theirs, text="hi", channel="in_app")
    foreign = queue.send_message(mcrm, theirs, text="hi", channel="in_app")
    with mcrm.unit_of_work() as uow:
        staff = queue.enqueue_staff(uow, user="alice", subject="s", text="t", channel="in_app")
    listed = {m["id"] for m in listing.list_messages(alice)}
    assert listed == {own.message_id, staff.message_id}
    assert foreign.message_id is not None
    with pytest.raises(AccessDeniedError):
        listing.get_message(alice, foreign.message_id)
    assert staff.message_id is not None
    assert listing.get_message(alice, staff.message_id)["staff_user"] == "alice"
    with pytest.raises(AccessDeniedError):
        listing.get_message(mcrm.as_user(Principal("bob")), staff.message_id)
    assert listing.get_message(mcrm.as_user(Principal("olga", Role.MANAGER)), staff.message_id)
    with pytest.raises(AccessDeniedError):
        delivery.send_pending(alice)
    admin = mcrm.as_user(Principal("root", Role.ADMIN))
    assert delivery.send_pending(admin).sent == 3
    entries = mcrm.audit.query(action="messaging.*", limit=100).items
    queued_by = [(e.action, e.actor) for e in entries if e.action == "messaging.message_queue"]
    assert ("messaging.message_queue", "alice") in queued_by
    assert ("messaging.send", "root") in [(e.action, e.actor) for e in entries]
