"""Signed links on both backends: one-click unsubscribe through core, tracked clicks, bad tokens."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from crmcore_messaging import queue, templates, tokens
from crmcore_messaging.tables import (
    clicks_table,
    messages_table,
    secrets_table,
    unsubscribes_table,
)
from itsdangerous import URLSafeSerializer
from sqlalchemy import delete, func, insert, select

from crmcore import CRM, ValidationError

from .conftest import SECTION

LINK = re.compile(r"https://crm\.example\.com/crm/([cu])/(\S+)")


def _rows(crm: CRM, table: Any) -> list[Any]:
    with crm.engine.connect() as connection:
        return list(connection.execute(select(table).order_by(*table.primary_key.columns)))


def _events(crm: CRM, event_type: str) -> list[Any]:
    return crm.events.list(type=event_type, limit=1000)


def _customer(crm: CRM, name: str = "Ann") -> int:
    created = crm.customers.create(
        {
            "name": name,
            "email": f"{name.lower()}@example.com",
            "consent": {"marketing_email": True, "data_processing": True},
        }
    )
    assert created.id is not None
    return created.id


def _message(crm: CRM, customer_id: int | None, channel: str = "email") -> str:
    """A message row (as queue.enqueue stores one) for the token tests; returns its token."""
    token = f"tok{customer_id}{channel}{len(_rows(crm, messages_table(crm.metadata)))}"
    with crm.unit_of_work() as uow:
        uow.connection.execute(
            insert(messages_table(crm.metadata)).values(
                token=token,
                customer_id=customer_id,
                staff_user=None if customer_id else "alice",
                channel=channel,
                purpose="marketing" if customer_id else "staff",
                state="sent",
                not_before=uow.now,
                created_at=uow.now,
                updated_at=uow.now,
            )
        )
    return token


def test_an_unsubscribe_link_turns_consent_off(mcrm: CRM) -> None:
    templates.save_template(
        mcrm,
        "news",
        locale="en",
        text="Hi {{ customer.name }}: {{ link('https://shop.example.com/sale') }}\n"
        "Stop these: {{ unsubscribe_url }}",
    )
    customer_id = _customer(mcrm)
    with mcrm.unit_of_work() as uow:
        queued = queue.enqueue(uow, customer_id=customer_id, template="news", channel="email")
    assert queued.state == "queued" and queued.message_id is not None
    (row,) = _rows(mcrm, messages_table(mcrm.metadata))
    links = dict((kind, signed) for kind, signed in LINK.findall(row.body_text))
    assert set(links) == {"c", "u"} and row.template_version == 1 and row.locale == "en"

    done = tokens.unsubscribe(mcrm, f"https://crm.example.com/crm/u/{links['u']}")
    assert (done.customer_id, done.channel, done.consent_field, done.already) == (
        customer_id,
        "email",
        "marketing_email",
        False,
    )
    consent = mcrm.customers.get(customer_id).consent
    assert consent.marketing_email is False and consent.data_processing is True
    (entry,) = mcrm.audit.query(action="customer.update", limit=10).items
    assert entry.actor == "unsubscribe" and entry.customer_id == customer_id
    assert entry.details["changed"]["consent"]["to"]["marketing_email"] is False
    (unsubscribed,) = _rows(mcrm, unsubscribes_table(mcrm.metadata))
    assert (unsubscribed.message_id, unsubscribed.consent_field) == (row.id, "marketing_email")
    (event,) = _events(mcrm, "messaging.unsubscribed")
    assert event.customer_id == customer_id and event.data["channel"] == "email"

    again = tokens.unsubscribe(mcrm, links["u"])  # the bare signed part works too
    assert again.already is True and again.consent_field == "marketing_email"
    assert len(_rows(mcrm, unsubscribes_table(mcrm.metadata))) == 1
    assert len(_events(mcrm, "messaging.unsubscribed")) == 1
    assert len(mcrm.audit.query(action="customer.update", limit=10).items) == 1
    with mcrm.unit_of_work() as uow:  # the consent rule now refuses the next message
        refused = queue.enqueue(uow, customer_id=customer_id, template="news", channel="email")
    assert refused.state == "refused"


def test_a_customer_who_consents_again_can_unsubscribe_again(mcrm: CRM) -> None:
    customer_id = _customer(mcrm)
    token = _message(mcrm, customer_id)
    url = tokens.unsubscribe_url(mcrm, token)
    assert tokens.unsubscribe(mcrm, url).already is False
    mcrm.customers.update(customer_id, {"consent": {"marketing_email": True}})
    assert tokens.unsubscribe(mcrm, url).already is False
    assert len(_rows(mcrm, unsubscribes_table(mcrm.metadata))) == 2
    in_app = tokens.unsubscribe(
        mcrm, tokens.unsubscribe_url(mcrm, _message(mcrm, customer_id, "in_app"))
    )
    assert in_app.consent_field == "data_processing" and in_app.already is False


def test_tracked_links_record_every_click_and_return_the_destination(mcrm: CRM) -> None:
    customer_id = _customer(mcrm)
    token = _message(mcrm, customer_id)
    url = tokens.tracked_url(mcrm, token, "https://shop.example.com/p?id=7&utm=x")
    assert url.startswith("https://crm.example.com/crm/c/")
    assert tokens.resolve_click(mcrm, url) == "https://shop.example.com/p?id=7&utm=x"
    other = tokens.tracked_url(mcrm, token, "http://shop.example.com/other")
    assert tokens.resolve_click(mcrm, other.rsplit("/", 1)[1]) == "http://shop.example.com/other"
    assert tokens.resolve_click(mcrm, url) == "https://shop.example.com/p?id=7&utm=x"
    clicks = _rows(mcrm, clicks_table(mcrm.metadata))
    assert [c.url for c in clicks] == [
        "https://shop.example.com/p?id=7&utm=x",
        "http://shop.example.com/other",
        "https://shop.example.com/p?id=7&utm=x",
    ]
    events = _events(mcrm, "messaging.link_clicked")
    assert [e.data["first"] for e in events] == [True, False, False]
    assert {e.customer_id for e in events} == {customer_id}
    with pytest.raises(ValidationError, match=r"only http\(s\) URLs can be tracked"):
        tokens.tracked_url(mcrm, token, "javascript:alert(document.cookie)")


def _flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` changed (not a base64 run's last: unused bits)."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_bad_and_tampered_tokens_are_refused_without_detail(mcrm: CRM) -> None:
    customer_id = _customer(mcrm)
    token = _message(mcrm, customer_id)
    click = tokens.tracked_url(mcrm, token, "https://shop.example.com/").rsplit("/", 1)[1]
    leave = tokens.unsubscribe_url(mcrm, token).rsplit("/", 1)[1]
    payload, signature = click.rsplit(".", 1)
    forged = URLSafeSerializer("not the secret", salt=tokens.CLICK_SALT).dumps(
        [token, "https://evil.example/"]
    )
    tampered = [
        "garbage",
        "",
        f"{payload}.{_flip(signature, 0)}",
        f"{payload}.{_flip(signature, 10)}",
        f"{_flip(payload, 5)}.{signature}",
        forged,
        leave,  # an unsubscribe token is not a click token (another salt)
        "x" * 5000,
    ]
    for bad in tampered:
        with pytest.raises(ValidationError) as caught:
            tokens.resolve_click(mcrm, bad)
        assert str(caught.value) == "link: not a valid link (its signature does not match)"
    for bad in ("garbage", click, _flip(leave, 3), _flip(leave, len(leave) - 10)):
        with pytest.raises(ValidationError, match=r"^link: not a valid link"):
            tokens.unsubscribe(mcrm, bad)
    assert _rows(mcrm, clicks_table(mcrm.metadata)) == []
    assert mcrm.customers.get(customer_id).consent.marketing_email is True


def test_links_of_deleted_or_erased_messages_and_staff_messages_are_refused(mcrm: CRM) -> None:
    kept, erased = _customer(mcrm, "Kim"), _customer(mcrm, "Eve")
    gone = _message(mcrm, kept)
    link = tokens.tracked_url(mcrm, gone, "https://shop.example.com/")
    with mcrm.unit_of_work() as uow:
        table = messages_table(mcrm.metadata)
        uow.connection.execute(delete(table).where(table.c.token == gone))
    with pytest.raises(ValidationError, match="this link no longer works"):
        tokens.resolve_click(mcrm, link)
    mine = _message(mcrm, erased)
    leave, click = (
        tokens.unsubscribe_url(mcrm, mine),
        tokens.tracked_url(mcrm, mine, "https://a.example/"),
    )
    mcrm.customers.erase(erased)
    with pytest.raises(ValidationError, match="this link no longer works"):
        tokens.unsubscribe(mcrm, leave)
    with pytest.raises(ValidationError, match="this link no longer works"):
        tokens.resolve_click(mcrm, click)
    staff = _message(mcrm, None, "in_app")
    with pytest.raises(ValidationError, match="went to a user, not a customer"):
        tokens.unsubscribe(mcrm, tokens.unsubscribe_url(mcrm, staff))
    assert tokens.resolve_click(mcrm, tokens.tracked_url(mcrm, staff, "https://a.example/x")) == (
        "https://a.example/x"
    )
    # A signed payload whose URL is not http(s) is refused on resolving too.
    secret = _rows(mcrm, secrets_table(mcrm.metadata))[0].value
    signed = URLSafeSerializer(secret, salt=tokens.CLICK_SALT).dumps([staff, "javascript:x()"])
    with pytest.raises(ValidationError, match=r"only http\(s\) URLs"):
        tokens.resolve_click(mcrm, signed)


def test_a_channel_no_longer_configured_is_refused(open_crm: Callable[..., CRM]) -> None:
    crm = open_crm()
    customer_id = _customer(crm)
    token = _message(crm, customer_id, "retired")
    with pytest.raises(ValidationError, match="'retired' is no longer configured"):
        tokens.unsubscribe(crm, tokens.unsubscribe_url(crm, token))


def test_the_configured_secret_signs_else_one_is_stored_once(
    open_crm: Callable[..., CRM],
) -> None:
    configured = open_crm({**SECTION, "secret": "s" * 32})
    customer_id = _customer(configured)
    token = _message(configured, customer_id)
    url = tokens.tracked_url(configured, token, "https://a.example/")
    signed = url.rsplit("/", 1)[1]
    assert URLSafeSerializer("s" * 32, salt=tokens.CLICK_SALT).loads(signed) == [
        token,
        "https://a.example/",
    ]
    assert _rows(configured, secrets_table(configured.metadata)) == []
    generated = open_crm()
    first = tokens.unsubscribe_url(generated, token)
    assert tokens.unsubscribe_url(generated, token) == first
    (stored,) = _rows(generated, secrets_table(generated.metadata))
    assert stored.name == "signing" and len(stored.value) >= 32
    with pytest.raises(ValidationError, match="not a valid link"):
        tokens.resolve_click(generated, signed)  # signed with the other secret


def test_first_use_of_the_secret_is_race_safe(open_crm: Callable[..., CRM]) -> None:
    """Two processes signing for the first time at once end up with one secret."""
    first, second = open_crm(), open_crm()  # two engines on one database
    customer_id = _customer(first)
    token = _message(first, customer_id)
    inserted = threading.Event()
    results: dict[str, str] = {}

    def early() -> None:
        with first.unit_of_work() as uow:
            results["first"] = tokens.unsubscribe_url(uow, token)
            inserted.set()
            threading.Event().wait(0.3)  # still uncommitted while the other one signs

    thread = threading.Thread(target=early)
    thread.start()
    inserted.wait(5)
    results["second"] = tokens.unsubscribe_url(second, token)
    thread.join(5)
    assert results["first"] == results["second"]
    with first.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(secrets_table(first.metadata)))
        assert count.scalar_one() == 1
