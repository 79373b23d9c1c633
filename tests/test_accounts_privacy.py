"""Issue 11 item 1: accounts rows in export, erasure and merges (move_account_rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.hooks import hookimpl
from crmcore.model.accounts import AccountNode
from crmcore.pytest_plugin import CRMFactory
from crmcore.services.accounts import move_account_rows
from crmcore.storage.tables import (
    account_parents,
    account_team,
    contacts,
    customer_links,
    relationship_scores,
)

T0 = "2025-06-01T10:00:00+00:00"


class Recorder:
    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []

    @hookimpl
    def crm_relationships_changed(self, ctx: Any, changes: Sequence[Mapping[str, Any]]) -> None:
        self.changes.extend(dict(c) for c in changes)


def _org(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, "kind": "organization", **fields})
    assert customer.id is not None
    return customer.id


def _person(crm: CRM, name: str) -> int:
    customer = crm.customers.create({"name": name})
    assert customer.id is not None
    return customer.id


def _count(crm: CRM, table: Any, *where: Any) -> int:
    with crm.reading() as uow:
        return int(
            uow.connection.execute(
                select(func.count()).select_from(table).where(*where)
            ).scalar_one()
        )


@pytest.fixture
def world(crm_factory: CRMFactory) -> tuple[CRM, Recorder, dict[str, int]]:
    recorder = Recorder()
    crm = crm_factory(plugins=[recorder])
    ids = {
        "acme": _org(crm, "Acme"),
        "sub": _org(crm, "Acme Sub"),
        "parent": _org(crm, "Acme Group"),
        "li": _person(crm, "Li Wei"),
        "bob": _person(crm, "Bob"),
    }
    crm.accounts.set_parent(ids["acme"], ids["parent"])
    crm.accounts.set_parent(ids["sub"], ids["acme"])
    crm.accounts.add_contact(ids["acme"], ids["li"], role="decision_maker", primary=True)
    crm.accounts.add_contact(ids["acme"], ids["bob"], role="user")
    crm.accounts.add_contact(ids["sub"], ids["li"], role="influencer")
    crm.accounts.link(ids["li"], ids["bob"], "referred_by")
    crm.accounts.link(ids["acme"], ids["sub"], "partner_of")
    crm.accounts.add_member(ids["acme"], "alice", "account_manager")
    crm.accounts.record_scores(ids["acme"], {"information_flow": 60})
    crm.accounts.record_scores(ids["acme"], {"information_flow": 70}, contact_id=ids["li"])
    crm.interactions.record(
        {"customer_id": ids["acme"], "kind": "call", "occurred_at": T0, "contact_id": ids["li"]}
    )
    recorder.changes.clear()
    return crm, recorder, ids


def test_export_has_the_relationships(world: tuple[CRM, Recorder, dict[str, int]]) -> None:
    crm, _, ids = world
    person = crm.customers.export(ids["li"])["relationships"]
    assert [(c["organisation_id"], c["role"]) for c in person["contacts"]] == [
        (ids["acme"], "decision_maker"),
        (ids["sub"], "influencer"),
    ]
    assert [(x["from_id"], x["type"]) for x in person["links"]] == [(ids["li"], "referred_by")]
    assert [s["contact_id"] for s in person["relationship_scores"]] == [ids["li"]]
    assert len(person["contact_in_interactions"]) == 1
    org = crm.customers.export(ids["acme"])["relationships"]
    assert org["parent_id"] == ids["parent"] and org["subsidiary_ids"] == [ids["sub"]]
    assert len(org["contacts"]) == 2 and len(org["relationship_scores"]) == 2
    assert [(m["user"], m["role"]) for m in org["team"]] == [("alice", "account_manager")]
    assert [x["type"] for x in org["links"]] == ["partner_of"]


def test_erasing_a_person_keeps_the_organisation(
    world: tuple[CRM, Recorder, dict[str, int]],
) -> None:
    crm, recorder, ids = world
    crm.customers.erase(ids["li"], vacuum="none")
    assert [c.person_id for c in crm.accounts.contacts(ids["acme"])] == [ids["bob"]]
    assert crm.accounts.links(ids["bob"]) == []
    assert crm.accounts.latest_scores(ids["acme"])["information_flow"].score == 60
    assert [s.contact_id for s in crm.accounts.scores(ids["acme"])] == [None]
    assert crm.interactions.timeline(ids["acme"]).items[0].contact_id is None
    assert crm.customers.get(ids["acme"]).name == "Acme"
    assert sorted((c["kind"], c["action"]) for c in recorder.changes) == [
        ("contact", "removed"),
        ("contact", "removed"),
        ("link", "removed"),
    ]
    exported = crm.customers.export(ids["li"])["relationships"]
    assert all(not v for k, v in exported.items() if k != "parent_id")


def test_erasing_an_organisation_keeps_the_persons(
    world: tuple[CRM, Recorder, dict[str, int]],
) -> None:
    crm, _, ids = world
    crm.customers.erase(ids["acme"], vacuum="none")
    assert crm.customers.get(ids["li"]).name == "Li Wei"
    assert [c.organisation_id for c in crm.accounts.organisations(ids["li"])] == [ids["sub"]]
    assert crm.accounts.organisations(ids["bob"]) == []
    assert crm.accounts.links(ids["li"])[0].to_id == ids["bob"]  # the persons' own link stays
    assert crm.accounts.group_tree(ids["sub"]) == AccountNode(ids["sub"], "Acme Sub")
    assert crm.accounts.subsidiaries(ids["parent"]) == []
    assert _count(crm, account_team, account_team.c.customer_id == ids["acme"]) == 0
    assert _count(crm, relationship_scores, relationship_scores.c.account_id == ids["acme"]) == 0


def test_move_account_rows(world: tuple[CRM, Recorder, dict[str, int]]) -> None:
    """A merge of Acme into a duplicate that already has some of the same rows."""
    crm, recorder, ids = world
    dup = _org(crm, "Apex")  # the kept customer
    bob, li = ids["bob"], ids["li"]
    crm.accounts.add_contact(dup, bob, role="champion", primary=True)  # Bob: kept, primary stays
    crm.accounts.add_member(dup, "alice", "service")  # alice: on both teams
    crm.accounts.link(dup, ids["sub"], "partner_of")  # the same link
    crm.accounts.link(ids["sub"], dup, "supplier_of")  # untouched: not an Acme row
    recorder.changes.clear()
    with crm.unit_of_work() as uow:
        moved = move_account_rows(uow, ids["acme"], dup)
    assert moved["crm_contacts.organisation_id"] == 1  # Li; Bob's duplicate row is dropped
    assert moved["crm_account_parents.organisation_id"] == 1  # the group parent
    assert moved["crm_account_parents.parent_id"] == 1  # the subsidiary
    assert moved["crm_account_team.customer_id"] == 0
    assert moved["crm_customer_links.from_id"] == 0
    assert moved["crm_relationship_scores.account_id"] == 2
    assert [(c.person_id, c.role, c.primary) for c in crm.accounts.contacts(dup)] == [
        (bob, "champion", True),
        (li, "decision_maker", False),  # Acme's primary contact is no longer primary
    ]
    assert _count(crm, contacts, contacts.c.organisation_id == ids["acme"]) == 0
    assert crm.accounts.group_tree(dup) == AccountNode(
        ids["parent"],
        "Acme Group",
        (AccountNode(dup, "Apex", (AccountNode(ids["sub"], "Acme Sub"),)),),
    )
    assert [(m.user, m.role) for m in crm.accounts.team(dup)] == [("alice", "service")]
    assert {(x.from_id, x.to_id, x.type) for x in crm.accounts.links(ids["sub"])} == {
        (dup, ids["sub"], "partner_of"),
        (ids["sub"], dup, "supplier_of"),
    }
    for table, column in (
        (account_parents, "organisation_id"),
        (customer_links, "from_id"),
        (account_team, "customer_id"),
    ):
        assert _count(crm, table, table.c[column] == ids["acme"]) == 0
    assert len(crm.accounts.scores(dup)) == 2
    kinds = sorted({(c["kind"], c["action"]) for c in recorder.changes})
    assert ("contact", "removed") in kinds and ("contact", "updated") in kinds
    assert ("team", "removed") in kinds and ("link", "removed") in kinds


def test_merging_a_person_drops_self_links_and_a_closed_cycle(crm: CRM) -> None:
    ada, ada2 = _person(crm, "Ada"), _person(crm, "Ada L.")
    top, mid = _org(crm, "Top"), _org(crm, "Mid")
    crm.accounts.link(ada, ada2, "referred_by")
    crm.accounts.add_contact(top, ada)
    crm.accounts.add_contact(top, ada2)
    crm.accounts.record_scores(top, {"daily_guidance": 50}, contact_id=ada2)
    crm.accounts.set_parent(mid, top)
    with crm.unit_of_work() as uow:
        move_account_rows(uow, ada2, ada)
        assert move_account_rows(uow, ada, ada)["crm_contacts.person_id"] == 0
    assert crm.accounts.links(ada) == []
    assert [c.person_id for c in crm.accounts.contacts(top)] == [ada]
    assert crm.accounts.scores(top)[0].contact_id == ada
    # an organisation merged into its own subsidiary: the cycle it would close is broken
    other = _org(crm, "Mid twin")
    crm.accounts.set_parent(other, mid)  # top > mid > other; merge top into other
    with crm.unit_of_work() as uow:
        move_account_rows(uow, top, other)
    tree = crm.accounts.group_tree(other)
    assert tree.id == other and sorted(tree.ids()) == sorted([other, mid])
