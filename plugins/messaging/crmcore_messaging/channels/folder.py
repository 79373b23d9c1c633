"""The ``folder`` channel: each message written as a file into a directory (no server needed).

Option ``path`` (required; created when missing). A channel addressing
customers by email writes ``<id>-<token>.eml`` (the email the ``smtp``
channel would send, ``from`` option as sender, default
``crm@localhost``); any other writes ``<id>-<token>.json`` with the
recipient, subject, text, HTML, channel, purpose and token. Files appear
atomically (written under a temporary name, then renamed). The demo uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from crmcore_messaging.channels.base import ChannelType, Outgoing, TemporaryFailure
from crmcore_messaging.channels.smtp import build_email


class FolderChannel(ChannelType):
    """Messages as files (see the module docstring)."""

    type_name: ClassVar[str] = "folder"
    default_address: ClassVar[str] = "email"
    interaction_channel: ClassVar[str] = "email"
    interaction_kind: ClassVar[str] = "email"
    options: ClassVar[tuple[str, ...]] = ("path", "from")
    required: ClassVar[tuple[str, ...]] = ("path",)

    def __init__(
        self, name: str, options: Mapping[str, Any], *, address: str | None = None
    ) -> None:
        super().__init__(name, options, address=address)
        self.path = Path(str(options["path"])).expanduser()
        self.sender = str(options.get("from", "crm@localhost"))
        if self.address != "email" and "interaction_channel" not in options:
            self.channel_of_interaction = "sms" if self.address == "phone" else "app"

    def file_of(self, message: Outgoing) -> Path:
        """Where ``message`` is written."""
        suffix = ".eml" if self.address == "email" else ".json"
        return self.path / f"{message.id}-{message.token}{suffix}"

    def send(self, message: Outgoing) -> str | None:
        """Write the file; return its name."""
        target = self.file_of(message)
        if target.suffix == ".eml":
            data = build_email(message, self.sender).as_bytes()
        else:
            document = {
                "id": message.id,
                "token": message.token,
                "channel": message.channel,
                "purpose": message.purpose,
                "to": message.recipient,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "unsubscribe_url": message.unsubscribe_url,
            }
            data = json.dumps(document, ensure_ascii=False, indent=2).encode()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.part")
            partial.write_bytes(data)
            os.replace(partial, target)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {target}: {exc}", reason="io") from None
        return target.name


__all__ = ["FolderChannel"]
