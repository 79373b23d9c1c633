"""crm.customers.update_many: what update does, per batch (issue 11, item 7: import upsert)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, select

from crmcore import CRM, AccessDeniedError, ConflictError, NotFoundError, ValidationError
from crmcore.access import Principal
from crmcore.hooks import hookimpl
from crmcore.model.entities import Customer, CustomerChange
from crmcore.model.serialization import to_dict
from crmcore.pytest_plugin import CRMFactory
from crmcore.storage.tables import customer_tags

SEED = [
    {"name": "A", "email": "a@x.org", "tags": ["x"], "attributes": {"k": 1, "j": 2}},
    {"name": "B", "email": "b@x.org", "consent": {"surveys": True}, "owner": "alice"},
    {"name": "C", "phone": "+86 139 0000 0003", "owner": "bob"},
]
CHANGES: list[tuple[int, dict[str, Any]]] = [
    (1, {"industry": "retail", "tags": ["y", "z"], "attributes": {"k": None, "m": 3}}),
    (2, {"consent": {"marketing_email": True}, "email": " B2@x.org "}),
    (3, {"name": "C"}),  # nothing changes
]


class Recorder:
    """Keeps what crm_customers_updated and crm_validate_customers saw."""

    def __init__(self) -> None:
        self.updated: list[CustomerChange] = []

    @hookimpl
    def crm_customers_updated(self, ctx: Any, changes: list[CustomerChange]) -> None:
        self.updated.extend(changes)

    @hookimpl
    def crm_validate_customers(self, ctx: Any, customers: list[Customer]) -> Any:
        return [(i, "industry: not 'forbidden'") for i, c in enumerate(customers)
                if c.industry == "forbidden"]  # fmt: skip


def state(crm: CRM, ids: list[int]) -> Any:
    """Customers, audit entries, events and tags, with customer ids as seed positions."""
    seat = {cid: n for n, cid in enumerate(ids)}
    customers = [
        {k: v for k, v in to_dict(c).items() if k not in ("id", "updated_at", "created_at")}
        for c in crm.customers.iter_all()
    ]
    entries = crm.audit.query(action="customer.update", limit=100).items
    audit = sorted((seat[e.customer_id], repr(dict(e.details))) for e in entries)
    events = [(e.type, seat[e.customer_id], dict(e.data)) for e in crm.events.iter()]
    query = select(customer_tags).order_by(customer_tags.c.customer_id, customer_tags.c.tag)
    with crm.engine.connect() as conn:
        tags = [(seat[cid], tag) for cid, tag in conn.execute(query)]
    return customers, audit, events, tags


def test_update_many_does_what_update_does(crm_factory: CRMFactory) -> None:
    one_by_one, batched = Recorder(), Recorder()
    first = crm_factory(plugins=[one_by_one])
    ids = [c.id for c in first.customers.create_many(SEED)]
    with first.unit_of_work() as uow:
        expected = [first.customers.update(ids[n - 1], ch, ctx=uow) for n, ch in CHANGES]
    reference = state(first, ids)  # type: ignore[arg-type]
    with first.engine.begin() as conn:  # start again from the same seed
        present = set(inspect(conn).get_table_names())
        for table in reversed(first.metadata.sorted_tables):
            if table.name in present:
                conn.execute(table.delete())
    second = crm_factory(plugins=[batched])
    ids = [c.id for c in second.customers.create_many(SEED)]
    got = second.customers.update_many([(ids[n - 1], ch) for n, ch in CHANGES], batch_size=2)
    assert [c.changed for c in got] == [c.changed for c in expected]
    drop = ("id", "created_at", "updated_at")
    assert [{k: v for k, v in to_dict(c.after).items() if k not in drop} for c in got] == [
        {k: v for k, v in to_dict(c.after).items() if k not in drop} for c in expected
    ]
    assert got[1].after.email == "B2@x.org" and got[2].changed == ()
    assert state(second, ids) == reference  # type: ignore[arg-type]
    assert [c.changed for c in batched.updated] == [c.changed for c in one_by_one.updated]


def test_update_many_rejects_like_update(crm_factory: CRMFactory) -> None:
    crm = crm_factory(plugins=[Recorder()])
    crm.customers.create_many(SEED)
    rejected: list[tuple[int, str]] = []
    got = crm.customers.update_many(
        [
            (1, {"stage": "active"}),
            (2, {"email": "a@x.org"}),  # A's email
            (99, {"industry": "x"}),
            (3, {"industry": "forbidden"}),
            ("3", {"industry": "x"}),
            (1, {"industry": "ok"}),
            (1, {"industry": "twice"}),
            (2, {"phone": "+86 139 0000 0003"}),  # C's phone
            (3, {}),
        ],
        on_reject=lambda position, item, exc: rejected.append((position, str(exc))),
    )
    assert [c.after.id for c in got] == [1]
    assert rejected == [
        (0, "stage: change it with crm.lifecycle.move (or `crm lifecycle move`), not update"),
        (4, "customer id: expected an integer, got '3'"),
        (8, "changes: give at least one field to change"),
        (2, "customer 99 does not exist"),
        (6, "customer 1 is also changed by updates[5] in the same batch"),
        (7, "customer 2 is also changed by updates[1] in the same batch"),
        (1, "duplicate customer: email 'a@x.org' already belongs to customer 1"),
        (3, "industry: not 'forbidden'"),
    ]
    assert crm.customers.get(1).industry == "ok"
    rejected.clear()
    crm.customers.update_many(
        [(1, {"email": "new@x.org"}), (2, {"email": "NEW@x.org"})],
        on_reject=lambda position, item, exc: rejected.append((position, str(exc))),
    )
    assert rejected == [(1, "email 'new@x.org' is also used by updates[0] in the same batch")]
    assert crm.customers.get(1).email == "new@x.org"
    with pytest.raises(ConflictError, match=r"updates\[1\]: duplicate customer: email"):
        crm.customers.update_many([(1, {"industry": "rolled back"}), (2, {"email": "new@x.org"})])
    assert crm.customers.get(1).industry == "ok"
    with pytest.raises(ValidationError, match="batch_size: must be at least 1"):
        crm.customers.update_many([], batch_size=0)
    with pytest.raises(NotFoundError, match=r"updates\[0\]: customer 99 does not exist"):
        crm.customers.update_many([(99, {"industry": "x"})])


def test_an_agent_updates_only_what_they_may_write(crm: CRM) -> None:
    crm.customers.create_many(SEED)
    alice = crm.as_user(Principal("alice"))
    assert [c.after.industry for c in alice.customers.update_many([(2, {"industry": "a"})])] == [
        "a"
    ]
    with pytest.raises(AccessDeniedError):
        alice.customers.update_many([(3, {"industry": "b"})])
    with pytest.raises(AccessDeniedError):
        alice.customers.update_many([(2, {"owner": "bob"})])  # giving it away
    refused: list[str] = []
    alice.customers.update_many(
        [(2, {"phone": "+86 139 0000 0003"})], on_reject=lambda p, i, e: refused.append(str(e))
    )
    assert refused == [
        "duplicate customer: phone '+8613900000003' already belongs to a customer you may not see"
    ]
    assert crm.customers.get(3).industry is None and crm.customers.get(2).owner == "alice"
