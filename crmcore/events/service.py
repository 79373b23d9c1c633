"""``crm.events``: reading the outbox, and the after-commit dispatch of new events."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING

from crmcore.access import Action
from crmcore.errors import ValidationError
from crmcore.events.model import Event
from crmcore.events.outbox import read_events, read_rows
from crmcore.model.event_types import check_event_type

if TYPE_CHECKING:
    from crmcore.app import CRM

_log = logging.getLogger("crmcore.events")


class EventService:
    """The outbox as a service. Get it as ``crm.events``; reading it needs the audit right."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    def iter(
        self,
        *,
        after: int = 0,
        type: str | None = None,
        customer_id: int | None = None,
    ) -> Iterator[Event]:
        """Every committed event after outbox position ``after``, in commit order, streamed.

        Admins and managers only (:attr:`~crmcore.access.Action.AUDIT`): the
        outbox spans every customer.
        """
        self._crm.access.check(Action.AUDIT)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValidationError(f"after: must be a position >= 0, got {after!r}", field="after")
        if type is not None:
            check_event_type(type)
        with self._crm.reading() as uow:
            yield from read_events(
                uow.connection, after=after, event_type=type, customer_id=customer_id
            )

    def list(
        self,
        *,
        after: int = 0,
        type: str | None = None,
        customer_id: int | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """At most ``limit`` events of :meth:`iter`."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise ValidationError(f"limit: must be 1 to 100000, got {limit!r}", field="limit")
        return list(islice(self.iter(after=after, type=type, customer_id=customer_id), limit))

    def dispatch(self, row_ids: Sequence[int]) -> None:
        """Call ``crm_events_committed`` for the outbox rows a unit of work just committed.

        Outside any transaction; nothing is read unless a plugin implements
        the hook. The events go in groups (one call per up to 50 outbox rows,
        in commit order), so a bulk import's events are never all in memory.
        A failing implementation is logged with its plugin's name and does not
        reach the caller (the operation has committed) nor the other plugins.
        For delivery that must not be lost, use the relay, which reads the outbox.
        """
        pm = self._crm.pm
        impls = pm.hook.crm_events_committed.get_hookimpls()
        if not impls:
            return
        plugins = {impl.plugin_name: impl.plugin for impl in impls}
        callers = [
            (
                impl.plugin_name,
                pm.subset_hook_caller(
                    "crm_events_committed",
                    remove_plugins=[p for n, p in plugins.items() if n != impl.plugin_name],
                ),
            )
            # pluggy calls the last implementation first; one call per plugin, so that one
            # failure does not keep the events from the others.
            for impl in reversed(impls)
        ]
        with self._crm.reading() as uow:
            for start in range(0, len(row_ids), 50):
                batch = list(read_rows(uow.connection, row_ids[start : start + 50]))
                for name, caller in callers:
                    try:
                        caller(crm=self._crm, events=batch)
                    except Exception:
                        _log.exception(
                            "plugin %r failed in crm_events_committed (the events are "
                            "committed; the relay still delivers them)",
                            name,
                        )
