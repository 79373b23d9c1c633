"""The complaint workflow: states, the allowed moves between them, and what each does to the SLA.

Allowed moves (:data:`TRANSITIONS`):

* ``open`` -> ``acknowledged``, ``in_progress``, ``resolved``
* ``acknowledged`` -> ``in_progress``, ``waiting_customer``, ``resolved``
* ``in_progress`` -> ``waiting_customer``, ``resolved``
* ``waiting_customer`` -> ``in_progress``, ``resolved``
* ``resolved`` -> ``closed``, ``reopened``
* ``closed`` -> ``reopened``
* ``reopened`` -> ``in_progress``, ``waiting_customer``, ``resolved``

Any other move (including to the current state) is a
:class:`~crmcore.errors.TransitionError` and changes nothing.

SLA clocks (see :mod:`crmcore_complaints.sla`):

* the **first-response** clock runs from the opening until the first move out
  of ``open`` (to ``acknowledged``, ``in_progress`` or ``resolved``);
* the **resolution** clock runs in :data:`RUNNING` states, is paused in
  ``waiting_customer`` and stopped in ``resolved`` and ``closed``; a reopening
  resumes it where it stopped.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from crmcore.errors import TransitionError, ValidationError


class State(enum.StrEnum):
    """Where a complaint is in its handling."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


class Severity(enum.StrEnum):
    """How bad a complaint is; each severity has its own SLA targets."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


#: Every allowed move, from a state to the states it may go to.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.OPEN: frozenset({State.ACKNOWLEDGED, State.IN_PROGRESS, State.RESOLVED}),
    State.ACKNOWLEDGED: frozenset({State.IN_PROGRESS, State.WAITING_CUSTOMER, State.RESOLVED}),
    State.IN_PROGRESS: frozenset({State.WAITING_CUSTOMER, State.RESOLVED}),
    State.WAITING_CUSTOMER: frozenset({State.IN_PROGRESS, State.RESOLVED}),
    State.RESOLVED: frozenset({State.CLOSED, State.REOPENED}),
    State.CLOSED: frozenset({State.REOPENED}),
    State.REOPENED: frozenset({State.IN_PROGRESS, State.WAITING_CUSTOMER, State.RESOLVED}),
}

#: States in which the resolution clock runs.
RUNNING: frozenset[State] = frozenset(
    {State.OPEN, State.ACKNOWLEDGED, State.IN_PROGRESS, State.REOPENED}
)
#: The state that pauses the resolution clock.
PAUSED: frozenset[State] = frozenset({State.WAITING_CUSTOMER})
#: States in which the complaint is settled (the resolution clock is stopped).
SETTLED: frozenset[State] = frozenset({State.RESOLVED, State.CLOSED})
#: States of complaints still being handled (running or paused).
ACTIVE: frozenset[State] = RUNNING | PAUSED
#: Moves out of ``open`` to these states are the first response.
FIRST_RESPONSE: frozenset[State] = frozenset(
    {State.ACKNOWLEDGED, State.IN_PROGRESS, State.RESOLVED}
)


def parse_state(value: State | str) -> State:
    """``value`` as a :class:`State`; ValidationError (field ``state``) listing the states."""
    try:
        return State(value)
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        raise ValidationError(
            f"state: {value!r} is not one of: {allowed}", field="state", value=value
        ) from None


def parse_severity(value: Severity | str) -> Severity:
    """``value`` as a :class:`Severity`; ValidationError (field ``severity``) otherwise."""
    try:
        return Severity(value)
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise ValidationError(
            f"severity: {value!r} is not one of: {allowed}", field="severity", value=value
        ) from None


def check_transition(complaint_id: int, current: State, target: State) -> None:
    """Raise :class:`~crmcore.errors.TransitionError` unless ``current -> target`` is allowed."""
    if target == current:
        raise TransitionError(
            f"state: complaint {complaint_id} is already {current.value}",
            field="state",
            value=target.value,
        )
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
        raise TransitionError(
            f"state: complaint {complaint_id} cannot move from {current.value} to "
            f"{target.value} (allowed from {current.value}: {allowed})",
            field="state",
            value=target.value,
        )
