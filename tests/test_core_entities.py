"""Entities survive dict -> entity -> dict unchanged, and bad dicts are refused by field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore import (
    Channel,
    Consent,
    Customer,
    CustomerKind,
    Direction,
    Gender,
    Interaction,
    InteractionKind,
    Item,
    LifecycleEvent,
    Stage,
    ValidationError,
    ValidationErrors,
    from_dict,
    to_dict,
)

aware = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)
money = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
text = st.text(max_size=40)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)

customers = st.builds(
    Customer,
    name=st.text(min_size=1, max_size=60),
    kind=st.sampled_from(CustomerKind),
    id=st.none() | st.integers(1, 2**62),
    email=st.none() | st.emails(),
    phone=st.none() | text,
    gender=st.none() | st.sampled_from(Gender),
    birth_date=st.none() | st.dates(min_value=date(1900, 1, 1)),
    registered_capital=st.none() | money,
    size=st.none() | st.integers(0, 10**6),
    stage=st.sampled_from(Stage),
    source_channel=st.none() | st.sampled_from(Channel),
    tags=st.lists(st.text(min_size=1, max_size=10), max_size=4),
    attributes=st.dictionaries(text, json_value, max_size=4),
    consent=st.builds(Consent),
    created_at=st.none() | aware,
)
interactions = st.builds(
    Interaction,
    customer_id=st.integers(1, 2**62),
    kind=st.sampled_from(InteractionKind),
    occurred_at=aware,
    channel=st.sampled_from(Channel),
    direction=st.sampled_from(Direction),
    amount=st.none() | money,
    currency=st.none() | st.sampled_from(["EUR", "USD", "JPY"]),
    items=st.lists(
        st.builds(Item, sku=text, quantity=money, unit_price=st.none() | money), max_size=3
    ).map(tuple),
    payload=st.dictionaries(text, json_value, max_size=3),
    response_seconds=st.none() | st.floats(0, 1e6, allow_nan=False),
)
events = st.builds(
    LifecycleEvent,
    customer_id=st.integers(1, 2**62),
    to_stage=st.sampled_from(Stage),
    at=aware,
    from_stage=st.none() | st.sampled_from(Stage),
    reason=st.none() | text,
)


@pytest.mark.parametrize(
    ("strategy", "cls"),
    [(customers, Customer), (interactions, Interaction), (events, LifecycleEvent)],
)
@given(data=st.data())
def test_round_trip_through_json(
    strategy: st.SearchStrategy[object], cls: type, data: st.DataObject
) -> None:
    entity = data.draw(strategy)
    as_dict = to_dict(entity)
    # JSON-safe: survives a real JSON encode/decode unchanged.
    decoded = json.loads(json.dumps(as_dict))
    assert decoded == as_dict
    rebuilt = from_dict(decoded, cls)
    assert rebuilt == entity
    assert to_dict(rebuilt) == as_dict


def test_decimal_is_exact_string_and_enum_is_value() -> None:
    data = to_dict(
        Interaction(
            customer_id=1,
            kind="purchase",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            amount=Decimal("0.10"),
            currency="EUR",
        )
    )
    assert data["amount"] == "0.10"
    assert data["kind"] == "purchase" and type(data["kind"]) is str


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"name": 3}, "name", "expected a string"),
        ({"name": "x", "kind": "robot"}, "kind", "'robot' is not one of: person, organization"),
        ({"name": "x", "created_at": "2026-01-01T00:00:00"}, "created_at", "time zone"),
        ({"name": "x", "birth_date": "2026-02-30"}, "birth_date", "day is out of range"),
        ({"name": "x", "size": True}, "size", "expected an integer"),
        ({"name": "x", "registered_capital": 1.5}, "registered_capital", "decimal"),
        ({"name": "x", "consent": {"surveys": "maybe"}}, "consent.surveys", "true or false"),
        ({"name": "x", "colour": "red"}, "colour", "unknown field"),
        ({"kind": "person"}, "name", "required"),
    ],
)
def test_bad_customer_dicts_name_the_field(
    data: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(data, Customer)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(ValidationErrors) as info:
        from_dict({"name": "x", "kind": "robot", "size": "many"}, Customer)
    assert {e.field for e in info.value.errors} == {"kind", "size"}


def test_item_errors_carry_their_index() -> None:
    with pytest.raises(ValidationError) as info:
        from_dict(
            {
                "customer_id": 1,
                "kind": "purchase",
                "occurred_at": "2026-01-01T00:00:00+00:00",
                "items": [{"sku": "a"}, {"sku": "b", "quantity": "lots"}],
            },
            Interaction,
        )
    assert info.value.field == "items.1.quantity"


def test_entity_constructor_coerces_and_refuses_enum_values() -> None:
    assert Customer(name="x", stage="loyal").stage is Stage.LOYAL
    with pytest.raises(ValueError, match="not one of"):
        Customer(name="x", stage="vip")
