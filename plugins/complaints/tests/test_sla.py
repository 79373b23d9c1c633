"""SLA clocks under a frozen clock: due times, pauses, reopenings, sweeps and business hours."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from crmcore_complaints import ComplaintService, State
from crmcore_complaints.workflow import RUNNING, TRANSITIONS
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import CRM, PluginError
from crmcore.hooks import hookimpl
from crmcore.testing import FrozenClock

H = 3600
BERLIN_WEEK = {
    "timezone": "Europe/Berlin",
    **{day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
}


def test_first_response_breach_is_strictly_after_the_target(
    service: ComplaintService, customer: int, clock: FrozenClock, recorder: Any
) -> None:
    """On target is met; one second later the sweep marks it, once, and fires the hook once."""
    opened = clock()
    cid = service.open({"customer_id": customer, "category": "other", "severity": "high"}).id
    clock.advance(hours=8)
    assert service.sweep() == []
    clock.advance(seconds=1)
    breaches = service.sweep(actor="sla-bot")
    assert breaches == [
        {
            "complaint_id": cid,
            "customer_id": customer,
            "severity": "high",
            "target": "first_response",
            "due_at": opened + timedelta(hours=8),
            "detected_at": clock(),
        }
    ]
    assert recorder.breaches == breaches and recorder.breach_calls == 1
    clock.advance(hours=100)
    second = service.sweep()
    assert [b["target"] for b in second] == ["resolution"]  # 48 h passed meanwhile
    assert service.sweep() == [] and recorder.breach_calls == 2
    complaint = service.get(cid)
    assert complaint.first_response_breached and complaint.resolution_breached
    assert [h.to_value for h in service.history(cid) if h.action == "breach"] == [
        "first_response",
        "resolution",
    ]
    assert service.list(breached=True).total == 1


def test_a_late_response_is_a_breach_found_by_the_next_sweep(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """A first response after its due time is breached even though no sweep ran in between."""
    opened = clock()
    cid = service.open({"customer_id": customer, "category": "other"}).id  # medium: 24 h
    clock.advance(hours=30)
    assert service.move(cid, "acknowledged").first_response_seconds == 30 * H
    clock.advance(hours=1)
    assert [(b["target"], b["due_at"]) for b in service.sweep()] == [
        ("first_response", opened + timedelta(hours=24))
    ]


def test_waiting_for_the_customer_pauses_the_resolution_clock(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """Paused time is not counted; resuming sets a new due time from the time left."""
    cid = service.open({"customer_id": customer, "category": "other"}).id  # 120 h
    clock.advance(hours=2)
    service.move(cid, "acknowledged")
    clock.advance(hours=1)
    paused = service.move(cid, "waiting_customer")
    assert paused.resolution_due_at is None and paused.resolution_accrued_seconds == 3 * H
    clock.advance(hours=500)
    assert service.sweep() == []
    resumed = service.move(cid, "in_progress")
    assert resumed.resolution_due_at == clock() + timedelta(hours=117)
    status = service.sla_status(cid)["resolution"]
    assert status["elapsed_seconds"] == 3 * H and status["running"] and not status["breached"]
    clock.advance(hours=117)
    assert service.sweep() == []
    clock.advance(seconds=1)
    assert [b["target"] for b in service.sweep()] == ["resolution"]


def test_reopen_resumes_the_resolution_clock(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """Time between resolution and reopening is not counted; resolution_seconds adds up."""
    cid = service.open({"customer_id": customer, "category": "other"}).id
    clock.advance(hours=10)
    assert service.resolve(cid, resolution="first try").resolution_seconds == 10 * H
    clock.advance(days=5)
    reopened = service.reopen(cid, note="still broken")
    assert reopened.reopen_count == 1
    assert reopened.resolution_due_at == clock() + timedelta(hours=110)
    clock.advance(hours=2)
    again = service.resolve(cid, resolution="second try")
    assert again.resolution_seconds == 12 * H and again.state is State.RESOLVED
    assert service.sweep() == []


def test_a_resolution_after_its_due_time_is_breached(
    service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """The due instant is kept when the clock stops late, and the sweep marks the breach."""
    opened = clock()
    cid = service.open({"customer_id": customer, "category": "other", "severity": "critical"}).id
    clock.advance(hours=1)
    service.move(cid, "in_progress")
    clock.advance(hours=30)  # critical: 24 h
    done = service.resolve(cid, resolution="late")
    assert done.resolution_due_at == opened + timedelta(hours=24)
    clock.advance(minutes=5)
    assert [(b["target"], b["due_at"]) for b in service.sweep()] == [
        ("resolution", opened + timedelta(hours=24))
    ]


def test_a_failing_escalation_rolls_the_sweep_back(
    open_crm: Callable[..., CRM], clock: FrozenClock
) -> None:
    """If a complaints_sla_breached implementation raises, nothing is marked."""

    class Failing:
        @hookimpl(optionalhook=True)
        def complaints_sla_breached(self, ctx: Any, breaches: Any) -> None:
            raise RuntimeError("pager down")

    crm = open_crm(extra=[Failing()])
    service = ComplaintService(crm)
    customer = crm.customers.create({"name": "Bo"}).id
    assert customer
    cid = service.open({"customer_id": customer, "category": "other"}).id
    clock.advance(days=30)
    with pytest.raises(PluginError, match="pager down"):
        service.sweep()
    assert not service.get(cid).first_response_breached
    with crm.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM complaints_breaches")).scalar_one() == 0


def test_business_hours_across_a_weekend(open_crm: Callable[..., CRM], clock: FrozenClock) -> None:
    """Friday 16:00 Berlin + 8 business hours (09-17) is due Monday 16:00; nights do not count."""
    crm = open_crm({"business_hours": BERLIN_WEEK})
    service = ComplaintService(crm)
    customer = crm.customers.create({"name": "Cy"}).id
    assert customer
    clock.set(datetime(2026, 1, 9, 15, 0, tzinfo=UTC))  # Fri 16:00 CET
    cid = service.open({"customer_id": customer, "category": "other", "severity": "high"}).id
    complaint = service.get(cid)
    assert complaint.first_response_due_at == datetime(2026, 1, 12, 15, 0, tzinfo=UTC)
    clock.set(datetime(2026, 1, 12, 7, 59, tzinfo=UTC))  # Mon 08:59 CET
    assert service.sla_status(cid)["first_response"]["elapsed_seconds"] == H
    clock.set(datetime(2026, 1, 12, 15, 0, tzinfo=UTC))
    assert service.sweep() == []
    clock.advance(seconds=1)
    assert [b["target"] for b in service.sweep()] == ["first_response"]


def test_a_target_used_up_at_closing_time_is_due_at_the_next_opening(
    open_crm: Callable[..., CRM], clock: FrozenClock
) -> None:
    """8 h from Monday 09:00 ends at 17:00: still met until Tuesday 09:00, breached after."""
    crm = open_crm({"business_hours": BERLIN_WEEK})
    service = ComplaintService(crm)
    customer = crm.customers.create({"name": "Di"}).id
    assert customer
    clock.set(datetime(2026, 1, 12, 8, 0, tzinfo=UTC))  # Mon 09:00 CET
    cid = service.open({"customer_id": customer, "category": "other", "severity": "high"}).id
    assert service.get(cid).first_response_due_at == datetime(2026, 1, 13, 8, 0, tzinfo=UTC)
    clock.set(datetime(2026, 1, 13, 7, 30, tzinfo=UTC))  # Tue 08:30: nothing counted overnight
    assert service.sweep() == []
    assert service.move(cid, "acknowledged").first_response_seconds == 8 * H
    clock.advance(days=1)
    assert service.sweep() == []


# --- property: stored clocks equal a reference replay of the history ----------------------

MOVES = st.lists(
    st.tuples(st.sampled_from(list(State)), st.integers(min_value=0, max_value=40 * 60)),
    min_size=1,
    max_size=12,
)


def reference_seconds(
    steps: list[tuple[datetime, State]], end: datetime, open_at: Callable[[datetime], bool]
) -> tuple[int | None, int]:
    """First-response and resolution seconds, replaying the states minute by minute.

    The first response is the first move (out of open, the only moves open allows);
    the resolution clock counts the minutes spent in running states.
    """

    def minutes(start: datetime, stop: datetime) -> int:
        count, minute = 0, start
        while minute < stop:
            count += open_at(minute)
            minute += timedelta(minutes=1)
        return count * 60

    first = minutes(steps[0][0], steps[1][0]) if len(steps) > 1 else None
    ends = [at for at, _ in steps[1:]] + [end]
    resolution = sum(
        minutes(at, stop) for (at, state), stop in zip(steps, ends, strict=True) if state in RUNNING
    )
    return first, resolution


def berlin_office(minute: datetime) -> bool:
    """Monday to Friday, 09:00-17:00 Berlin wall time."""
    local = minute.astimezone(ZoneInfo("Europe/Berlin"))
    return local.weekday() < 5 and 9 <= local.hour < 17


@pytest.mark.parametrize("hours", [None, BERLIN_WEEK])
def test_clocks_match_a_minute_by_minute_replay(
    open_crm: Callable[..., CRM], clock: FrozenClock, hours: dict[str, Any] | None
) -> None:
    """Any sequence of (possibly illegal) moves: the stored seconds equal a naive replay."""
    crm = open_crm({"business_hours": hours} if hours else None)
    service = ComplaintService(crm)
    customer = crm.customers.create({"name": "P"}).id
    assert customer

    @settings(max_examples=25, deadline=None)
    @given(moves=MOVES)
    def replay(moves: list[tuple[State, int]]) -> None:
        clock.set(datetime(2026, 3, 27, 14, 0, tzinfo=UTC))  # a Friday; DST starts on Sunday
        cid = service.open({"customer_id": customer, "category": "other"}).id
        steps = [(clock(), State.OPEN)]
        for target, minutes in moves:
            clock.advance(minutes=minutes)
            if target in TRANSITIONS[steps[-1][1]]:
                service.move(cid, target)
                steps.append((clock(), target))
        clock.advance(minutes=7)
        first, resolution = reference_seconds(
            steps, clock(), berlin_office if hours else (lambda _: True)
        )
        complaint = service.get(cid)
        assert complaint.first_response_seconds == first
        assert service.sla_status(cid)["resolution"]["elapsed_seconds"] == resolution
        if complaint.state in {State.RESOLVED, State.CLOSED}:
            assert complaint.resolution_seconds == resolution

    replay()
