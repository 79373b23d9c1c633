"""The audit log: every write with its actor, no sensitive values, erased customers forgotten."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from crmcore import CRM, ValidationError
from crmcore.audit import AuditEntry
from crmcore.cli import build_cli
from crmcore.testing import FrozenClock


def actions(crm: CRM, **filters: object) -> list[tuple[str, str | None, int | None]]:
    page = crm.audit.query(limit=1000, **filters)  # type: ignore[arg-type]
    return [(e.action, e.actor, e.customer_id) for e in reversed(page.items)]


def test_every_write_is_audited_with_actor(crm: CRM, clock: FrozenClock) -> None:
    ada = crm.customers.create({"name": "Ada", "email": "ada@x.org"}, actor="alice")
    assert ada.id is not None
    clock.advance(minutes=1)
    crm.customers.update(ada.id, {"email": "ada@y.org", "owner": "bob"}, actor="bob")
    crm.interactions.record(
        {
            "customer_id": ada.id,
            "kind": "purchase",
            "amount": "3",
            "currency": "EUR",
            "occurred_at": "2025-01-01T00:00:00+00:00",
        },
        actor="pos-terminal",
    )
    crm.lifecycle.move(ada.id, "active", actor="carol")
    assert actions(crm) == [
        ("customer.create", "alice", ada.id),
        ("customer.update", "bob", ada.id),
        ("interaction.record", "pos-terminal", ada.id),
        ("lifecycle.move", "pos-terminal", ada.id),  # the automatic first-purchase move
        ("lifecycle.move", "carol", ada.id),
    ]
    update = crm.audit.query(action="customer.update").items[0]
    assert update.details["changed"]["owner"] == {"from": None, "to": "bob"}
    assert update.details["changed"]["email"] == {"from": "[redacted]", "to": "[redacted]"}
    assert update.at == clock.now
    assert [e.action for e in crm.audit.query(action="lifecycle.*").items] == ["lifecycle.move"] * 2
    assert crm.audit.query(actor="bob").total == 1
    assert crm.audit.query(since=clock.now).total == 4


def test_failed_operation_leaves_no_audit_entry(crm: CRM) -> None:
    with pytest.raises(ValidationError):
        crm.customers.create_many([{"name": "ok"}, {"name": ""}])
    assert crm.audit.query().total == 0


def test_erase_redacts_the_customers_entries(crm: CRM) -> None:
    ada = crm.customers.create({"name": "Ada Lovelace", "email": "ada@x.org"})
    assert ada.id is not None
    crm.customers.update(ada.id, {"name": "Ada King"})
    crm.customers.erase(ada.id, actor="dpo")
    dumped = json.dumps([e.details for e in crm.audit.query(customer_id=ada.id).items])
    assert "Ada" not in dumped and "ada@x.org" not in dumped
    assert actions(crm)[-1] == ("customer.erase", "dpo", ada.id)


def test_plugins_record_their_own_entries(crm: CRM) -> None:
    with crm.unit_of_work(actor="plugin-user") as uow:
        crm.audit.record(uow, [AuditEntry("loyalty.redeem", "ledger", 7, None, {"points": 5})])
        with pytest.raises(ValidationError, match="action"):
            crm.audit.record(uow, [AuditEntry("", "x")])
    [entry] = crm.audit.query(entity="ledger").items
    assert (entry.actor, entry.details) == ("plugin-user", {"points": 5})


def test_audit_cli(db_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(build_cli(), ["--db", db_url, "init"]).exit_code == 0
    add = ["--db", db_url, "--actor", "alice", "customers", "add", "--name", "Ada"]
    assert runner.invoke(build_cli(), add).exit_code == 0
    result = runner.invoke(build_cli(), ["--db", db_url, "audit", "--actor", "alice", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"] == 1 and data["items"][0]["action"] == "customer.create"
    bad = runner.invoke(build_cli(), ["--db", db_url, "audit", "--since", "soon"])
    assert bad.exit_code == 1 and "--since" in bad.output
    assert datetime.fromisoformat(data["items"][0]["at"]).tzinfo == UTC


def test_batch_writes_get_one_entry_per_batch_listing_every_id(crm: CRM) -> None:
    people = crm.customers.create_many(
        [{"name": f"P{i}"} for i in range(5)] + [{"name": "Lead", "stage": "active"}],
        actor="importer",
    )
    ids = [c.id for c in people]
    assert all(isinstance(i, int) for i in ids)
    first, last = ids[0], ids[-1]
    creates = crm.audit.query(action="customer.create").items
    # One entry per distinct detail set: five prospects, one active customer.
    assert sorted(e.details["count"] for e in creates) == [1, 5]
    prospects = next(e for e in creates if e.details["stage"] == "prospect")
    assert prospects.entity_id is None and prospects.customer_id is None
    assert prospects.actor == "importer"
    assert prospects.details["ids"] == [[first, ids[4]]]
    assert prospects.details["customer_ids"] == ids[:5]
    crm.interactions.record_many(
        [
            {"customer_id": cid, "kind": "call", "occurred_at": "2025-01-01T00:00:00+00:00"}
            for cid in (first, first, last)
        ]
    )
    recorded = crm.audit.query(action="interaction.record").items
    assert len(recorded) == 1
    assert recorded[0].details["count"] == 3
    assert recorded[0].details["customer_ids"] == [first, last]
    # Querying by customer finds the batch entries that list them, and only those.
    assert [e.action for e in crm.audit.query(customer_id=last).items] == [
        "interaction.record",
        "customer.create",
    ]
    assert [e.action for e in crm.audit.query(customer_id=ids[2]).items] == ["customer.create"]
    assert crm.audit.query(customer_id=last + 100).total == 0
    # A batch entry holds ids only, so erasing a customer leaves it whole.
    crm.customers.erase(first)
    assert crm.audit.query(action="interaction.record").items[0].details["customer_ids"] == [
        first,
        last,
    ]


def test_batch_entry_runs_compress_consecutive_ids(crm: CRM) -> None:
    from crmcore.audit import _runs

    assert _runs([7, 3, 4, 5, 9, 10]) == [[3, 5], [7, 7], [9, 10]]
    assert _runs([]) == []
