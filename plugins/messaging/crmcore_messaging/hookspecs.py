"""Hooks the messaging plugin publishes (added through ``crm_add_hookspecs``).

Implement them with ``@hookimpl(optionalhook=True)`` so that your plugin also
works without messaging installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.hooks import hookspec

if TYPE_CHECKING:
    from crmcore import UnitOfWork


@hookspec
def messaging_channel_types() -> Mapping[str, type] | None:
    """Add channel types: return ``{type name: class}``.

    Called once when a CRM opens (``crm_startup``), outside any transaction.
    Each class subclasses :class:`crmcore_messaging.channels.base.ChannelType`
    and is built once per configured channel of that ``type`` with the
    channel's name and options; it raises ConfigError for a bad option. A
    type named like a built-in one (smtp, http, in_app, folder) replaces it.
    Return ``None`` to add nothing; an exception fails the CRM's opening.
    """


@hookspec
def messaging_message_sent(ctx: UnitOfWork, messages: Sequence[Mapping[str, Any]]) -> None:
    """Messages were just sent: react inside the transaction that marks them sent.

    Called by :func:`crmcore_messaging.delivery.send_pending` once per batch,
    inside the unit of work that marks the messages ``sent`` and records
    their interactions. Each mapping holds ``message_id``, ``token``,
    ``customer_id`` (``None`` for staff messages), ``staff_user``,
    ``channel``, ``purpose``, ``ref_type``, ``ref_id``, ``sent_at`` and
    ``interaction_id``. The messages have left already: raising does not
    unsend them, it rolls back the marking (they are then failed with reason
    ``interrupted`` after the lease, never sent twice). Return nothing.
    """


__all__ = ["messaging_channel_types", "messaging_message_sent"]
