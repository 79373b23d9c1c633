"""The ``in_app`` channel: the message is stored for the embedding application to show.

Sending marks the row ``sent``; the application lists a customer's messages
(:func:`crmcore_messaging.queue.inbox`) and marks them read
(:func:`crmcore_messaging.queue.mark_read`). Nothing leaves the database.
"""

from __future__ import annotations

from typing import ClassVar

from crmcore_messaging.channels.base import ChannelType, Outgoing


class InAppChannel(ChannelType):
    """Messages kept in ``messaging_messages`` for the application's inbox."""

    type_name: ClassVar[str] = "in_app"
    default_address: ClassVar[str] = "customer"
    interaction_channel: ClassVar[str] = "app"
    interaction_kind: ClassVar[str] = "chat"

    def send(self, message: Outgoing) -> str | None:
        """Nothing to transmit: the stored row is the delivered message."""
        return None


__all__ = ["InAppChannel"]
