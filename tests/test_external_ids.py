"""Issue 11, item 7: external ids (system, id) on customers, unique per system."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmcore import CRM, ConflictError, NotFoundError, ValidationError
from crmcore.access import AccessDeniedError, Principal
from crmcore.io.imports import import_customers
from crmcore.storage.tables import customer_external_ids


def stored_pairs(crm: CRM) -> list[tuple[str, str, int]]:
    table = customer_external_ids
    with crm.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.system, table.c.external_id, table.c.customer_id).order_by(
                table.c.system, table.c.external_id
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_create_with_external_ids_and_look_them_up(crm: CRM) -> None:
    one = crm.customers.create({"name": "Li Wei", "external_ids": {"erp": " C-1001 "}})
    many = crm.customers.create_many(
        [
            {"name": "Wang Fang", "external_ids": {"erp": ["C-1002", "C-1003"], "shop": 77}},
            {"name": "No ids"},
        ]
    )
    assert one.id == 1 and [c.id for c in many] == [2, 3]
    assert crm.customers.external_ids(1) == {"erp": ["C-1001"]}
    assert crm.customers.external_ids(2) == {"erp": ["C-1002", "C-1003"], "shop": ["77"]}
    assert crm.customers.external_ids(3) == {}
    assert crm.customers.get_by_external_id("erp", "C-1003").name == "Wang Fang"
    assert crm.customers.get_by_external_id(" erp ", "C-1001").id == 1
    with pytest.raises(NotFoundError, match="no customer has the external id erp 'c-1001'"):
        crm.customers.get_by_external_id("erp", "c-1001")  # ids are case-sensitive
    with pytest.raises(NotFoundError):
        crm.customers.get_by_external_id("ERP", "C-1001")
    assert not hasattr(one, "external_ids")  # not a Customer field
    entries = crm.audit.query(action="customer.external_id.add").items
    assert sorted((e.details["system"], e.details.get("count", 1)) for e in entries) == [
        ("erp", 1),
        ("erp", 2),
        ("shop", 1),
    ]
    assert entries[-1].details == {"system": "erp", "external_id": "C-1001"}
    added = list(crm.events.iter(type="customer.external_id_added"))
    assert sorted((e.customer_id, e.data["system"]) for e in added) == [
        (1, "erp"),
        (2, "erp"),
        (2, "erp"),
        (2, "shop"),
    ]


def test_an_external_id_belongs_to_one_customer(crm: CRM) -> None:
    crm.customers.create({"name": "A", "external_ids": {"erp": "C-1"}})
    with pytest.raises(ConflictError, match="external_id: erp 'C-1' already belongs to customer 1"):
        crm.customers.create({"name": "B", "external_ids": {"erp": "C-1"}})
    crm.customers.create({"name": "B", "external_ids": {"shop": "C-1"}})  # other system: fine
    with pytest.raises(ConflictError, match=r"customers\[1\]: external_id: erp 'X' is also used"):
        crm.customers.create_many(
            [
                {"name": "C", "external_ids": {"erp": "X"}},
                {"name": "D", "external_ids": {"erp": "X"}},
            ]
        )
    rejected: list[tuple[int, str]] = []
    created = crm.customers.create_many(
        [
            {"name": "E", "external_ids": {"erp": "C-1"}},
            {"name": "F", "external_ids": {"erp": "C-2"}},
        ],
        on_reject=lambda position, item, exc: rejected.append((position, str(exc))),
    )
    assert [c.name for c in created] == ["F"]
    assert rejected == [(0, "external_id: erp 'C-1' already belongs to customer 1")]
    assert stored_pairs(crm) == [("erp", "C-1", 1), ("erp", "C-2", 3), ("shop", "C-1", 2)]


def test_add_and_remove(crm: CRM) -> None:
    crm.customers.create_many([{"name": "A"}, {"name": "B"}])
    assert crm.customers.add_external_id(1, "erp", "C-1") is True
    assert crm.customers.add_external_id(1, "erp", "C-1") is False  # idempotent, not audited
    assert crm.customers.add_external_id(1, "erp", "C-9") is True  # several ids in one system
    with pytest.raises(ConflictError, match="already belongs to customer 1") as taken:
        crm.customers.add_external_id(2, "erp", "C-1")
    assert taken.value.existing_id == 1
    assert crm.customers.external_ids(1) == {"erp": ["C-1", "C-9"]}
    crm.customers.remove_external_id(1, "erp", "C-9", actor="ops")
    with pytest.raises(NotFoundError, match="customer 1 has no external id erp 'C-9'"):
        crm.customers.remove_external_id(1, "erp", "C-9")
    with pytest.raises(NotFoundError, match="customer 2 has no external id erp 'C-1'"):
        crm.customers.remove_external_id(2, "erp", "C-1")  # held by another customer
    with pytest.raises(NotFoundError):
        crm.customers.add_external_id(99, "erp", "C-5")
    assert crm.customers.external_ids(1) == {"erp": ["C-1"]}
    assert crm.audit.query(action="customer.external_id.add").total == 2
    removal = crm.audit.query(action="customer.external_id.remove").items
    assert [(e.customer_id, e.actor, dict(e.details)) for e in removal] == [
        (1, "ops", {"system": "erp", "external_id": "C-9"})
    ]
    assert [e.customer_id for e in crm.events.iter(type="customer.external_id_removed")] == [1]
    crm.customers.delete(1)
    assert stored_pairs(crm) == []  # the pairs go with the customer


def test_an_operation_inside_a_failed_unit_of_work_leaves_nothing(crm: CRM) -> None:
    crm.customers.create({"name": "A"})
    with pytest.raises(RuntimeError), crm.unit_of_work() as uow:
        crm.customers.add_external_id(1, "erp", "C-1", ctx=uow)
        raise RuntimeError("boom")
    assert stored_pairs(crm) == []
    assert crm.audit.query(action="customer.external_id.add").total == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.customers.add_external_id(1, "", "x"), "system: '' is not a system name"),
        (lambda c: c.customers.add_external_id(1, "my erp", "x"), "system: 'my erp' is not"),
        (lambda c: c.customers.add_external_id(1, "s" * 101, "x"), "system: 's"),
        (lambda c: c.customers.add_external_id(1, 5, "x"), "system: expected a string, got int"),
        (lambda c: c.customers.add_external_id(1, "erp", "  "), "external_id: must not be empty"),
        (lambda c: c.customers.add_external_id(1, "erp", "x" * 201), "external_id: must be at"),
        (lambda c: c.customers.add_external_id(1, "erp", "a\x00b"), "external_id: contains a NUL"),
        (lambda c: c.customers.add_external_id(1, "erp", "a\nb"), "external_id: must be at most"),
        (lambda c: c.customers.add_external_id(1, "erp", None), "external_id: expected a string"),
        (lambda c: c.customers.get_by_external_id("erp", ""), "external_id: must not be empty"),
        (lambda c: c.customers.remove_external_id(1, "", "x"), "system: '' is not a system name"),
        (
            lambda c: c.customers.create({"name": "X", "external_ids": ["erp", "1"]}),
            "external_ids: expected an object of system -> id, got list",
        ),
        (
            lambda c: c.customers.create({"name": "X", "external_ids": {"erp": {"a": 1}}}),
            "external_ids.erp: expected a string, got dict",
        ),
        (
            lambda c: c.customers.create({"name": "X", "external_ids": {"e r p": "1"}}),
            "external_ids key: 'e r p' is not a system name",
        ),
    ],
)
def test_bad_input_names_the_field(crm: CRM, call, message: str) -> None:  # type: ignore[no-untyped-def]
    crm.customers.create({"name": "A"})
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        call(crm)
    assert stored_pairs(crm) == []
    with crm.engine.connect() as conn:
        customers = conn.execute(select(func.count()).select_from(customer_external_ids))
        assert customers.scalar_one() == 0


def test_agents_see_and_change_only_their_customers(crm: CRM) -> None:
    crm.customers.create_many(
        [
            {"name": "Alice's", "owner": "alice", "external_ids": {"erp": "A-1"}},
            {"name": "Bob's", "owner": "bob", "external_ids": {"erp": "B-1"}},
        ]
    )
    alice = crm.as_user(Principal("alice"))
    assert alice.customers.get_by_external_id("erp", "A-1").id == 1
    with pytest.raises(NotFoundError) as hidden:
        alice.customers.get_by_external_id("erp", "B-1")
    with pytest.raises(NotFoundError) as missing:
        alice.customers.get_by_external_id("erp", "B-2")
    assert str(hidden.value).replace("B-1", "B-2") == str(missing.value)  # says nothing more
    with pytest.raises(AccessDeniedError):
        alice.customers.external_ids(2)
    with pytest.raises(AccessDeniedError):
        alice.customers.add_external_id(2, "erp", "B-2")
    with pytest.raises(AccessDeniedError):
        alice.customers.remove_external_id(2, "erp", "B-1")
    with pytest.raises(ConflictError) as taken:
        alice.customers.add_external_id(1, "erp", "B-1")
    assert str(taken.value) == (
        "external_id: erp 'B-1' already belongs to a customer you may not see"
    )
    assert taken.value.existing_id is None
    with pytest.raises(ConflictError, match="a customer you may not see"):
        alice.customers.create({"name": "Mine", "external_ids": {"erp": "B-1"}})
    assert alice.customers.add_external_id(1, "shop", "S-1") is True
    entry = crm.audit.query(action="customer.external_id.add").items[0]
    assert (entry.actor, entry.customer_id) == ("alice", 1)
    assert stored_pairs(crm) == [("erp", "A-1", 1), ("erp", "B-1", 2), ("shop", "S-1", 1)]


def test_export_shows_and_erasure_removes_them(crm: CRM, tmp_path: Path) -> None:
    crm.customers.create_many(
        [
            {"name": "Li Wei", "email": "li@x.org", "external_ids": {"erp": "C-1", "shop": "7"}},
            {"name": "Other", "external_ids": {"erp": "C-2"}},
        ]
    )
    assert crm.customers.export(1)["external_ids"] == {"erp": ["C-1"], "shop": ["7"]}
    crm.customers.erase(1, vacuum="none")
    assert crm.customers.export(1)["external_ids"] == {}
    assert stored_pairs(crm) == [("erp", "C-2", 2)]
    with pytest.raises(NotFoundError):
        crm.customers.get_by_external_id("erp", "C-1")
    path = tmp_path / "again.csv"
    path.write_text("name,email,external_id\nLi Wei,li@x.org,C-1\n", encoding="utf-8")
    result = import_customers(crm, path, update_existing=True, match="external_id", system="erp")
    assert (result.created, result.updated) == (1, 0)  # the erased customer is not matched
    assert crm.customers.get(1).name == "erased customer 1"
