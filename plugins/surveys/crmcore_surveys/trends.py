"""Trend buckets: calendar periods (UTC) of a day, week, month or quarter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmcore import ValidationError

#: Trend granularities.
GRANULARITIES = ("day", "week", "month", "quarter")

#: The most buckets a trend may have.
MAX_BUCKETS = 400


def _floor(moment: datetime, granularity: str) -> datetime:
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day.replace(month=(moment.month - 1) // 3 * 3 + 1, day=1)


def _next(moment: datetime, granularity: str) -> datetime:
    if granularity == "day":
        return moment + timedelta(days=1)
    if granularity == "week":
        return moment + timedelta(days=7)
    months = 1 if granularity == "month" else 3
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _bucket_label(start: datetime, granularity: str) -> str:
    if granularity == "month":
        return start.strftime("%Y-%m")
    if granularity == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return start.date().isoformat()


def trend_buckets(
    start: datetime, end: datetime, granularity: str
) -> list[tuple[str, datetime, datetime]]:
    """Calendar buckets (UTC) covering ``[start, end)``: (label, start, end) each.

    Raises ValidationError for an unknown granularity or more than 400 buckets.
    """
    if granularity not in GRANULARITIES:
        raise ValidationError(
            f"trend: {granularity!r} is not one of: {', '.join(GRANULARITIES)}", field="trend"
        )
    buckets = []
    moment = _floor(start.astimezone(UTC), granularity)
    while moment < end:
        following = _next(moment, granularity)
        buckets.append((_bucket_label(moment, granularity), moment, following))
        moment = following
        if len(buckets) > MAX_BUCKETS:
            raise ValidationError(
                f"trend: more than {MAX_BUCKETS} {granularity} buckets; choose a coarser one",
                field="trend",
            )
    return buckets
