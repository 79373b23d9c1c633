"""What every channel type is: :class:`ChannelType`, the message it sends, how it fails.

A channel type is a class. It is built once per configured channel with the
channel's name and options (raising :class:`~crmcore.errors.ConfigError` for a
bad option), and sends messages outside any database transaction:
``open()`` before a batch, ``send(message)`` for each, ``close()`` after.
``send`` returns the provider's id of the message (or ``None``) or raises

* :class:`TemporaryFailure`: worth retrying (connection refused, time-out,
  SMTP 4xx, HTTP 5xx and 429);
* :class:`PermanentFailure`: never retried (SMTP 5xx, HTTP 4xx, a bad address);
* :class:`Bounced`: the recipient was refused (SMTP 5xx on RCPT TO).

Another plugin adds a type with the ``messaging_channel_types`` hook.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from attrs import frozen

from crmcore import Channel, InteractionKind
from crmcore.errors import ConfigError


class DeliveryError(Exception):
    """A message could not be delivered; ``reason`` is a short code stored with it."""

    reason: ClassVar[str] = "error"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason  # type: ignore[misc]


class TemporaryFailure(DeliveryError):
    """Worth retrying later (the message goes back to ``queued`` with a backoff)."""

    reason = "temporary"


class PermanentFailure(DeliveryError):
    """Never worth retrying (the message becomes ``failed``)."""

    reason = "permanent"


class Bounced(PermanentFailure):
    """The recipient was refused (the message becomes ``bounced``)."""

    reason = "bounced"


@frozen
class Outgoing:
    """One message as a channel sends it."""

    id: int
    token: str
    channel: str
    recipient: str
    purpose: str
    text: str
    subject: str | None = None
    html: str | None = None
    customer_id: int | None = None
    staff_user: str | None = None
    unsubscribe_url: str | None = None


class ChannelType:
    """Base class of channel types; subclasses set the class attributes and :meth:`send`."""

    #: The ``type`` name in configuration.
    type_name: ClassVar[str] = ""
    #: What a customer is addressed by unless the channel says otherwise (``email``, ``phone``,
    #: ``customer``).
    default_address: ClassVar[str] = "email"
    #: Core Channel and InteractionKind of the interaction a sent message records.
    interaction_channel: ClassVar[str] = "other"
    interaction_kind: ClassVar[str] = "chat"
    #: Option names this type accepts (beyond type, consent, address, address_attribute).
    options: ClassVar[tuple[str, ...]] = ()
    #: Options that must be given.
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, name: str, options: Mapping[str, Any], *, address: str | None = None
    ) -> None:
        self.name = name
        #: What this channel addresses customers by: ``email``, ``phone`` or ``customer``.
        self.address = address or self.default_address
        unknown = sorted(set(options) - set(self.options) - {"interaction_channel"})
        if unknown:
            raise ConfigError(
                f"config: plugins.messaging.channels.{name}: unknown option {unknown[0]!r} "
                f"for type {self.type_name!r} (allowed: {', '.join(self.options) or 'none'})"
            )
        missing = [o for o in self.required if o not in options]
        if missing:
            raise ConfigError(
                f"config: plugins.messaging.channels.{name}: option {missing[0]!r} is required "
                f"for type {self.type_name!r}"
            )
        self.settings: Mapping[str, Any] = dict(options)
        self.channel_of_interaction = str(
            options.get("interaction_channel", self.interaction_channel)
        )
        if self.interaction_kind not in {k.value for k in InteractionKind}:
            raise ConfigError(
                f"channel type {self.type_name!r}: interaction_kind {self.interaction_kind!r} "
                "is not one of core's interaction kinds"
            )
        if self.channel_of_interaction not in {c.value for c in Channel}:
            allowed = ", ".join(c.value for c in Channel)
            raise self.option_error(
                "interaction_channel",
                f"{self.channel_of_interaction!r} is not one of core's channels ({allowed})",
            )

    def option_error(self, option: str, problem: str) -> ConfigError:
        """A ConfigError naming this channel's option."""
        return ConfigError(f"config: plugins.messaging.channels.{self.name}.{option}: {problem}")

    def open(self) -> None:
        """Prepare for a batch (a connection may be opened lazily in :meth:`send`)."""

    def send(self, message: Outgoing) -> str | None:
        """Send one message; return the provider's id or ``None``; raise a DeliveryError."""
        raise NotImplementedError

    def close(self) -> None:
        """End a batch (close connections)."""


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``value`` with each ``${NAME}`` replaced by the environment variable (empty when unset)."""
    return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)


__all__ = [
    "Bounced",
    "ChannelType",
    "DeliveryError",
    "Outgoing",
    "PermanentFailure",
    "TemporaryFailure",
    "expand_env",
]
