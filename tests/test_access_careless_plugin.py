"""Issue 16: a careless plugin using only the documented data-access API leaks nothing."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from crmcore import CRM
from crmcore.access import AccessDeniedError, Principal
from crmcore.scoping import enforce_declared, undeclared

T0 = "2026-01-01T00:00:00+00:00"


def _careless_module() -> types.ModuleType:
    """A plugin service module whose author added no access check anywhere."""
    module = types.ModuleType("careless_service")
    source = """
from sqlalchemy import select

def names(crm):
    return [c.name for c in crm.customers.iter_all()]

def found(crm):
    return [c.name for c in crm.customers.search().items]

def calls(crm):
    table = crm.metadata.tables["crm_interactions"]
    with crm.reading() as uow:
        return uow.connection.execute(
            select(table.c.customer_id).where(crm.access.where(table.c.customer_id))
        ).scalars().all()

def note_call(crm, customer_id):
    return crm.interactions.record(
        {"customer_id": customer_id, "kind": "call", "occurred_at": "2026-01-01T00:00:00+00:00"}
    )

def rename(crm, customer_id, name):
    return crm.customers.update(customer_id, {"name": name})

def raw_dump(crm):
    table = crm.metadata.tables["crm_customers"]
    with crm.reading() as uow:
        return uow.connection.execute(select(table.c.name)).scalars().all()
"""
    exec(compile(source, "careless_service.py", "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    return module


@pytest.fixture
def shop(crm: CRM) -> CRM:
    crm.customers.create_many(
        [{"name": "Alice's", "owner": "alice"}, {"name": "Bob's secret", "owner": "bob"}]
    )
    crm.interactions.record_many(
        [
            {"customer_id": 1, "kind": "call", "occurred_at": T0},
            {"customer_id": 2, "kind": "call", "occurred_at": T0},
        ]
    )
    return crm


def test_careless_plugin_sees_nothing_foreign(shop: CRM) -> None:
    careless: Any = _careless_module()
    alice = shop.as_user(Principal("alice"))
    assert careless.names(alice) == ["Alice's"]
    assert careless.found(alice) == ["Alice's"]
    assert careless.calls(alice) == [1]
    careless.note_call(alice, 1)
    with pytest.raises(AccessDeniedError):
        careless.note_call(alice, 2)
    with pytest.raises(AccessDeniedError):
        careless.rename(alice, 2, "pwned")
    assert shop.customers.get(2).name == "Bob's secret"
    assert careless.names(shop) == ["Alice's", "Bob's secret"]  # the trusted view sees all


def test_undeclared_functions_deny_once_enforced(shop: CRM) -> None:
    careless: Any = _careless_module()
    assert "careless_service.raw_dump" in undeclared(careless)
    # Raw SQL through the connection is trusted code: nothing checks it ...
    assert "Bob's secret" in careless.raw_dump(shop.as_user(Principal("alice")))
    # ... unless the module enforces declarations: then a user's view is refused.
    enforce_declared(careless)
    with pytest.raises(AccessDeniedError, match="declares no access requirement"):
        careless.raw_dump(shop.as_user(Principal("alice")))
    assert "Bob's secret" in careless.raw_dump(shop)
    assert "careless_service.raw_dump" in undeclared(careless)  # still reported as forgotten
