"""Small value types that hooks exchange: report periods and churn signals."""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

from crmcore.errors import ValidationError


def _check_weight(_instance: object, _attribute: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"weight: must be between 0 and 1, got {value}", field="weight")


@frozen
class Period:
    """A half-open time interval ``[start, end)`` with aware datetimes."""

    start: datetime
    end: datetime

    def __attrs_post_init__(self) -> None:
        """Refuse naive or inverted intervals."""
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValidationError("period: start and end must be timezone-aware", field="period")
        if self.end <= self.start:
            raise ValidationError(
                f"period: end {self.end.isoformat()} is not after start {self.start.isoformat()}",
                field="period",
            )

    def previous(self) -> Period:
        """The period of the same length that ends where this one starts."""
        return Period(self.start - (self.end - self.start), self.start)


@frozen
class ChurnSignal:
    """Evidence that a customer may be drifting away, from one source (a plugin)."""

    customer_id: int
    source: str
    reason: str
    weight: float = field(default=0.5, validator=_check_weight)
