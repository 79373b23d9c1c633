"""Roles, ownership and grants, enforced in the service layer for the API and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmcore import CRM, Customer, Period, ValidationError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.cli import build_cli
from crmcore.hooks import hookimpl
from crmcore.pytest_plugin import CRMFactory

T0 = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def shop(crm: CRM) -> CRM:
    crm.customers.create_many(
        [
            {"name": "Alice's client", "email": "a@x.org", "owner": "alice"},
            {"name": "Bob's client", "email": "b@x.org", "owner": "bob"},
            {"name": "Nobody's client", "email": "n@x.org"},
        ]
    )
    return crm


def test_agent_sees_and_changes_only_own_customers(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice", Role.AGENT))
    assert [c.name for c in alice.customers.search().items] == ["Alice's client"]
    assert alice.customers.get(1).owner == "alice"
    with pytest.raises(AccessDeniedError, match=r"alice \(agent\) may not read customer 2"):
        alice.customers.get(2)
    with pytest.raises(AccessDeniedError):
        alice.customers.update(2, {"industry": "retail"})
    with pytest.raises(AccessDeniedError):
        alice.interactions.record({"customer_id": 2, "kind": "call", "occurred_at": T0})
    with pytest.raises(AccessDeniedError):
        alice.lifecycle.move(2, "new")
    with pytest.raises(AccessDeniedError):
        alice.interactions.timeline(2)
    with pytest.raises(AccessDeniedError):
        alice.customers.delete(1)
    with pytest.raises(AccessDeniedError):
        alice.customers.erase(1)
    with pytest.raises(AccessDeniedError):
        alice.audit.query()
    with pytest.raises(AccessDeniedError):
        alice.metrics(Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)))
    # Her own customer: allowed, and recorded as her doing.
    alice.customers.update(1, {"industry": "retail"})
    alice.interactions.record({"customer_id": 1, "kind": "call", "occurred_at": T0})
    assert shop.interactions.list().total == 1
    assert alice.interactions.list().total == 1
    assert shop.as_user(Principal("bob")).interactions.list().total == 0
    assert shop.audit.query(actor="alice").total == 2
    # Giving a customer away is a write on a customer she would no longer own.
    with pytest.raises(AccessDeniedError):
        alice.customers.update(1, {"owner": "bob"})
    assert shop.customers.get(1).owner == "alice"


def test_agent_creates_customers_for_themselves(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice"))
    created = alice.customers.create({"name": "New lead"})
    assert created.owner == "alice"
    with pytest.raises(AccessDeniedError):
        alice.customers.create({"name": "For Bob", "owner": "bob"})
    assert shop.customers.search(name="For Bob").total == 0


def test_batch_is_refused_whole_when_one_customer_is_not_the_agents(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice"))
    with pytest.raises(AccessDeniedError):
        alice.interactions.record_many(
            [{"customer_id": cid, "kind": "call", "occurred_at": T0} for cid in (1, 2)]
        )
    assert shop.interactions.list().total == 0


def test_grants(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice"))
    with pytest.raises(AccessDeniedError, match="may not grant"):
        alice.access.grant(2, "alice")
    manager = shop.as_user(Principal("mona", Role.MANAGER))
    manager.access.grant(2, "alice")
    manager.access.grant(2, "alice")  # idempotent
    assert [c.id for c in alice.customers.search().items] == [1, 2]
    alice.customers.update(2, {"industry": "retail"})
    manager.access.revoke(2, "alice")
    with pytest.raises(AccessDeniedError):
        alice.customers.get(2)
    from crmcore import NotFoundError

    with pytest.raises(NotFoundError):
        manager.access.revoke(2, "alice")


def test_manager_and_admin(shop: CRM) -> None:
    manager = shop.as_user(Principal("mona", Role.MANAGER))
    assert manager.customers.search().total == 3
    manager.customers.update(2, {"owner": "alice"})
    manager.customers.delete(3)
    assert manager.audit.query().total > 0
    with pytest.raises(AccessDeniedError, match="may not erase"):
        manager.customers.erase(1)
    shop.as_user(Principal("root", Role.ADMIN)).customers.erase(1)
    assert shop.customers.get(1).name == "erased customer 1"


def test_bad_principal() -> None:
    with pytest.raises(ValidationError, match="role: 'boss'"):
        Principal("x", "boss")
    with pytest.raises(ValidationError, match="user: must not be empty"):
        Principal(" ")


class NightShift:
    """An embedding app's own rule: the night shift may read everything, nobody else decides."""

    crm_plugin_name = "nightshift"

    @hookimpl
    def crm_authorize(
        self, crm: CRM, principal: Principal, action: str, customer: Customer | None
    ) -> bool | None:
        if principal.user == "night":
            return action == "read"
        if principal.user == "banned":
            return False
        return None


def test_authorization_hook(crm_factory: CRMFactory) -> None:
    crm = crm_factory(plugins=[NightShift()])
    crm.customers.create_many([{"name": "A", "owner": "alice"}, {"name": "B", "owner": "bob"}])
    night = crm.as_user(Principal("night"))
    assert night.customers.search().total == 2
    assert night.customers.get(2).name == "B"
    with pytest.raises(AccessDeniedError):
        night.customers.update(2, {"industry": "x"})
    banned = crm.as_user(Principal("banned", Role.ADMIN))
    with pytest.raises(AccessDeniedError):
        banned.customers.get(1)
    alice = crm.as_user(Principal("alice"))
    assert alice.customers.search().total == 1  # default policy where the hook has no opinion


def test_cli_user_and_role(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def crm(*args: str) -> object:
        return runner.invoke(build_cli(), ["--db", db_url, *args])

    assert crm("init").exit_code == 0
    assert crm("customers", "add", "--name", "Bob's", "--owner", "bob").exit_code == 0
    assert crm("--user", "alice", "customers", "add", "--name", "Mine").exit_code == 0
    listed = crm("--user", "alice", "customers", "list", "--json")
    assert [c["name"] for c in json.loads(listed.output)["items"]] == ["Mine"]  # type: ignore[attr-defined]
    denied = crm("--user", "alice", "customers", "show", "1")
    assert denied.exit_code == 1  # type: ignore[attr-defined]
    assert "alice (agent) may not read customer 1" in denied.output  # type: ignore[attr-defined]
    assert (
        crm("--user", "mona", "--role", "manager", "access", "grant", "1", "alice").exit_code == 0
    )
    assert crm("--user", "alice", "customers", "show", "1").exit_code == 0
    audit = crm("audit", "--actor", "alice", "--json")
    assert json.loads(audit.output)["total"] == 1  # type: ignore[attr-defined]
    csv = tmp_path / "c.csv"
    csv.write_text("name\nX\n", encoding="utf-8")
    refused = crm("--user", "alice", "customers", "import", str(csv))
    assert refused.exit_code == 1 and "may not import" in refused.output  # type: ignore[attr-defined]
