"""``crm messages ...``: parse, call the service functions, print (tables, or ``--json``).

``channels``, ``send``, ``list``, ``status``, ``show``, ``queue``,
``cancel`` and ``retry`` are here; ``templates``, ``preview``, ``unsubscribe`` and
``click`` come from :mod:`crmcore_messaging.cli_templates`, registered
lazily. Service modules are imported inside the commands, so that ``crm
--help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.cli.lazy import LazyGroup, add_lazy_command

_COLUMNS = [
    "id",
    "customer_id",
    "staff_user",
    "channel",
    "purpose",
    "subject",
    "state",
    "reason",
    "attempts",
    "not_before",
    "sent_at",
]


@click.group(cls=LazyGroup)
def messages() -> None:
    """Messages to customers and staff: channels, send the queue, list, status, templates."""


_TEMPLATES = "crmcore_messaging.cli_templates"
for _name, _attribute, _help in (
    ("templates", "templates", "Message templates: add, list, show (Jinja2, per locale)."),
    ("preview", "preview", "Render a template for a customer, without sending."),
    (
        "unsubscribe",
        "unsubscribe",
        "Apply a signed unsubscribe token (turns the channel's consent off).",
    ),
    (
        "click",
        "click_link",
        "Resolve a signed tracked link: record the click, print the destination.",
    ),
):
    add_lazy_command(messages, _name, f"{_TEMPLATES}:{_attribute}", _help)


@messages.command("channels")
@json_option
def channels_command(as_json: bool) -> None:
    """List the configured channels: type, consent flag, address."""
    from crmcore_messaging.channels.registry import channel_of
    from crmcore_messaging.settings import settings_of

    crm = get_crm()
    settings = settings_of(crm)
    defaults = {p: settings.default_channel(p) for p in ("marketing", "survey", "service", "staff")}
    rows = []
    for name, config in settings.channels.items():
        channel = channel_of(crm, name)
        rows.append(
            {
                "name": name,
                "type": config.type,
                "consent": config.consent,
                "address": config.address_attribute or channel.address,
                "interaction_channel": channel.channel_of_interaction,
                "default_for": [p for p, n in defaults.items() if n == name],
            }
        )
    if as_json:
        print_json(rows)
    else:
        print_table(rows, list(rows[0]) if rows else ["name"], title="channels")


@messages.command("send")
@click.option(
    "--limit", type=click.IntRange(1, 10_000_000), default=None, help="At most this many."
)
@click.option("--worker", default=None, help="Name of this sender (default host:pid:random).")
@json_option
def send_command(limit: int | None, worker: str | None, as_json: bool) -> None:
    """Send the due messages (safe to run from several processes at once)."""
    from crmcore_messaging.delivery import send_pending

    report = send_pending(get_crm(), limit=limit, worker=worker)
    if as_json:
        print_json(report.to_dict())
    else:
        print_record(report.to_dict(), title="messages sent")


@messages.command("list")
@click.option("--customer", "customer_id", type=click.IntRange(1), default=None)
@click.option("--state", default=None, help="queued, deferred, sending, sent, failed, ...")
@click.option("--channel", default=None)
@click.option("--ref", default=None, help="Reference TYPE:ID, e.g. campaigns.campaign:3.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def list_command(ref: str | None, as_json: bool, **filters: Any) -> None:
    """List messages, newest first."""
    from crmcore.errors import ValidationError
    from crmcore_messaging.listing import list_messages

    if ref is not None:
        if ":" not in ref:
            raise ValidationError("--ref: expected TYPE:ID, e.g. campaigns.campaign:3", field="ref")
        filters["ref_type"], filters["ref_id"] = ref.split(":", 1)
    rows = list_messages(get_crm(), **filters)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, _COLUMNS, title="messages")


@messages.command("show")
@click.argument("message_id", type=click.IntRange(1))
@json_option
def show_command(message_id: int, as_json: bool) -> None:
    """Show message MESSAGE_ID."""
    from crmcore_messaging.listing import get_message

    data = get_message(get_crm(), message_id)
    if as_json:
        print_json(data)
    else:
        print_record(data, title=f"message {message_id}")


@messages.command("status")
@json_option
def status_command(as_json: bool) -> None:
    """Show the queue: counts by state and channel, due now, retries waiting."""
    from crmcore_messaging.listing import queue_status

    data = queue_status(get_crm())
    if as_json:
        print_json(data)
        return
    print_record(
        {
            **{k: v for k, v in data["by_state"].items()},
            "due now": data["due_now"],
            "oldest due": data["oldest_due"],
            "retrying": data["retrying"],
        },
        title="queue",
    )
    rows = [{"channel": c, **counts} for c, counts in data["by_channel"].items()]
    if rows:
        states = sorted({s for counts in data["by_channel"].values() for s in counts})
        print_table(rows, ["channel", *states], title="by channel")


@messages.command("queue")
@click.argument("customer_id", type=click.IntRange(1))
@click.option("--text", required=True, help="The message text.")
@click.option("--subject", default=None)
@click.option("--channel", default=None, help="Default: default_channel of the purpose.")
@click.option(
    "--purpose",
    type=click.Choice(["marketing", "survey", "service"]),
    default="marketing",
    show_default=True,
)
@click.option("--dedupe-key", default=None, help="A key that makes a re-run queue nothing.")
@json_option
def queue_command(customer_id: int, as_json: bool, **fields: Any) -> None:
    """Queue a text message to CUSTOMER_ID (sent by `crm messages send`)."""
    from crmcore_messaging.queue import send_message

    queued = send_message(get_crm(), customer_id, actor=get_actor(), **fields)
    data = {"message_id": queued.message_id, "state": queued.state, "reason": queued.reason}
    if as_json:
        print_json(data)
    else:
        print_record(data, title="message")


@messages.command("cancel")
@click.argument("message_id", type=click.IntRange(1))
@json_option
def cancel_command(message_id: int, as_json: bool) -> None:
    """Cancel a queued or deferred message (it is never sent)."""
    from crmcore_messaging.listing import cancel_message

    data = cancel_message(get_crm(), message_id, actor=get_actor())
    if as_json:
        print_json(data)
    else:
        print_record(data, title=f"message {message_id}")


@messages.command("retry")
@click.argument("message_id", type=click.IntRange(1))
@json_option
def retry_command(message_id: int, as_json: bool) -> None:
    """Queue a failed or bounced message again (it may reach the customer twice)."""
    from crmcore_messaging.listing import retry_message

    data = retry_message(get_crm(), message_id, actor=get_actor())
    if as_json:
        print_json(data)
    else:
        print_record(data, title=f"message {message_id}")
