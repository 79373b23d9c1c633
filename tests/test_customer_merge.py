"""Issue 11 item 4: merging a duplicate into the kept customer (core rows; plugins test theirs)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from crmcore import CRM, ConflictError, NotFoundError, ValidationError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.cli import build_cli
from crmcore.storage.tables import (
    customer_grants,
    customer_merges,
    customers,
    interactions,
    lifecycle_events,
)

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def _count(crm: CRM, table, **where: int) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with crm.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def pair(crm: CRM) -> tuple[int, int]:
    keep = crm.customers.create(
        {"name": "Li Wei", "email": "li.wei@example.com", "tags": ["vip"], "owner": "alice"}
    )
    dup = crm.customers.create(
        {
            "name": "Wei Li",
            "phone": "+86 138 0013 8000",
            "address": "1 Nanjing Road",
            "tags": ["b2b"],
            "attributes": {"level": 2},
            "consent": {"marketing_email": True},
        }
    )
    assert keep.id is not None and dup.id is not None
    for cid, amount in ((keep.id, "10"), (dup.id, "25"), (dup.id, "5")):
        crm.interactions.record(
            {
                "customer_id": cid,
                "kind": "purchase",
                "occurred_at": WHEN,
                "amount": amount,
                "currency": "CNY",
            }
        )
    crm.access.grant(dup.id, "bob")
    return keep.id, dup.id


def test_merge_moves_every_core_row_and_leaves_a_tombstone(crm: CRM, pair: tuple[int, int]) -> None:
    keep, dup = pair
    before_interactions = _count(crm, interactions)
    history = _count(crm, lifecycle_events, customer_id=keep) + _count(
        crm, lifecycle_events, customer_id=dup
    )
    result = crm.customers.merge(keep, dup)
    assert result.merged_id == dup
    assert _count(crm, interactions) == before_interactions
    assert _count(crm, interactions, customer_id=keep) == 3
    assert _count(crm, interactions, customer_id=dup) == 0
    assert _count(crm, lifecycle_events, customer_id=keep) == history
    assert _count(crm, customers, id=dup) == 0
    assert _count(crm, customer_merges, merged_id=dup) == 1
    assert _count(crm, customer_grants, customer_id=keep) == 1
    kept = result.kept
    assert kept.id == keep
    assert kept.name == "Li Wei"  # the kept customer's own value wins
    assert kept.email == "li.wei@example.com"
    assert kept.phone == "+86 138 0013 8000"  # empty on the kept customer: filled
    assert kept.address == "1 Nanjing Road"
    assert set(kept.tags) == {"vip", "b2b"}
    assert kept.attributes == {"level": 2}
    assert kept.consent.marketing_email is False  # granted on one record only: not granted
    assert set(result.taken_from_duplicate) >= {"phone", "address", "attributes"}
    revenue = sum((i.amount or Decimal(0)) for i in crm.interactions.timeline(keep, limit=10).items)
    assert revenue == Decimal("40")


def test_the_old_id_resolves_to_the_kept_customer(crm: CRM, pair: tuple[int, int]) -> None:
    keep, dup = pair
    crm.customers.merge(keep, dup)
    assert crm.customers.get(dup).id == keep
    assert crm.customers.resolve(dup) == keep
    assert crm.customers.resolve(keep) == keep
    with pytest.raises(NotFoundError, match="already merged into customer"):
        crm.customers.merge(keep, dup)


def test_choose_takes_the_duplicates_value(crm: CRM, pair: tuple[int, int]) -> None:
    keep, dup = pair
    result = crm.customers.merge(keep, dup, choose={"name": "duplicate", "tags": "keep"})
    assert result.kept.name == "Wei Li"
    assert result.kept.tags == ("vip",)


def test_the_duplicates_unique_key_can_move_to_the_kept_customer(crm: CRM) -> None:
    keep = crm.customers.create({"name": "A", "email": "a@example.com"})
    dup = crm.customers.create({"name": "A2", "email": "a2@example.com"})
    assert keep.id and dup.id
    result = crm.customers.merge(keep.id, dup.id, choose={"email": "duplicate"})
    assert result.kept.email == "a2@example.com"
    assert crm.customers.search(email="a2@example.com").items[0].id == keep.id
    assert crm.customers.search(email="a@example.com").total == 0


def test_a_chain_of_merges_resolves_to_the_last_kept(crm: CRM) -> None:
    a, b, c = (crm.customers.create({"name": n}) for n in ("a", "b", "c"))
    assert a.id and b.id and c.id
    crm.customers.merge(b.id, c.id)
    crm.customers.merge(a.id, b.id)
    assert crm.customers.get(c.id).id == a.id
    assert crm.customers.get(b.id).id == a.id


def test_merge_is_audited_and_emits_an_event(crm: CRM, pair: tuple[int, int]) -> None:
    keep, dup = pair
    crm.customers.merge(keep, dup, actor="ops")
    entries = crm.audit.query(action="customer.merge", customer_id=keep).items
    assert len(entries) == 1 and entries[0].details["merged_id"] == dup
    merged = crm.events.list(type="customer.merged")
    assert [(e.customer_id, e.data["merged_id"]) for e in merged] == [(keep, dup)]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"choose": {"stage": "duplicate"}}, ValidationError, "choose.stage"),
        ({"choose": {"name": "both"}}, ValidationError, "'both' is not 'keep' or 'duplicate'"),
        ({"choose": ["name"]}, ValidationError, "choose: expected a mapping"),
    ],
)
def test_bad_choices_are_refused_and_nothing_changes(
    crm: CRM, pair: tuple[int, int], kwargs: dict[str, object], error: type, match: str
) -> None:
    keep, dup = pair
    with pytest.raises(error, match=match):
        crm.customers.merge(keep, dup, **kwargs)  # type: ignore[arg-type]
    assert _count(crm, customers, id=dup) == 1
    assert _count(crm, interactions, customer_id=dup) == 2


def test_refusals(crm: CRM, pair: tuple[int, int]) -> None:
    keep, dup = pair
    with pytest.raises(ValidationError, match="into itself"):
        crm.customers.merge(keep, keep)
    with pytest.raises(NotFoundError, match="customer 999999 does not exist"):
        crm.customers.merge(keep, 999999)
    with pytest.raises(ValidationError, match="duplicate_id: expected a customer id"):
        crm.customers.merge(keep, "2")  # type: ignore[arg-type]
    crm.customers.erase(dup, vacuum="none")
    with pytest.raises(ConflictError, match="was erased"):
        crm.customers.merge(keep, dup)
    with pytest.raises(ConflictError, match="was erased"):
        crm.customers.merge(dup, keep)


def test_dry_run_changes_nothing(crm: CRM, pair: tuple[int, int]) -> None:
    keep, dup = pair
    result = crm.customers.merge(keep, dup, dry_run=True)
    assert result.moved["crm_interactions.customer_id"] == 2
    assert _count(crm, customers, id=dup) == 1
    assert _count(crm, customer_merges) == 0


def test_a_failing_plugin_rolls_the_merge_back(crm_factory) -> None:  # type: ignore[no-untyped-def]
    from crmcore.hooks import hookimpl

    class Refuses:
        @hookimpl
        def crm_customers_merged(self, ctx, kept, merged):  # type: ignore[no-untyped-def]
            raise RuntimeError("plugin refuses")

    crm = crm_factory(plugins=[Refuses()])
    a = crm.customers.create({"name": "a"})
    b = crm.customers.create({"name": "b"})
    crm.interactions.record({"customer_id": b.id, "kind": "call", "occurred_at": WHEN})
    with pytest.raises(Exception, match="plugin refuses"):
        crm.customers.merge(a.id, b.id)
    assert _count(crm, customers, id=b.id) == 1
    assert _count(crm, interactions, customer_id=b.id) == 1


def test_an_agent_needs_write_on_the_kept_and_delete_on_the_duplicate(
    crm: CRM, pair: tuple[int, int]
) -> None:
    keep, dup = pair
    alice = crm.as_user(Principal("alice", Role.AGENT))
    with pytest.raises(AccessDeniedError):
        alice.customers.merge(keep, dup)
    manager = crm.as_user(Principal("meg", Role.MANAGER))
    assert manager.customers.merge(keep, dup).kept.id == keep


def _cli(db_url: str, *args: str) -> Any:
    argv = ["--db", db_url, *args]
    return CliRunner().invoke(build_cli(argv), argv)


def test_cli_merge_dry_run_then_merge(crm_factory: Any, db_url: str) -> None:
    crm = crm_factory(discover=True)
    a = crm.customers.create({"name": "Acme", "email": "a@acme.test"})
    b = crm.customers.create({"name": "ACME Ltd", "phone": "+1 650 253 0000"})
    crm.interactions.record({"customer_id": b.id, "kind": "call", "occurred_at": WHEN})
    dry = _cli(db_url, "customers", "merge", str(a.id), str(b.id), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: would merge" in dry.output and "Nothing was changed" in dry.output
    assert _count(crm, customers, id=b.id) == 1
    refused = _cli(db_url, "customers", "merge", str(a.id), str(b.id), "--choose", "name=both")
    assert refused.exit_code != 0 and "FIELD=keep or FIELD=duplicate" in refused.output
    done = _cli(
        db_url, "customers", "merge", str(a.id), str(b.id), "--choose", "name=duplicate", "--yes"
    )
    assert done.exit_code == 0, done.output
    assert f"Merged customer {b.id} into {a.id}" in done.output
    assert crm.customers.get(a.id).name == "ACME Ltd"
    assert _count(crm, interactions, customer_id=a.id) == 1
    again = _cli(db_url, "customers", "merge", str(a.id), str(b.id), "--yes")
    assert again.exit_code == 1 and "already merged" in again.output


def test_a_merged_id_is_never_handed_out_again(crm: CRM) -> None:
    keep = crm.customers.create({"name": "keep"})
    newest = crm.customers.create({"name": "newest"})
    assert keep.id and newest.id
    crm.customers.merge(keep.id, newest.id)
    fresh = crm.customers.create({"name": "after the merge"})
    assert fresh.id is not None and fresh.id > newest.id
    assert crm.customers.get(newest.id).id == keep.id


def test_a_merge_moves_the_duplicates_contacts_and_links(crm: CRM) -> None:
    org = crm.customers.create({"name": "Huawei Technologies", "kind": "organization"})
    li = crm.customers.create({"name": "Li Wei", "email": "li.wei@huawei.test"})
    li_again = crm.customers.create({"name": "Wei Li", "phone": "+86 138 0013 8000"})
    friend = crm.customers.create({"name": "Zhang San"})
    assert org.id and li.id and li_again.id and friend.id
    crm.accounts.add_contact(org.id, li_again.id, role="decision_maker", job_title="CPO")
    crm.accounts.link(friend.id, li_again.id, "referred_by")
    result = crm.customers.merge(li.id, li_again.id)
    assert result.moved["crm_contacts.person_id"] == 1
    (contact,) = crm.accounts.contacts(org.id)
    assert contact.person_id == li.id and contact.role == "decision_maker"
    assert [(link.from_id, link.to_id) for link in crm.accounts.links(friend.id)] == [
        (friend.id, li.id)
    ]
