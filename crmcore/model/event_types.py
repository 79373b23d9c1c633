"""Event types and the counting of pending events: what the unit of work checks when one is emitted.

The outbox and the relay (:mod:`crmcore.events`) build on these; they live in
the model so that the unit of work can check an event without depending on
the outbox.
"""

from __future__ import annotations

import re
from typing import Any

from crmcore.errors import ValidationError

#: Pending events written to the outbox as soon as a unit of work holds this many.
FLUSH_ITEMS = 1000


def item_count(items: Any) -> int:
    """How many events an outbox row's ``items`` (dict list or field table) holds."""
    return len(items["rows"]) if isinstance(items, dict) else len(items)


_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def check_event_type(event_type: object) -> str:
    """Return ``event_type`` if it is ``<namespace>.<name>`` in lower case; else ValidationError."""
    if not isinstance(event_type, str) or len(event_type) > 100 or not _TYPE.match(event_type):
        raise ValidationError(
            f"event type: {event_type!r} must look like 'plugin.something_happened' "
            "(lower case, dot-separated, at most 100 characters)",
            field="type",
            value=event_type,
        )
    return event_type
