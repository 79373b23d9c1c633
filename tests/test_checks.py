"""crmcore.checks: the input checks plugins share; each refusal names its field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from crmcore import CRM, ValidationError, checks


def test_accepted_values_come_back_converted() -> None:
    assert checks.money("amount", "12.50") == Decimal("12.50")
    assert checks.currency("currency", "EUR") == "EUR"
    assert checks.day("due", "2026-02-28") == date(2026, 2, 28)
    assert checks.text("note", "  hi  ", 10) == "hi"
    assert checks.text("note", None, 10) is None
    assert checks.integer("days", 5, 1, 10) == 5
    assert checks.identifier("deal_id", 7) == 7
    assert checks.choice("kind", "call", ["call", "visit"]) == "call"


@pytest.mark.parametrize(
    ("check", "args", "field"),
    [
        (checks.money, ("amount", 1.5), "amount"),
        (checks.money, ("amount", "-1"), "amount"),
        (checks.money, ("amount", "x"), "amount"),
        (checks.currency, ("currency", "euro"), "currency"),
        (checks.day, ("due", "2026-02-30"), "due"),
        (checks.text, ("note", "", 10), "note"),
        (checks.text, ("note", "x" * 11, 10), "note"),
        (checks.integer, ("days", 0, 1, 10), "days"),
        (checks.integer, ("days", True, 1, 10), "days"),
        (checks.identifier, ("deal_id", "7"), "deal_id"),
        (checks.choice, ("kind", "fax", ["call", "visit"]), "kind"),
    ],
)
def test_refusals_name_the_field(check: Any, args: tuple[Any, ...], field: str) -> None:
    kwargs = {"required": True} if check is checks.text and args[1] == "" else {}
    with pytest.raises(ValidationError) as info:
        check(*args, **kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_moment_is_the_clock_or_a_past_aware_time(crm: CRM) -> None:
    with crm.unit_of_work() as uow:
        assert checks.moment(uow, None) == uow.now
        earlier = uow.now - timedelta(days=1)
        assert checks.moment(uow, earlier) == earlier
        with pytest.raises(ValidationError, match=r"at: .* is in the future"):
            checks.moment(uow, uow.now + timedelta(days=1))
        with pytest.raises(ValidationError, match="timezone-aware"):
            checks.moment(uow, datetime(2026, 1, 1))
    assert uow.now.tzinfo is UTC or uow.now.utcoffset() == timedelta(0)
