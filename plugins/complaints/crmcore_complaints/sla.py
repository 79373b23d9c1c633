"""SLA clocks of one complaint: pure functions from moves to clock values, exact to the second.

Every complaint has two clocks, measured in business seconds of the
configured :class:`~crmcore_complaints.business_hours.Schedule` (every second
when no business hours are configured):

* **first response**: from ``opened_at`` to the first move out of ``open``.
  It never pauses. Its deadline ``first_response_due_at`` is fixed at the
  opening; it is met when the first response comes at or before it, i.e. when
  ``first_response_seconds <= first_response_target``.
* **resolution**: accrues while the complaint is in a running state (open,
  acknowledged, in_progress, reopened), pauses in ``waiting_customer`` and
  stops in ``resolved``/``closed``; a reopening resumes it from the time
  already accrued. ``resolution_seconds`` is the accrued time at the latest
  resolution. It is met when that time is at most the target.

A clock is **breached** when its counted time exceeds its target (strictly:
exactly on target is met). ``resolution_due_at`` is the last instant at which
the running clock is still on target (recomputed whenever the clock resumes,
``None`` while paused or stopped before its target); a clock still running
after its due instant is breached, so the sweep finds breaches with one
indexed comparison. When a clock stops or pauses *after* its due instant the
due instant is kept, and the sweep marks that breach too.
"""

from __future__ import annotations

from datetime import datetime

import attrs
from attrs import frozen

from crmcore_complaints.business_hours import Schedule
from crmcore_complaints.workflow import FIRST_RESPONSE, RUNNING, SETTLED, State


@frozen
class Clocks:
    """The SLA clock columns of one complaint (see the module docstring)."""

    first_response_due_at: datetime
    first_response_at: datetime | None = None
    first_response_seconds: int | None = None
    resolution_accrued_seconds: int = 0
    resolution_running_since: datetime | None = None
    resolution_due_at: datetime | None = None
    resolution_seconds: int | None = None


def start(
    schedule: Schedule, opened_at: datetime, first_response_target: int, resolution_target: int
) -> Clocks:
    """The clocks of a complaint opened at ``opened_at``: both running."""
    return Clocks(
        first_response_due_at=schedule.deadline(opened_at, first_response_target),
        resolution_running_since=opened_at,
        resolution_due_at=schedule.deadline(opened_at, resolution_target),
    )


def apply_move(
    schedule: Schedule,
    clocks: Clocks,
    *,
    opened_at: datetime,
    from_state: State,
    to_state: State,
    at: datetime,
    resolution_target: int,
) -> Clocks:
    """The clocks after the move ``from_state -> to_state`` at ``at`` (already allowed)."""
    changes: dict[str, object] = {}
    if from_state is State.OPEN and to_state in FIRST_RESPONSE and clocks.first_response_at is None:
        changes["first_response_at"] = at
        changes["first_response_seconds"] = schedule.business_seconds(opened_at, at)
    accrued = clocks.resolution_accrued_seconds
    due = clocks.resolution_due_at
    was_running = from_state in RUNNING and clocks.resolution_running_since is not None
    if was_running and to_state not in RUNNING:
        assert clocks.resolution_running_since is not None
        accrued += schedule.business_seconds(clocks.resolution_running_since, at)
        changes["resolution_accrued_seconds"] = accrued
        changes["resolution_running_since"] = None
        if accrued <= resolution_target:
            due = None  # on target when it stopped: nothing is due while it stands still
    elif not was_running and to_state in RUNNING:
        changes["resolution_running_since"] = at
        remaining = resolution_target - accrued
        if remaining >= 0:
            due = schedule.deadline(at, remaining)
        # else: breached before; keep the instant it was due (still set).
    changes["resolution_due_at"] = due
    if to_state in SETTLED and from_state not in SETTLED:
        changes["resolution_seconds"] = accrued
    return attrs.evolve(clocks, **changes)  # type: ignore[arg-type]


def resolution_elapsed(schedule: Schedule, clocks: Clocks, now: datetime) -> int:
    """Business seconds the resolution clock has counted by ``now``."""
    running = clocks.resolution_running_since
    extra = 0 if running is None else schedule.business_seconds(running, now)
    return clocks.resolution_accrued_seconds + extra


def first_response_elapsed(
    schedule: Schedule, clocks: Clocks, opened_at: datetime, now: datetime
) -> int:
    """Business seconds the first-response clock has counted by ``now`` (or until it stopped)."""
    if clocks.first_response_seconds is not None:
        return clocks.first_response_seconds
    return schedule.business_seconds(opened_at, now)
