"""The business-hours schedule on its own (no database): exact seconds, deadlines, config errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crmcore_complaints.business_hours import ALWAYS, schedule_from_config
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import ConfigError

WEEK = schedule_from_config(
    {
        "timezone": "Europe/Berlin",
        "mon": ["09:00-12:00", "13:00-17:00"],
        "tue": ["09:00-17:00"],
        "wed": ["09:00-17:00"],
        "thu": ["09:00-17:00"],
        "fri": ["09:00-15:00"],
        "holidays": ["2026-12-25"],
    }
)


def at(text: str) -> datetime:
    """A UTC instant from ISO text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_seconds_across_a_weekend_lunch_and_a_holiday() -> None:
    """Fri 14:00 to Mon 14:00 CET counts Friday 1 h and Monday 3 h + 1 h (lunch excluded)."""
    assert WEEK.business_seconds(at("2026-01-09T13:00"), at("2026-01-12T13:00")) == 5 * 3600
    # Thursday 2026-12-24 09:00 to Saturday: only the 24th counts, the 25th is a holiday
    assert WEEK.business_seconds(at("2026-12-24T08:00"), at("2026-12-26T08:00")) == 8 * 3600
    assert WEEK.business_seconds(at("2026-01-12T10:00"), at("2026-01-12T09:00")) == 0


def test_summer_time_moves_the_hours_in_utc() -> None:
    """09:00 Berlin is 08:00 UTC in winter and 07:00 UTC in summer."""
    assert WEEK.deadline(at("2026-01-13T00:00"), 0) == at("2026-01-13T08:00")
    assert WEEK.deadline(at("2026-07-14T00:00"), 0) == at("2026-07-14T07:00")


def test_deadline_at_closing_time_is_the_next_opening() -> None:
    """A target used up exactly at 17:00 is due at the next opening; inside, at that instant."""
    tuesday_9 = at("2026-01-13T08:00")
    assert WEEK.deadline(tuesday_9, 8 * 3600) == at("2026-01-14T08:00")
    assert WEEK.deadline(tuesday_9, 8 * 3600 - 1) == at("2026-01-13T15:59:59")
    assert ALWAYS.deadline(tuesday_9, 10) == tuesday_9 + timedelta(seconds=10)


INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@settings(max_examples=50, deadline=None)
@given(start=INSTANTS, seconds=st.integers(min_value=0, max_value=200 * 3600))
def test_deadline_is_the_last_instant_on_target(start: datetime, seconds: int) -> None:
    """business_seconds(start, deadline) == target, and one second later it is exceeded."""
    due = WEEK.deadline(start, seconds)
    assert WEEK.business_seconds(start, due) == seconds
    assert WEEK.business_seconds(start, due + timedelta(seconds=1)) == seconds + 1


@settings(max_examples=50, deadline=None)
@given(a=INSTANTS, b=INSTANTS, c=INSTANTS)
def test_seconds_add_up_over_consecutive_spans(a: datetime, b: datetime, c: datetime) -> None:
    """[a, b) + [b, c) == [a, c) for a <= b <= c."""
    a, b, c = sorted((a, b, c))
    assert WEEK.business_seconds(a, b) + WEEK.business_seconds(b, c) == WEEK.business_seconds(a, c)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"timezone": "Mars/Olympus", "mon": ["09:00-17:00"]}, "unknown time zone 'Mars/Olympus'"),
        ({"mon": ["17:00-09:00"]}, "business_hours.mon: '17:00-09:00' ends before it starts"),
        ({"tue": ["09:00-12:00", "11:00-13:00"]}, "business_hours.tue: opening intervals overlap"),
        ({"wed": ["25:00-26:00"]}, "is not a valid time range"),
        ({"timezone": "UTC"}, "no opening hours on any weekday"),
        ({"mon": ["09:00-17:00"], "holidays": ["someday"]}, "holidays.0: not an ISO date"),
    ],
)
def test_bad_schedules_are_config_errors(section: dict[str, object], message: str) -> None:
    """Each problem is a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=message):
        schedule_from_config(section)
