"""Issue 11 items 4 and 8: merge and the customer pool in the access conformance matrix."""

from __future__ import annotations

from crmcore import CRM
from crmcore.testing import (
    EVERYONE_ONLY,
    PRINCIPALS,
    Case,
    Subjects,
    fresh_customer,
    run_conformance,
)

EVERYONE = frozenset(PRINCIPALS)


def _two_fresh(crm: CRM, subjects: Subjects) -> tuple[int, int]:
    return fresh_customer(crm, subjects), fresh_customer(crm, subjects)


def _unowned(crm: CRM, subjects: Subjects) -> tuple[int]:
    # A tuple, not an id: the kit then does not count the fresh customer as hidden from the
    # foreign agent, who may claim a pool customer like any agent.
    created = crm.customers.create({"name": "kit pooled"})
    assert created.id is not None
    return (created.id,)


def _leaver(crm: CRM, subjects: Subjects) -> int:
    created = crm.customers.create({"name": "kit leaver's", "owner": "kit-leaver"})
    assert created.id is not None
    return created.id


CASES = [
    Case(
        "customers.merge",
        lambda c, s: c.customers.merge(s.fresh[0], s.fresh[1]),
        EVERYONE_ONLY,
        setup=_two_fresh,
    ),
    Case("customers.resolve", lambda c, s: c.customers.resolve(s.visible)),
    Case("pool.list", lambda c, s: c.pool.list(), EVERYONE),
    Case("pool.claim", lambda c, s: c.pool.claim(s.fresh[0]), EVERYONE, setup=_unowned),
    Case("pool.release", lambda c, s: c.pool.release(s.fresh), EVERYONE_ONLY, setup=fresh_customer),
    Case(
        "pool.reassign",
        lambda c, s: c.pool.reassign("kit-leaver", "kit-heir"),
        EVERYONE_ONLY,
        setup=_leaver,
    ),
    Case("pool.recycle", lambda c, s: c.pool.recycle(36_500), EVERYONE_ONLY),
]


def test_merge_and_pool_conformance_matrix(crm: CRM) -> None:
    matrix = run_conformance(crm, "core: merge and pool", CASES)
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("customers.merge", "owner")] == "denied"
    assert outcome[("pool.claim", "foreign")] == "allowed"
    assert outcome[("pool.reassign", "granted")] == "denied"
