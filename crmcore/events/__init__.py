"""Domain events after commit: the transactional outbox, the after-commit hook, the relay.

Every unit of work collects the events of what it did (:meth:`UnitOfWork.emit
<crmcore.unit_of_work.UnitOfWork.emit>`); core emits its own, plugins theirs.
Just before the transaction commits they are written to the ``crm_events``
outbox table, in the same transaction: an event exists exactly when what it
reports committed. After the commit, ``crm_events_committed(crm, events)``
runs outside the transaction, and ``crm events relay`` publishes the outbox
to RabbitMQ at least once, in commit order, resuming where it stopped.

See ``docs/events.md`` for the event types, their data and the guarantees.
"""

from __future__ import annotations

from crmcore.events.model import CORE_EVENT_TYPES, Event
from crmcore.events.service import EventService
from crmcore.model.event_types import check_event_type

__all__ = ["CORE_EVENT_TYPES", "Event", "EventService", "check_event_type"]
