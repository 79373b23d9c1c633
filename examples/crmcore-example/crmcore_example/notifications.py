"""What the example does after a commit: remember the last committed events.

A real plugin would notify another system here (a webhook, a chat message):
``crm_events_committed`` runs only once the transaction has committed, so
nothing is announced that could still roll back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from crmcore import Event

#: The (type, customer id) of the last 100 committed events this process saw.
RECENT: deque[tuple[str, int | None]] = deque(maxlen=100)


def note_committed(events: Sequence[Event]) -> None:
    """Remember committed events, most recent last."""
    RECENT.extend((event.type, event.customer_id) for event in events)
