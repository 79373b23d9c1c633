"""The plugin's part of ``crm demo``: templates, a queue, the rules at work, a folder of files.

When no ``folder`` channel is configured, the demo opens a CRM on the same
engine and plugins whose settings add one, ``outbox`` (writing into
``<database>-messages`` beside a SQLite file, consent ``marketing_email``, the
default channel): no server is needed. It saves a welcome
template in ``zh-CN`` and ``en``, queues it to up to 60 customers with an
email (deterministic from the seed), queues four offers to a few of them
(the default cap, 3 in 7 days, refuses the fourth), lets one customer
unsubscribe through a signed link (the next message to them is refused),
sends everything and prints what happened, by state and reason.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.access import Action
from crmcore.cli.output import safe_text
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.tables import customers
from crmcore_messaging import delivery, queue, templates, tokens
from crmcore_messaging.settings import settings_of
from crmcore_messaging.tables import messages_table

if TYPE_CHECKING:
    from rich.console import Console

_OFFER = "{{ link('https://shop.example.com/offer') }}"
#: The demo template: (subject, text) per locale.
WELCOME = {
    "zh-CN": ("欢迎, {{ customer.name }}", "{{ customer.name }}, 欢迎加入! 本月优惠: " + _OFFER),
    "en": ("Welcome, {{ customer.name }}", "Welcome aboard, {{ customer.name }}! " + _OFFER),
}


def _outbox_of(crm: CRM) -> Path:
    """Where the demo's folder channel writes: ``<database>-messages`` beside a SQLite file."""
    url = crm.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).with_name(Path(url.database).stem + "-messages")
    return Path(tempfile.mkdtemp(prefix="crm-demo-messages-"))


def _demo_view(crm: CRM) -> tuple[CRM, str]:
    """``crm`` and its folder channel, or a CRM on the same engine and plugins with ``outbox``."""
    for name, channel in settings_of(crm).channels.items():
        if channel.type == "folder":
            return crm, name
    section: dict[str, Any] = dict(crm.plugin_config("messaging"))
    channels = dict(section.get("channels") or {"in_app": {"type": "in_app"}})
    channels["outbox"] = {
        "type": "folder",
        "consent": "marketing_email",
        "path": str(_outbox_of(crm)),
    }
    section.update(channels=channels, default_channel="outbox")
    config = attrs.evolve(
        crm.config, plugin_sections={**crm.config.plugin_sections, "messaging": section}
    )
    plugins = [plugin for _, plugin in crm.pm.list_name_plugin()]
    view = CRM.open(config, engine=crm.engine, plugins=plugins, discover=False, clock=crm.clock)
    return view, "outbox"


def _recipients(crm: CRM, seed: int) -> list[int]:
    with crm.reading() as uow:
        ids = list(
            uow.connection.execute(
                select(customers.c.id)
                .where(customers.c.email_norm.is_not(None))
                .order_by(customers.c.id)
                .limit(500)
            ).scalars()
        )
    random.Random(seed).shuffle(ids)
    return sorted(ids[:60])


@requires(Action.ADMINISTER)
def run(crm: CRM, seed: int, console: Console) -> None:
    """Queue and send the demo's messages; print the outcome."""
    view, channel = _demo_view(crm)
    try:
        _run(view, channel, seed, console)
    finally:
        if view is not crm:
            view.close()


def _run(crm: CRM, channel: str, seed: int, console: Console) -> None:
    for locale, (subject, text) in WELCOME.items():
        templates.save_template(crm, "demo_welcome", locale=locale, subject=subject, text=text)
    people = _recipients(crm, seed)
    if not people:
        return
    queued: list[queue.Queued] = []
    with crm.unit_of_work() as uow:
        for customer_id in people:
            queued.append(
                queue.enqueue(
                    uow,
                    customer_id=customer_id,
                    template="demo_welcome",
                    channel=channel,
                    dedupe_key=f"demo:welcome:{customer_id}",
                )
            )
        for customer_id in people[:5]:  # with the welcome, 4 marketing messages: cap 3 in 7 days
            for n in range(3):
                queued.append(
                    queue.enqueue(
                        uow,
                        customer_id=customer_id,
                        subject=f"Offer {n + 1}",
                        text=f"Offer number {n + 1} of this week.",
                        channel=channel,
                        dedupe_key=f"demo:offer:{customer_id}:{n}",
                    )
                )
    delivery.send_pending(crm)
    table = messages_table(crm.metadata)
    ids = [q.message_id for q in queued if q.message_id is not None]
    with crm.reading() as uow:
        sent = uow.connection.execute(
            select(table.c.customer_id, table.c.token)
            .where(table.c.id.in_(ids), table.c.state == "sent", table.c.customer_id.is_not(None))
            .order_by(table.c.id)
            .limit(1)
        ).first()
    unsubscribed = None
    if sent is not None:  # the customer follows the signed link of the List-Unsubscribe header
        unsubscribed = tokens.unsubscribe(crm, tokens.unsubscribe_url(crm, sent.token))
        after = queue.send_message(
            crm, int(sent.customer_id), text="One more offer.", channel=channel
        )
        ids.append(after.message_id or 0)
    delivery.send_pending(crm)
    with crm.reading() as uow:
        outcome = {
            (state, reason or ""): int(n)
            for state, reason, n in uow.connection.execute(
                select(table.c.state, table.c.reason, func.count())
                .where(table.c.id.in_(ids))
                .group_by(table.c.state, table.c.reason)
            )
        }
    path = settings_of(crm).channels[channel].options.get("path")
    console.print(
        f"[bold]Messaging[/bold]: {len(ids)} messages to {len(people)} customers through the "
        f"folder channel {safe_text(channel)!r} (files in {safe_text(str(path))}):"
    )
    for (state, reason), count in sorted(outcome.items()):
        label = f"{state} ({reason})" if reason else state
        console.print(f"  {safe_text(label):<24} {count:>4}")
    if unsubscribed is not None:
        console.print(
            f"  customer {unsubscribed.customer_id} unsubscribed through the signed link "
            f"({safe_text(unsubscribed.consent_field)} off): their next message was refused"
        )


enforce_declared(__name__)
