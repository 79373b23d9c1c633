"""The unit of work: one transaction shared by a core operation and every plugin's reaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from attrs import frozen
from sqlalchemy import Connection

if TYPE_CHECKING:
    from crmcore.app import CRM


@frozen
class UnitOfWork:
    """What event, validation and privacy hooks receive as ``ctx``.

    ``connection`` is inside the open transaction: whatever a plugin writes
    through it commits or rolls back with the core operation. ``now`` is the
    clock's time at the start of the operation, ``actor`` who acts (free text
    chosen by the embedding application, ``None`` when unknown).

    Pass ``ctx=`` to any service method to make it join this transaction
    instead of opening its own.
    """

    connection: Connection
    crm: CRM
    now: datetime
    actor: str | None = None
