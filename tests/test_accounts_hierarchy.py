"""Issue 11 item 1: organisation hierarchies (no cycles) and typed links; both backends."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from crmcore import CRM, ConflictError, NotFoundError, ValidationError
from crmcore.model.accounts import AccountNode, AccountSettings
from crmcore.pytest_plugin import CRMFactory
from crmcore.services.accounts import hierarchy


def _org(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, "kind": "organization", **fields})
    assert customer.id is not None
    return customer.id


def _person(crm: CRM, name: str) -> int:
    customer = crm.customers.create({"name": name})
    assert customer.id is not None
    return customer.id


@pytest.fixture
def group(crm: CRM) -> dict[str, int]:
    """Huawei Technologies > (Huawei Device > Honor, Huawei Cloud)."""
    ids = {name: _org(crm, name) for name in ("Huawei", "Device", "Cloud", "Honor")}
    crm.accounts.set_parent(ids["Device"], ids["Huawei"])
    crm.accounts.set_parent(ids["Cloud"], ids["Huawei"])
    crm.accounts.set_parent(ids["Honor"], ids["Device"])
    return ids


def test_group_tree_and_subsidiaries(crm: CRM, group: dict[str, int]) -> None:
    honor = AccountNode(group["Honor"], "Honor")
    device = AccountNode(group["Device"], "Device", (honor,))
    cloud = AccountNode(group["Cloud"], "Cloud")
    top = AccountNode(group["Huawei"], "Huawei", (device, cloud))
    for member in group.values():
        assert crm.accounts.group_tree(member) == top
    assert crm.accounts.subsidiaries(group["Huawei"]) == [device, cloud]
    assert crm.accounts.subsidiaries(group["Honor"]) == []
    assert crm.accounts.parent(group["Honor"]) == AccountNode(group["Device"], "Device")
    assert crm.accounts.parent(group["Huawei"]) is None
    assert top.ids() == [group[n] for n in ("Huawei", "Device", "Honor", "Cloud")]
    assert crm.accounts.member_ids(group["Device"]) == sorted([group["Device"], group["Honor"]])


def test_moving_and_removing_a_parent(crm: CRM, group: dict[str, int]) -> None:
    assert crm.accounts.set_parent(group["Honor"], group["Huawei"]) == group["Device"]
    assert crm.accounts.parent(group["Honor"]) == AccountNode(group["Huawei"], "Huawei")
    assert crm.accounts.set_parent(group["Honor"], group["Huawei"]) == group["Huawei"]  # no-op
    assert crm.accounts.set_parent(group["Honor"], None) == group["Huawei"]
    assert crm.accounts.group_tree(group["Honor"]) == AccountNode(group["Honor"], "Honor")
    assert crm.accounts.set_parent(group["Honor"], None) is None
    changes = [e.data for e in crm.events.list(type="account.relationship_changed")]
    assert [(c["action"], c["organisation_id"]) for c in changes[-2:]] == [
        ("updated", group["Honor"]),
        ("removed", group["Honor"]),
    ]
    assert changes[-2]["previous_parent_id"] == group["Device"]


def test_cycles_and_persons_are_refused(crm: CRM, group: dict[str, int]) -> None:
    person = _person(crm, "Li Wei")
    with pytest.raises(ValidationError, match="cannot be its own parent"):
        crm.accounts.set_parent(group["Huawei"], group["Huawei"])
    with pytest.raises(ValidationError, match="the hierarchy would have a cycle"):
        crm.accounts.set_parent(group["Huawei"], group["Honor"])
    with pytest.raises(ValidationError, match="would have a cycle"):
        crm.accounts.set_parent(group["Device"], group["Honor"])
    with pytest.raises(ValidationError, match=f"parent_id: customer {person} is a person"):
        crm.accounts.set_parent(group["Huawei"], person)
    with pytest.raises(ValidationError, match=r"organisation_id: customer \d+ is a person"):
        crm.accounts.set_parent(person, group["Huawei"])
    with pytest.raises(NotFoundError):
        crm.accounts.set_parent(group["Huawei"], 999)
    with pytest.raises(ValidationError, match="parent_id: expected a customer id"):
        crm.accounts.set_parent(group["Huawei"], "1")  # type: ignore[arg-type]
    assert crm.accounts.parent(group["Huawei"]) is None


def test_concurrent_moves_cannot_close_a_cycle(crm: CRM, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers each adding half of a cycle: one wins, the other is refused.

    The cycle check is slowed down so that both writers are inside it at
    once: without the hierarchy lock both would pass on PostgreSQL.
    """
    a, b = _org(crm, "A"), _org(crm, "B")
    check = hierarchy.ancestor_ids

    def slow_check(connection: Any, organisation_id: int) -> list[int]:
        found = check(connection, organisation_id)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(hierarchy, "ancestor_ids", slow_check)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def move(child: int, parent: int) -> None:
        barrier.wait()
        try:
            crm.accounts.set_parent(child, parent)
            outcomes.append("set")
        except ValidationError:
            outcomes.append("refused")

    threads = [threading.Thread(target=move, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "set"]
    tree = crm.accounts.group_tree(a)
    assert sorted(tree.ids()) == [a, b]


def test_links(crm: CRM) -> None:
    ada, bob, acme = _person(crm, "Ada"), _person(crm, "Bob"), _org(crm, "Acme")
    referral = crm.accounts.link(ada, bob, "referred_by")
    partner = crm.accounts.link(acme, bob, "partner_of")
    assert referral.id is not None and (referral.from_id, referral.to_id) == (ada, bob)
    assert crm.accounts.links(bob) == [referral, partner]
    assert crm.accounts.links(bob, type="partner_of") == [partner]
    assert crm.accounts.links(ada) == [referral]
    with pytest.raises(ConflictError, match="already is referred_by"):
        crm.accounts.link(ada, bob, "referred_by")
    crm.accounts.link(bob, ada, "referred_by")  # the other direction is another link
    with pytest.raises(ValidationError, match="cannot be linked to itself"):
        crm.accounts.link(ada, ada, "partner_of")
    with pytest.raises(ValidationError, match="type: 'friend_of' is not one of: referred_by"):
        crm.accounts.link(ada, bob, "friend_of")
    with pytest.raises(NotFoundError):
        crm.accounts.link(ada, 999, "partner_of")
    assert crm.accounts.unlink(ada, bob, "referred_by") == referral
    with pytest.raises(NotFoundError, match="is not referred_by"):
        crm.accounts.unlink(ada, bob, "referred_by")
    kinds = [(e.data["action"], e.data["type"]) for e in crm.events.list()
             if e.type == "account.relationship_changed"]  # fmt: skip
    assert kinds == [
        ("added", "referred_by"),
        ("added", "partner_of"),
        ("added", "referred_by"),
        ("removed", "referred_by"),
    ]


def test_configured_link_types(crm_factory: CRMFactory) -> None:
    crm = crm_factory(accounts=AccountSettings(link_types=("sponsors",)))
    ada, bob = _person(crm, "Ada"), _person(crm, "Bob")
    assert crm.accounts.link(ada, bob, "sponsors").type == "sponsors"
    with pytest.raises(ValidationError, match="not one of: sponsors"):
        crm.accounts.link(ada, bob, "referred_by")
