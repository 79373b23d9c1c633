"""Issue 11 item 2: crm.accounts obeys the principal, and account teams share access like grants.

The conformance matrix runs every public function of ``crm.accounts`` as the
kit's five principals. The ``visible`` customer is made an organisation; the
``hidden`` one (a foreign agent's person) is a *former* contact of it, linked
from it and scored as its decision maker, so every listing must leave it out
for the agents, who may not read it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from crmcore import CRM, Customer
from crmcore.access import AccessDeniedError, Action, Principal, Role
from crmcore.hooks import hookimpl
from crmcore.model.accounts import AccountSettings
from crmcore.pytest_plugin import CRMFactory
from crmcore.services.accounts import AccountService
from crmcore.testing import (
    EVERYONE_ONLY,
    PRINCIPALS,
    Case,
    FrozenClock,
    Subjects,
    fresh_customer,
    prepare_customers,
    run_conformance,
)

T0 = "2026-01-01T00:00:00+00:00"


def _names_id(value: Any, customer_id: int, depth: int = 0) -> bool:
    """Whether ``value`` holds ``customer_id`` under a key naming a customer (person_id ...).

    ``id`` names a customer in tree nodes and customers; elsewhere it is a row's own id.
    """
    if depth > 20:
        return False
    if attrs.has(type(value)):
        value = attrs.asdict(value)
    if isinstance(value, Mapping):
        customer_like = "children" in value or "kind" in value  # a tree node, a customer
        for key, item in value.items():
            idish = isinstance(key, str) and key.endswith(("_id", "_ids"))
            idish = idish or (key == "id" and customer_like)
            if idish and (item == customer_id or (isinstance(item, list) and customer_id in item)):
                return True
            if key == str(customer_id) or _names_id(item, customer_id, depth + 1):
                return True
        return False
    if isinstance(value, list | tuple):
        return customer_id in value or any(_names_id(v, customer_id, depth + 1) for v in value)
    return False


def _reveals(result: Any, customer_id: int, subjects: Subjects) -> bool:
    return _names_id(result, customer_id)


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    crm.customers.update(visible, {"kind": "organization"})
    person = fresh_customer(crm, Subjects(visible, hidden))
    sub = crm.customers.create({"name": "kit subsidiary", "kind": "organization"}).id
    assert sub is not None
    crm.accounts.add_contact(visible, person, role="decision_maker", primary=True)
    crm.accounts.add_contact(visible, hidden, start_date="2024-01-01", end_date="2025-01-01")
    crm.accounts.link(visible, hidden, "partner_of")
    crm.accounts.set_parent(sub, visible)
    crm.accounts.record_scores(visible, {"information_flow": 30})
    crm.accounts.record_scores(
        visible,
        {"information_flow": 20},
        contact_id=hidden,
        measured_at=datetime(2024, 6, 1, tzinfo=UTC),
    )
    crm.interactions.record(
        {"customer_id": visible, "kind": "call", "occurred_at": T0, "contact_id": person}
    )
    return {"person": person}


def _fresh_org(crm: CRM, s: Subjects) -> int:
    org = crm.customers.create(
        {
            "name": f"kit fresh org {uuid.uuid4().hex[:8]}",
            "kind": "organization",
            "owner": "kit-owner",
        }
    )
    assert org.id is not None
    crm.access.grant(org.id, "kit-granted")
    return org.id


def _fresh_contact(crm: CRM, s: Subjects) -> int:
    person = fresh_customer(crm, s)
    crm.accounts.add_contact(s.visible, person)
    return person


def _fresh_link(crm: CRM, s: Subjects) -> int:
    person = fresh_customer(crm, s)
    crm.accounts.link(s.visible, person, "referred_by")
    return person


def _fresh_member(crm: CRM, s: Subjects) -> None:
    crm.accounts.add_member(s.visible, "kit-team", "service")


SCORES = {"information_flow": 50}
CASES = [
    Case(
        "accounts.add_contact",
        lambda c, s: c.accounts.add_contact(s.visible, s.fresh),
        setup=fresh_customer,
        reveals=_reveals,
    ),
    Case(
        "accounts.update_contact",
        lambda c, s: c.accounts.update_contact(s.visible, s.data["person"], {"department": "kit"}),
        reveals=_reveals,
    ),
    Case(
        "accounts.end_contact",
        lambda c, s: c.accounts.end_contact(s.visible, s.fresh, on="2030-01-01"),
        setup=_fresh_contact,
        reveals=_reveals,
    ),
    Case(
        "accounts.remove_contact",
        lambda c, s: c.accounts.remove_contact(s.visible, s.fresh),
        setup=_fresh_contact,
        reveals=_reveals,
    ),
    Case(
        "accounts.contacts",
        lambda c, s: c.accounts.contacts(s.visible, include_ended=True),
        reveals=_reveals,
    ),
    Case(
        "accounts.organisations",
        lambda c, s: c.accounts.organisations(s.data["person"], include_ended=True),
        reveals=_reveals,
    ),
    Case(
        "accounts.set_parent",
        lambda c, s: c.accounts.set_parent(s.fresh, s.visible),
        setup=_fresh_org,
        reveals=_reveals,
    ),
    Case("accounts.parent", lambda c, s: c.accounts.parent(s.visible), reveals=_reveals),
    Case(
        "accounts.subsidiaries", lambda c, s: c.accounts.subsidiaries(s.visible), reveals=_reveals
    ),
    Case("accounts.group_tree", lambda c, s: c.accounts.group_tree(s.visible), reveals=_reveals),
    Case("accounts.member_ids", lambda c, s: c.accounts.member_ids(s.visible), reveals=_reveals),
    Case(
        "accounts.link",
        lambda c, s: c.accounts.link(s.visible, s.fresh, "supplier_of"),
        setup=fresh_customer,
        reveals=_reveals,
    ),
    Case(
        "accounts.unlink",
        lambda c, s: c.accounts.unlink(s.visible, s.fresh, "referred_by"),
        setup=_fresh_link,
        reveals=_reveals,
    ),
    Case("accounts.links", lambda c, s: c.accounts.links(s.visible), reveals=_reveals),
    Case(
        "accounts.add_member",
        lambda c, s: c.accounts.add_member(s.visible, "kit-x", "pre_sales"),
        EVERYONE_ONLY,
    ),
    Case(
        "accounts.remove_member",
        lambda c, s: c.accounts.remove_member(s.visible, "kit-team"),
        EVERYONE_ONLY,
        setup=_fresh_member,
    ),
    Case("accounts.team", lambda c, s: c.accounts.team(s.visible), reveals=_reveals),
    Case(
        "accounts.record_scores",
        lambda c, s: c.accounts.record_scores(s.visible, SCORES),
        reveals=_reveals,
    ),
    Case("accounts.scores", lambda c, s: c.accounts.scores(s.visible), reveals=_reveals),
    Case(
        "accounts.latest_scores",
        lambda c, s: c.accounts.latest_scores(s.visible),
        reveals=_reveals,
    ),
    Case(
        "accounts.churn_signals",
        lambda c, s: c.accounts.churn_signals([s.visible]),
        reveals=_reveals,
    ),
    Case("accounts.view", lambda c, s: c.accounts.view(s.visible), reveals=_reveals),
]

#: Every public function of crm.accounts: each must have a case.
FUNCTIONS = sorted(
    f"accounts.{name}"
    for name in dir(AccountService)
    if not name.startswith("_") and callable(getattr(AccountService, name))
)


def test_accounts_conformance_matrix(crm: CRM) -> None:
    matrix = run_conformance(crm, "accounts", CASES, prepare=_prepare, functions=FUNCTIONS)
    print(matrix.format())
    matrix.assert_clean()
    assert len(FUNCTIONS) == len(CASES) == 22
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("accounts.view", "foreign")] == "denied"
    assert outcome[("accounts.contacts", "owner")] == "allowed"
    assert outcome[("accounts.add_member", "owner")] == "denied"


def test_the_kit_reveal_check_sees_a_leak(crm: CRM) -> None:
    """The matrix above would catch a listing that kept the hidden former contact."""
    visible, hidden = prepare_customers(crm)
    data = _prepare(crm, visible, hidden)
    everything = crm.accounts.contacts(visible, include_ended=True)
    assert _reveals(everything, hidden, Subjects(visible, hidden, data))
    assert _reveals(crm.accounts.view(visible)["scores"], hidden, Subjects(visible, hidden))
    owner = crm.as_user(PRINCIPALS["owner"])
    assert not _reveals(owner.accounts.view(visible), hidden, Subjects(visible, hidden))


# --- account teams in core's access control ----------------------------------------------


@pytest.fixture
def team(crm: CRM) -> dict[str, int]:
    ids = {
        "org": crm.customers.create({"name": "Acme", "kind": "organization", "owner": "olga"}).id,
        "other": crm.customers.create({"name": "Globex", "kind": "organization"}).id,
        "current": crm.customers.create({"name": "Current", "owner": "xavier"}).id,
        "former": crm.customers.create({"name": "Former", "owner": "xavier"}).id,
        "future": crm.customers.create({"name": "Future", "owner": "xavier"}).id,
        "stranger": crm.customers.create({"name": "Stranger", "owner": "xavier"}).id,
    }
    ids = {k: int(v or 0) for k, v in ids.items()}
    crm.accounts.add_contact(ids["org"], ids["current"], role="decision_maker")
    crm.accounts.add_contact(ids["org"], ids["former"], end_date="2025-06-01")
    crm.accounts.add_contact(ids["org"], ids["future"], start_date="2026-02-01")
    crm.accounts.add_contact(ids["other"], ids["stranger"])
    crm.accounts.add_member(ids["org"], "alice", "account_manager")
    crm.accounts.add_member(ids["org"], "pete", "pre_sales")
    for cid in ids.values():
        crm.interactions.record({"customer_id": cid, "kind": "call", "occurred_at": T0})
    return ids


def _sees(crm: CRM, user: str, action: Action = Action.READ) -> set[int]:
    view = crm.as_user(Principal(user))
    with view.reading() as uow:
        return set(uow.connection.execute(view.access.visible_ids(action, ctx=uow)).scalars())


def _can(crm: CRM, user: str, customer_id: int, action: Action) -> bool:
    view = crm.as_user(Principal(user))
    customer = crm.customers.get(customer_id)
    return view.access.allowed(action, customer)


def test_team_members_reach_the_account_and_its_current_contacts(
    crm: CRM, team: dict[str, int], clock: FrozenClock
) -> None:
    org, current, former, future = team["org"], team["current"], team["former"], team["future"]
    assert _sees(crm, "pete") == {org, current}
    assert _sees(crm, "pete", Action.WRITE) == set()  # pre_sales reads only
    assert _sees(crm, "alice") == {org, current}
    assert _sees(crm, "alice", Action.WRITE) == {org, current}  # account_manager writes
    assert _sees(crm, "olga") == {org, current}  # the owner: the account and its contacts
    assert _sees(crm, "olga", Action.WRITE) == {org, current}
    assert _sees(crm, "xavier") == {current, former, future, team["stranger"]}
    for user, customer_id, action, allowed in [
        ("pete", org, Action.READ, True),
        ("pete", org, Action.WRITE, False),
        ("pete", current, Action.READ, True),
        ("pete", former, Action.READ, False),
        ("pete", future, Action.READ, False),
        ("alice", current, Action.WRITE, True),
        ("alice", team["other"], Action.READ, False),
        ("olga", current, Action.WRITE, True),
        ("olga", former, Action.READ, False),
        ("pete", org, Action.DELETE, False),
    ]:
        assert _can(crm, user, customer_id, action) is allowed, (user, customer_id, action)
    pete = crm.as_user(Principal("pete"))
    assert {c.id for c in pete.customers.search().items} == {org, current}
    assert {i.customer_id for i in pete.interactions.list().items} == {org, current}
    assert pete.customers.get(current).name == "Current"
    with pytest.raises(AccessDeniedError):
        pete.customers.update(current, {"industry": "x"})
    with pytest.raises(AccessDeniedError):
        pete.customers.get(former)
    alice = crm.as_user(Principal("alice"))
    assert alice.customers.update(current, {"industry": "steel"}).changed == ("industry",)
    view = alice.accounts.view(org)
    assert [c["person_id"] for c in view["contacts"]] == [current]

    clock.set(clock.now + timedelta(days=40))  # the future contact starts
    assert _sees(crm, "pete") == {org, current, future}
    crm.accounts.end_contact(org, current)
    assert _sees(crm, "pete") == {org, future}
    crm.accounts.remove_member(org, "pete")
    assert _sees(crm, "pete") == set()
    with pytest.raises(AccessDeniedError):
        pete.accounts.view(org)


class NoOpinion:
    """A crm_authorize policy without an opinion: every listed row is then checked one by one."""

    @hookimpl
    def crm_authorize(
        self, crm: CRM, principal: Principal, action: str, customer: Customer | None
    ) -> bool | None:
        return None


def test_the_per_row_path_agrees_with_the_sql(crm_factory: CRMFactory, clock: FrozenClock) -> None:
    plain = crm_factory()
    hooked = crm_factory(plugins=[NoOpinion()])
    ids: dict[str, int] = {}
    for name, fields in [
        ("org", {"kind": "organization", "owner": "olga"}),
        ("current", {"owner": "xavier"}),
        ("former", {"owner": "xavier"}),
    ]:
        created = plain.customers.create({"name": name, **fields})
        assert created.id is not None
        ids[name] = created.id
    plain.accounts.add_contact(ids["org"], ids["current"])
    plain.accounts.add_contact(ids["org"], ids["former"], end_date="2025-01-01")
    plain.accounts.add_member(ids["org"], "pete", "pre_sales")
    plain.accounts.add_member(ids["org"], "alice", "account_manager")
    for user in ("pete", "alice", "olga", "xavier", "nobody"):
        for action in (Action.READ, Action.WRITE):
            assert hooked.as_user(Principal(user)).access.visibility(action).per_row
            assert _sees(hooked, user, action) == _sees(plain, user, action), (user, action)
    pete = hooked.as_user(Principal("pete"))
    assert {c.id for c in pete.customers.search().items} == {ids["org"], ids["current"]}
    pete.access.guard(None, [ids["org"], ids["current"]], Action.READ)
    with pytest.raises(AccessDeniedError):
        pete.access.guard(None, [ids["org"]], Action.WRITE)


def test_configured_write_roles(crm_factory: CRMFactory) -> None:
    settings = AccountSettings(team_write_roles=("account_manager", "service"))
    crm = crm_factory(accounts=settings)
    org = crm.customers.create({"name": "Acme", "kind": "organization"}).id
    assert org is not None
    crm.accounts.add_member(org, "sam", "service")
    crm.accounts.add_member(org, "pete", "pre_sales")
    assert _sees(crm, "sam", Action.WRITE) == {org}
    assert _sees(crm, "pete", Action.WRITE) == set()


def test_managers_and_admins_are_unchanged(crm: CRM, team: dict[str, int]) -> None:
    for role in (Role.MANAGER, Role.ADMIN):
        view = crm.as_user(Principal("boss", role))
        assert view.customers.search().total == len(team)
