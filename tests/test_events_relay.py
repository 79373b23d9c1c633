"""The relay publishes the outbox to the real RabbitMQ at least once, in order, resuming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from crmcore import CRM, DeliveryError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.events.relay import position, relay

AMQP_URL = os.environ.get("CRM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def exchange() -> Iterator[tuple[str, Any, str]]:
    """A fresh exchange with one queue bound to every routing key; deleted afterwards."""
    pika = pytest.importorskip("pika")
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except Exception as exc:  # any failure to connect means no broker
        if IN_CI:
            pytest.fail(f"RabbitMQ at {AMQP_URL} is unreachable: {exc} (CI=true: must run)")
        pytest.skip(f"RabbitMQ at {AMQP_URL} is unreachable: {exc}")
    channel = connection.channel()
    name = f"crm.test.{uuid.uuid4().hex[:10]}"
    channel.exchange_declare(exchange=name, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue=f"{name}.all", durable=True).method.queue
    channel.queue_bind(queue=queue, exchange=name, routing_key="#")
    try:
        yield name, channel, queue
    finally:
        channel.queue_delete(queue=queue)
        channel.exchange_delete(exchange=name)
        connection.close()


def drain(channel: Any, queue: str) -> list[dict[str, Any]]:
    """Every message waiting in ``queue``, acknowledged, with its message_id."""
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return messages
        event = json.loads(body)
        assert properties.message_id == event["id"]
        assert method.routing_key == event["type"]
        messages.append(event)


def populate(crm: CRM, customers: int) -> None:
    for n in range(customers):
        cid = crm.customers.create({"name": f"Customer {n}"}).id
        crm.interactions.record(
            {"customer_id": cid, "kind": "purchase", "occurred_at": "2026-01-01T10:00:00Z",
             "amount": "5.00", "currency": "EUR"}
        )  # fmt: skip


def test_relay_publishes_every_committed_event_once_in_order(crm: CRM, exchange: Any) -> None:
    name, channel, queue = exchange
    populate(crm, 5)  # committed while no relay runs: a "crash" before publishing loses nothing
    expected = [e.id for e in crm.events.iter()]
    assert relay(crm, AMQP_URL, exchange=name, once=True, page=3) == len(expected)
    published = drain(channel, queue)
    assert [m["id"] for m in published] == expected
    assert [m["position"] for m in published] == sorted(m["position"] for m in published)
    assert position(crm, "amqp") == published[-1]["position"]
    # Caught up: nothing twice. New events: only those.
    assert relay(crm, AMQP_URL, exchange=name, once=True) == 0
    populate(crm, 1)
    assert relay(crm, AMQP_URL, exchange=name, once=True) == 4
    types = [m["type"] for m in drain(channel, queue)]
    assert types == ["customer.created", "lifecycle.changed", "interaction.recorded",
                     "lifecycle.changed"]  # fmt: skip


def test_killed_relay_resumes_with_duplicates_only_of_the_same_id(
    db_url: str, exchange: Any
) -> None:
    name, channel, queue = exchange
    with CRM.open(db_url, discover=False, upgrade=True) as crm:
        populate(crm, 20)
        expected = [e.id for e in crm.events.iter()]
    script = textwrap.dedent(
        f"""
        import os
        from crmcore import CRM
        from crmcore.events.relay import relay
        crm = CRM.open({db_url!r}, discover=False)
        count = 0
        def published(event):
            global count
            count += 1
            if count == 17:  # mid-page: the broker has messages the cursor does not know of
                os._exit(9)
        relay(crm, {AMQP_URL!r}, exchange={name!r}, page=5, once=True, published=published)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()
    first = drain(channel, queue)
    assert 0 < len(first) < len(expected)
    with CRM.open(db_url, discover=False) as crm:
        relay(crm, AMQP_URL, exchange=name, page=5, once=True)
    second = drain(channel, queue)
    ids = [m["id"] for m in first + second]
    assert set(ids) == set(expected)  # none lost
    duplicates = [i for i in set(ids) if ids.count(i) > 1]
    assert 0 < len(duplicates) <= 5  # at most the page it was working on, same ids
    assert [m["id"] for m in second] == expected[expected.index(second[0]["id"]) :]


def test_relay_errors_are_one_line_and_need_the_admin_right(crm: CRM) -> None:
    with pytest.raises(DeliveryError, match=r"cannot reach the broker at amqp://guest:\*\*\*@"):
        relay(crm, "amqp://guest:wrong@127.0.0.1:5672/%2F", once=True)
    with pytest.raises(AccessDeniedError):
        relay(crm.as_user(Principal("meg", Role.MANAGER)), AMQP_URL, once=True)
