"""Customer service on both backends: create, duplicates, search, update, delete, custom fields."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crmcore import (
    CRM,
    Config,
    ConflictError,
    Customer,
    NotFoundError,
    Stage,
    ValidationError,
)
from crmcore.storage.tables import customer_tags, customers, lifecycle_events
from crmcore.testing import FrozenClock


def count(crm: CRM, table=customers) -> int:  # type: ignore[no-untyped-def]
    with crm.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_create_and_get(crm: CRM, clock: FrozenClock) -> None:
    created = crm.customers.create(
        {
            "name": " Ada Lovelace ",
            "email": "Ada@Example.com",
            "phone": "+44 20 7946 0958",
            "tags": ["vip", "b2c", "vip"],
            "registered_capital": "0.1",
            "attributes": {"level": 3},
        }
    )
    assert created.id is not None
    assert created.name == "Ada Lovelace"
    assert created.tags == ("b2c", "vip")
    assert created.created_at == clock.now
    fetched = crm.customers.get(created.id)
    assert fetched == created
    assert fetched.registered_capital == Decimal("0.1")
    assert crm.lifecycle.history(created.id)[0].to_stage is Stage.PROSPECT


def test_get_unknown_is_not_found(crm: CRM) -> None:
    with pytest.raises(NotFoundError, match="customer 42 does not exist"):
        crm.customers.get(42)


@pytest.mark.parametrize(
    ("first", "second", "label"),
    [
        (
            {"name": "A", "email": "ada@example.com"},
            {"name": "B", "email": " ADA@example.COM "},
            "email",
        ),
        (
            {"name": "A", "phone": "+1 (555) 010-2030"},
            {"name": "B", "phone": "+1.555.010.2030"},
            "phone",
        ),
        (
            {"name": "ACME, Inc.", "kind": "organization"},
            {"name": "Acme", "kind": "organization"},
            "organisation name",
        ),
        (
            {"name": "Buyer", "kind": "organization", "company_name": "Globex GmbH"},
            {"name": "globex", "kind": "organization"},
            "organisation name",
        ),
    ],
)
def test_duplicate_is_conflict_naming_existing_id(
    crm: CRM, first: dict[str, str], second: dict[str, str], label: str
) -> None:
    existing = crm.customers.create(first)
    with pytest.raises(ConflictError) as info:
        crm.customers.create(second)
    assert info.value.existing_id == existing.id
    assert f"already belongs to customer {existing.id}" in str(info.value)
    assert label in str(info.value)
    assert count(crm) == 1


def test_people_with_same_name_are_not_duplicates(crm: CRM) -> None:
    crm.customers.create({"name": "John Smith"})
    crm.customers.create({"name": "John Smith"})
    assert count(crm) == 2


def test_duplicate_inside_one_batch_stores_nothing(crm: CRM) -> None:
    with pytest.raises(ConflictError, match=r"customers\[2\].*customers\[0\]"):
        crm.customers.create_many(
            [{"name": "A", "email": "a@x.org"}, {"name": "B"}, {"name": "C", "email": "A@X.org"}]
        )
    assert count(crm) == 0


def test_batch_is_all_or_nothing(crm: CRM) -> None:
    rows = [{"name": f"c{i}", "email": f"c{i}@x.org"} for i in range(25)]
    rows[17]["email"] = "not-an-email"
    with pytest.raises(ValidationError, match=r"customers\[17\]: email: not a valid email"):
        crm.customers.create_many(rows, batch_size=10)
    assert count(crm) == 0
    assert count(crm, lifecycle_events) == 0


def test_batch_with_reject_handler_keeps_good_rows(crm: CRM) -> None:
    crm.customers.create({"name": "old", "email": "old@x.org"})
    rejected: list[tuple[int, str]] = []
    stored = crm.customers.create_many(
        [
            {"name": "a"},
            {"name": ""},
            {"name": "b", "email": "OLD@x.org"},
            {"name": "c", "size": -1},
            {"name": "d"},
        ],
        on_reject=lambda pos, item, exc: rejected.append((pos, str(exc))),
        batch_size=2,
    )
    assert [c.name for c in stored] == ["a", "d"]
    rejected.sort()
    assert [pos for pos, _ in rejected] == [1, 2, 3]
    assert "name: must not be empty" in rejected[0][1]
    assert "already belongs to customer" in rejected[1][1]
    assert count(crm) == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 301}, "name"),
        ({"name": "x", "email": "no-at-sign"}, "email"),
        ({"name": "x", "phone": "call me"}, "phone"),
        ({"name": "x", "phone": "123"}, "phone"),
        ({"name": "x", "birth_date": "2099-01-01"}, "birth_date"),
        ({"name": "x", "registered_capital": "1.00001"}, "registered_capital"),
        ({"name": "x", "registered_capital": "-5"}, "registered_capital"),
    ],
)
def test_bad_customers_are_refused_by_field(crm: CRM, data: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        crm.customers.create(data)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    assert count(crm) == 0


ATTRIBUTES_SCHEMA = {
    "type": "object",
    "properties": {
        "vip_level": {"type": "integer", "minimum": 1, "maximum": 5},
        "segment": {"type": "string", "enum": ["retail", "b2b"]},
    },
    "additionalProperties": False,
}


@pytest.fixture
def crm_with_schema(db_url: str, clock: FrozenClock) -> CRM:
    config = Config(database_url=db_url, attributes_schema=ATTRIBUTES_SCHEMA)
    return CRM.open(config, discover=False, upgrade=True, clock=clock)


def test_custom_fields_validated_against_schema(crm_with_schema: CRM) -> None:
    crm = crm_with_schema
    ok = crm.customers.create({"name": "a", "attributes": {"vip_level": 2, "segment": "b2b"}})
    assert ok.attributes == {"vip_level": 2, "segment": "b2b"}
    with pytest.raises(ValidationError) as info:
        crm.customers.create({"name": "b", "attributes": {"vip_level": 9}})
    assert info.value.field == "attributes.vip_level"
    assert "9 is greater than the maximum of 5" in str(info.value)
    with pytest.raises(ValidationError, match="attributes: Additional properties"):
        crm.customers.create({"name": "c", "attributes": {"colour": "red"}})
    with pytest.raises(ValidationError, match=r"attributes\.segment"):
        crm.customers.update(ok.id, {"attributes": {"segment": "gov"}})  # type: ignore[arg-type]
    assert crm.customers.get(ok.id).attributes["segment"] == "b2b"  # type: ignore[arg-type]
    crm.close()


def test_update_partial_with_change_set(crm: CRM, clock: FrozenClock) -> None:
    c = crm.customers.create(
        {"name": "Ada", "email": "ada@x.org", "tags": ["a"], "attributes": {"k": 1, "j": 2}}
    )
    assert c.id is not None
    clock.advance(hours=1)
    change = crm.customers.update(
        c.id,
        {
            "owner": "bob",
            "tags": ["b"],
            "consent": {"surveys": True},
            "attributes": {"k": None, "n": 3},
        },
    )
    assert set(change.changed) == {"owner", "tags", "consent", "attributes"}
    assert change.before == c
    after = crm.customers.get(c.id)
    assert after == change.after
    assert after.owner == "bob" and after.tags == ("b",)
    assert after.consent.surveys is True and after.consent.marketing_email is False
    assert after.attributes == {"j": 2, "n": 3}
    assert after.updated_at == clock.now and after.created_at == c.created_at
    assert crm.customers.search(tag="a").total == 0


def test_update_refuses_bad_input_and_changes_nothing(crm: CRM) -> None:
    a = crm.customers.create({"name": "A", "email": "a@x.org"})
    b = crm.customers.create({"name": "B", "email": "b@x.org"})
    assert a.id is not None and b.id is not None
    with pytest.raises(ConflictError) as info:
        crm.customers.update(b.id, {"email": "A@x.org"})
    assert info.value.existing_id == a.id
    with pytest.raises(ValidationError, match=r"stage: change it with crm\.lifecycle\.move"):
        crm.customers.update(b.id, {"stage": "loyal"})
    with pytest.raises(ValidationError, match="colour: not a field"):
        crm.customers.update(b.id, {"colour": "red"})
    with pytest.raises(ValidationError, match="email"):
        crm.customers.update(b.id, {"email": "broken"})
    with pytest.raises(NotFoundError):
        crm.customers.update(999, {"name": "x"})
    assert crm.customers.get(b.id) == b


def test_update_keeps_own_email(crm: CRM) -> None:
    c = crm.customers.create({"name": "A", "email": "a@x.org"})
    assert c.id is not None
    change = crm.customers.update(c.id, {"email": "A@X.org", "name": "A2"})
    assert change.after.email == "A@X.org"


def test_delete_cascades(crm: CRM) -> None:
    c = crm.customers.create({"name": "A", "tags": ["t"]})
    assert c.id is not None
    crm.interactions.record(
        {"customer_id": c.id, "kind": "call", "occurred_at": "2026-01-01T00:00:00+00:00"}
    )
    deleted = crm.customers.delete(c.id)
    assert deleted.name == "A"
    assert count(crm) == 0 and count(crm, customer_tags) == 0 and count(crm, lifecycle_events) == 0
    with pytest.raises(NotFoundError):
        crm.customers.delete(c.id)


@pytest.fixture
def populated(crm: CRM) -> CRM:
    crm.customers.create_many(
        [
            {
                "name": "Zoë Álvarez",
                "email": "zoe@x.org",
                "owner": "alice",
                "tags": ["vip"],
                "attributes": {"tier": "gold", "score": 7, "beta": True},
            },
            {
                "name": "Bob Stone",
                "phone": "+44 20 1234 5678",
                "owner": "bob",
                "tags": ["vip", "b2c"],
                "attributes": {"tier": "silver", "score": 3},
            },
            {
                "name": "Globex",
                "kind": "organization",
                "owner": "alice",
                "stage": "active",
                "attributes": {"tier": "gold"},
            },
            {"name": "100%_Real Ltd", "kind": "organization", "owner": "carol"},
        ]
    )
    return crm


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({"name": "zoe"}, ["Zoë Álvarez"]),
        ({"name": "ALVAR"}, ["Zoë Álvarez"]),
        ({"name": "%"}, ["100%_Real Ltd"]),
        ({"name": "_"}, ["100%_Real Ltd"]),
        ({"email": " ZOE@x.org"}, ["Zoë Álvarez"]),
        ({"phone": "0044 20 1234 5678"}, ["Bob Stone"]),
        ({"tag": "vip"}, ["Zoë Álvarez", "Bob Stone"]),
        ({"tag": "vip", "owner": "bob"}, ["Bob Stone"]),
        ({"stage": "active"}, ["Globex"]),
        ({"kind": "organization"}, ["Globex", "100%_Real Ltd"]),
        ({"attributes": {"tier": "gold"}}, ["Zoë Álvarez", "Globex"]),
        ({"attributes": {"score": 3}}, ["Bob Stone"]),
        ({"attributes": {"beta": True}}, ["Zoë Álvarez"]),
        ({"attributes": {"tier": "gold"}, "kind": "person"}, ["Zoë Álvarez"]),
    ],
)
def test_search_filters(populated: CRM, filters: dict[str, object], names: list[str]) -> None:
    page = populated.customers.search(**filters)  # type: ignore[arg-type]
    assert [c.name for c in page.items] == names
    assert page.total == len(names)


def test_search_sorting_and_pagination(populated: CRM) -> None:
    by_name = populated.customers.search(sort="name")
    assert [c.name for c in by_name.items] == [
        "100%_Real Ltd",
        "Bob Stone",
        "Globex",
        "Zoë Álvarez",
    ]
    desc = populated.customers.search(sort="-name", limit=3, offset=1)
    assert [c.name for c in desc.items] == ["Globex", "Bob Stone", "100%_Real Ltd"]
    assert desc.total == 4 and not desc.has_more
    first = populated.customers.search(limit=2)
    assert first.has_more and len(first.items) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sort": "colour"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"stage": "vip"}, "stage"),
        ({"email": "nope"}, "email"),
        ({"attributes": {"tier": ["a"]}}, "attributes.tier"),
    ],
)
def test_search_refuses_bad_arguments(
    populated: CRM, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        populated.customers.search(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_iter_all_streams_in_id_order(populated: CRM) -> None:
    ids = [c.id for c in populated.customers.iter_all(batch_size=3)]
    assert ids == sorted(ids) and len(ids) == 4


def test_find_duplicate(populated: CRM) -> None:
    zoe = populated.customers.search(name="zoe").items[0]
    assert populated.customers.find_duplicate(Customer(name="other", email="ZOE@x.org")) == zoe.id
    assert populated.customers.find_duplicate({"name": "new", "email": "new@x.org"}) is None


def test_storage_error_when_not_initialised(sqlite_url: str) -> None:
    from crmcore import StorageError

    crm = CRM.open(sqlite_url, discover=False)
    with pytest.raises(StorageError, match=r"not initialised.*crm init"):
        crm.customers.search()
    crm.close()


def test_callers_entities_are_never_modified(crm: CRM) -> None:
    # Entities crmcore builds from mappings are completed in place; a caller's never are.
    mine = Customer(name="  Ada  ", email=" ada@x.org ")
    from_mapping = {"name": "  Bob  "}
    stored, bob = crm.customers.create_many([mine, from_mapping])
    assert mine.id is None and mine.name == "  Ada  " and mine.email == " ada@x.org "
    assert stored is not mine
    assert (stored.name, stored.email) == ("Ada", "ada@x.org")
    assert stored.id is not None and stored.created_at is not None
    assert bob.name == "Bob" and bob.id is not None and bob.id > stored.id
    assert from_mapping == {"name": "  Bob  "}
    assert crm.customers.get(stored.id) == stored
    assert crm.customers.get(bob.id) == bob
