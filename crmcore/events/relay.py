"""``crm events relay``: publish the outbox to RabbitMQ, at least once, in commit order.

The relay keeps its place in ``crm_event_cursors`` (one row per relay
name). It reads the events after that position a page of outbox rows at a
time, publishes each as a persistent message with publisher confirms, and
moves its position only once the broker has confirmed the whole page. A
relay killed at any point therefore republishes, when restarted, at most
the page it was working on: consumers see every event at least once, in
commit order, and duplicates carry the same ``message_id`` (the event id).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from crmcore.access import Action
from crmcore.errors import DeliveryError, ValidationError
from crmcore.events.model import Event
from crmcore.events.outbox import read_events
from crmcore.storage.tables import event_cursors

if TYPE_CHECKING:
    from crmcore.app import CRM

#: The exchange events are published to unless another is named (a durable topic exchange).
DEFAULT_EXCHANGE = "crm.events"


def position(crm: CRM, name: str) -> int:
    """Where relay ``name`` stands: the outbox position of the last row it delivered (0: none)."""
    with crm.reading() as uow:
        found = uow.connection.execute(
            select(event_cursors.c.position).where(event_cursors.c.name == name)
        ).scalar_one_or_none()
    return int(found or 0)


def _advance(crm: CRM, name: str, to: int) -> None:
    with crm.unit_of_work() as uow:
        values = {"position": to, "updated_at": uow.now}
        done = uow.connection.execute(
            update(event_cursors).where(event_cursors.c.name == name).values(**values)
        )
        if done.rowcount == 0:
            uow.connection.execute(insert(event_cursors).values(name=name, **values))


def _connect(url: str, exchange: str) -> Any:
    try:
        import pika
        from pika.exceptions import AMQPError
    except ImportError:  # pragma: no cover - pika is a dev and "amqp" extra dependency
        raise DeliveryError("the relay needs pika: pip install 'crmcore[amqp]'") from None
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
        channel.confirm_delivery()
    except (AMQPError, OSError, ValueError) as exc:
        raise DeliveryError(
            f"cannot reach the broker at {_safe(url)}: {type(exc).__name__}: {exc}"
        ) from None
    return connection, channel


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        rest = f"{user}:***@{host}"
    return f"{scheme}{sep}{rest}"


def _publish(channel: Any, exchange: str, event: Event) -> None:
    import pika

    properties = pika.BasicProperties(
        message_id=event.id,
        content_type="application/json",
        delivery_mode=2,  # persistent
        type=event.type,
        headers={"customer_id": event.customer_id, "position": event.position},
    )
    body = json.dumps(event.to_json(), separators=(",", ":")).encode()
    channel.basic_publish(exchange=exchange, routing_key=event.type, body=body,
                          properties=properties)  # fmt: skip


def relay(
    crm: CRM,
    url: str,
    *,
    exchange: str = DEFAULT_EXCHANGE,
    name: str = "amqp",
    page: int = 200,
    once: bool = False,
    poll: float = 1.0,
    stop: Callable[[], bool] | None = None,
    published: Callable[[Event], None] | None = None,
) -> int:
    """Publish every committed event after relay ``name``'s position; return how many.

    Messages go to ``exchange`` (a durable topic exchange, declared if
    missing) with the event type as routing key, the event id as
    ``message_id``, and the event as JSON. With ``once`` it returns when it
    has caught up; otherwise it polls every ``poll`` seconds until ``stop()``
    says so. ``published`` is told of each confirmed message. Needs the
    :attr:`~crmcore.access.Action.ADMINISTER` right.

    Raises:
        DeliveryError: The broker cannot be reached or refuses a message;
            the position stays where the last confirmed page left it.
    """
    crm.access.check(Action.ADMINISTER)
    if not name or len(name) > 100:
        raise ValidationError(f"name: must be 1 to 100 characters, got {name!r}", field="name")
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= 10_000:
        raise ValidationError(f"page: must be 1 to 10000, got {page!r}", field="page")
    from pika.exceptions import AMQPError

    connection, channel = _connect(url, exchange)
    count = 0
    try:
        while True:
            start = position(crm, name)
            with crm.reading() as uow:
                batch = list(read_events(uow.connection, after=start, page=page, limit_rows=page))
            for event in batch:
                try:
                    _publish(channel, exchange, event)
                except (AMQPError, OSError) as exc:
                    raise DeliveryError(
                        f"the broker refused event {event.id} ({event.type}): "
                        f"{type(exc).__name__}: {exc}"
                    ) from None
                count += 1
                if published is not None:
                    published(event)
            if batch:
                _advance(crm, name, batch[-1].position)
                continue
            if once or (stop is not None and stop()):
                return count
            time.sleep(poll)
    finally:
        with contextlib.suppress(AMQPError):
            connection.close()
