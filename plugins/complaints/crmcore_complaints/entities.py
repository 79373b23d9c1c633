"""The values the complaints service returns: a complaint and the entries of its history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import field, frozen

from crmcore_complaints.sla import Clocks
from crmcore_complaints.workflow import Severity, State


def _state(value: Any) -> State:
    return State(value)


def _severity(value: Any) -> Severity:
    return Severity(value)


@frozen
class Complaint:
    """One complaint: what, who, where it stands in the workflow, and its SLA clocks.

    Durations are whole business seconds (see :mod:`crmcore_complaints.sla`).
    ``customer_id`` is ``None`` once the customer was erased.
    ``recurrence_of`` is the earlier complaint of the same customer in the
    same category within ``recurrence_days`` that this one repeats.
    """

    id: int
    customer_id: int | None
    category: str
    severity: Severity = field(converter=_severity)
    channel: str
    state: State = field(converter=_state)
    opened_at: datetime
    updated_at: datetime
    first_response_target_seconds: int
    resolution_target_seconds: int
    first_response_due_at: datetime
    source: str = "api"
    source_ref: str | None = None
    interaction_id: int | None = None
    reference: str | None = None
    description: str | None = None
    assignee: str | None = None
    first_response_at: datetime | None = None
    first_response_seconds: int | None = None
    resolution_accrued_seconds: int = 0
    resolution_running_since: datetime | None = None
    resolution_due_at: datetime | None = None
    resolution_seconds: int | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    root_cause: str | None = None
    rating: int | None = None
    rated_at: datetime | None = None
    reopen_count: int = 0
    recurrence_of: int | None = None
    first_response_breached: bool = False
    resolution_breached: bool = False

    @property
    def is_recurrence(self) -> bool:
        """Whether this complaint repeats an earlier one (same customer and category)."""
        return self.recurrence_of is not None

    @property
    def clocks(self) -> Clocks:
        """The SLA clock values, for :mod:`crmcore_complaints.sla`."""
        return Clocks(
            first_response_due_at=self.first_response_due_at,
            first_response_at=self.first_response_at,
            first_response_seconds=self.first_response_seconds,
            resolution_accrued_seconds=self.resolution_accrued_seconds,
            resolution_running_since=self.resolution_running_since,
            resolution_due_at=self.resolution_due_at,
            resolution_seconds=self.resolution_seconds,
        )

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Complaint:
        """Build a complaint from a ``complaints_cases`` row mapping."""
        return cls(**{k: v for k, v in row.items()})

    def to_json(self) -> dict[str, Any]:
        """The complaint as JSON-safe data (ISO 8601 timestamps, enum values)."""
        data: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            data[name] = value.isoformat() if isinstance(value, datetime) else value
        data["severity"] = self.severity.value
        data["state"] = self.state.value
        data["is_recurrence"] = self.is_recurrence
        return data


_FIELDS: tuple[str, ...] = tuple(a.name for a in Complaint.__attrs_attrs__)


@frozen
class HistoryEntry:
    """One change of a complaint: who did what, when.

    ``action`` is ``open``, ``move``, ``assign``, ``rate`` or ``breach``;
    ``from_value``/``to_value`` are states, assignees, ratings or the breached target.
    """

    id: int
    complaint_id: int
    at: datetime
    action: str
    actor: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    note: str | None = None
    details: dict[str, Any] = field(factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON-safe data."""
        return {
            "id": self.id,
            "complaint_id": self.complaint_id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "from_value": self.from_value,
            "to_value": self.to_value,
            "note": self.note,
            "details": self.details,
        }
