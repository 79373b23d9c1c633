"""Business hours: a weekly schedule in a time zone, and exact elapsed business time.

A :class:`Schedule` answers two questions, to the second:

* :meth:`Schedule.business_seconds`: how many business seconds lie in ``[start, end)``;
* :meth:`Schedule.deadline`: the *last* instant at which the business time
  counted from ``start`` is still at most ``seconds``. A target used up exactly
  at the end of an opening interval (17:00) stays met until the next interval
  opens (09:00 the next business day), because no business time passes in
  between; one used up inside an interval is due at that very instant.

So a clock started at ``start`` with a target of ``seconds`` is breached at
``now`` exactly when ``now > deadline(start, seconds)``, and a clock stopped
at ``t`` met its target exactly when ``t <= deadline(start, seconds)``.

Opening intervals are wall-clock times of the schedule's time zone
(``zoneinfo``), so they follow daylight saving time: 09:00-17:00 in
Europe/Berlin is 08:00-16:00 UTC in winter and 07:00-15:00 UTC in summer.
:data:`ALWAYS` is the schedule without business hours: every second counts.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import frozen

from crmcore.errors import ConfigError

#: Weekday keys of the ``business_hours`` config section, Monday first.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_INTERVAL = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

#: Safety stop for :meth:`Schedule.deadline`: a schedule open at least once a week
#: reaches any target well within this many days.
_MAX_DAYS = 366 * 50

Interval = tuple[int, int]


def _whole_seconds(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


@frozen
class Schedule:
    """Business hours: per weekday (Monday first) sorted ``(start, end)`` seconds of the day.

    ``zone`` is ``None`` for :data:`ALWAYS` (no business hours: every second
    counts). ``holidays`` are local dates on which the business is closed.
    """

    zone: ZoneInfo | None
    week: tuple[tuple[Interval, ...], ...] = ()
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        """Whether every second is business time (no schedule configured)."""
        return self.zone is None

    def _intervals_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals as UTC datetimes, in order, from the local day holding ``start``."""
        assert self.zone is not None
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(_MAX_DAYS):
            if day not in self.holidays:
                midnight = datetime.combine(day, time())
                for open_s, close_s in self.week[day.weekday()]:
                    begin = (midnight + timedelta(seconds=open_s)).replace(tzinfo=self.zone)
                    end = (midnight + timedelta(seconds=close_s)).replace(tzinfo=self.zone)
                    begin_utc, end_utc = begin.astimezone(UTC), end.astimezone(UTC)
                    if end_utc > begin_utc:  # a DST jump can swallow a short interval
                        yield begin_utc, end_utc
            day += timedelta(days=1)
        raise ConfigError("business_hours: the schedule has no opening hours")

    def business_seconds(self, start: datetime, end: datetime) -> int:
        """Business seconds in ``[start, end)`` (0 when ``end <= start``).

        Both are aware datetimes; fractions of a second are dropped first.
        """
        start, end = _whole_seconds(start), _whole_seconds(end)
        if end <= start:
            return 0
        if self.zone is None:
            return int((end - start).total_seconds())
        total = 0
        for begin, finish in self._intervals_from(start):
            if begin >= end:
                break
            overlap_start, overlap_end = max(begin, start), min(finish, end)
            if overlap_end > overlap_start:
                total += int((overlap_end - overlap_start).total_seconds())
        return total

    def deadline(self, start: datetime, seconds: int) -> datetime:
        """The last instant ``t`` with ``business_seconds(start, t) <= seconds`` (UTC).

        ``seconds`` must not be negative. Without business hours it is
        simply ``start + seconds``.
        """
        start = _whole_seconds(start)
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        if self.zone is None:
            return start + timedelta(seconds=seconds)
        remaining = seconds
        for begin, finish in self._intervals_from(start):
            if finish <= start:
                continue
            begin = max(begin, start)
            length = int((finish - begin).total_seconds())
            if remaining < length:  # used up inside this interval (or 0 left: now)
                return begin + timedelta(seconds=remaining)
            remaining -= length
        raise ConfigError("business_hours: the schedule has no opening hours")  # pragma: no cover


#: No business hours: every second counts.
ALWAYS = Schedule(zone=None)


def _parse_interval(text: str, where: str) -> Interval:
    match = _INTERVAL.match(text.strip())
    if match is None:
        raise ConfigError(f"config: {where}: expected HH:MM-HH:MM, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ConfigError(f"config: {where}: {text!r} is not a valid time range")
    begin, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= begin:
        raise ConfigError(f"config: {where}: {text!r} ends before it starts")
    return begin, end


def _day(entries: Sequence[str], where: str) -> tuple[Interval, ...]:
    intervals = sorted(_parse_interval(e, where) for e in entries)
    for (_, end), (begin, _) in itertools.pairwise(intervals):
        if begin < end:
            raise ConfigError(f"config: {where}: opening intervals overlap")
    return tuple(intervals)


def schedule_from_config(section: Mapping[str, Any] | None) -> Schedule:
    """Build the schedule of ``[plugins.complaints.business_hours]``; ``ALWAYS`` when absent.

    Raises :class:`~crmcore.errors.ConfigError` naming the field for an
    unknown time zone, a malformed or overlapping interval, a bad holiday
    date, or a week without any opening hours.
    """
    if not section:
        return ALWAYS
    prefix = "plugins.complaints.business_hours"
    name = str(section.get("timezone", "UTC"))
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"config: {prefix}.timezone: unknown time zone {name!r}") from None
    week = tuple(_day(section.get(key, ()), f"{prefix}.{key}") for key in WEEKDAYS)
    if not any(week):
        raise ConfigError(f"config: {prefix}: no opening hours on any weekday")
    holidays: set[date] = set()
    for index, text in enumerate(section.get("holidays", ())):
        try:
            holidays.add(date.fromisoformat(str(text)))
        except ValueError:
            raise ConfigError(
                f"config: {prefix}.holidays.{index}: not an ISO date: {text!r}"
            ) from None
    return Schedule(zone=zone, week=week, holidays=frozenset(holidays))
