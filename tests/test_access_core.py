"""Issue 16: core's services obey the principal on every path (conformance matrix and oracles)."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import ColumnElement

from crmcore import CRM, ConflictError, Customer, Period
from crmcore.access import AccessDeniedError, Action, Principal, Role
from crmcore.cli import build_cli
from crmcore.hooks import hookimpl
from crmcore.io.exports import export_customers, export_interactions
from crmcore.pytest_plugin import CRMFactory
from crmcore.storage.tables import customers as customers_table
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    fresh_customer,
    recorded_matrices,
    run_conformance,
)

T0 = "2026-01-01T00:00:00+00:00"
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
OWNER_CREATES = frozenset({"admin", "manager", "owner"})


def _interaction(customer_id: int) -> dict[str, Any]:
    return {"customer_id": customer_id, "kind": "call", "occurred_at": T0}


def _export(crm: CRM, s: Subjects) -> str:
    out = io.StringIO()
    export_customers(crm, out, format="jsonl")
    return out.getvalue()


def _export_interactions(crm: CRM, s: Subjects) -> str:
    out = io.StringIO()
    export_interactions(crm, out, format="jsonl")
    return out.getvalue()


def _apply(crm: CRM, s: Subjects) -> None:
    from crmcore.model.entities import LifecycleEvent, Stage

    with crm.unit_of_work() as uow:
        crm.lifecycle.apply(
            uow, [LifecycleEvent(customer_id=s.visible, to_stage=Stage.ACTIVE, at=uow.now)]
        )


def _contains(result: Any, customer_id: int, s: Subjects) -> bool:
    return isinstance(result, set | list) and customer_id in result


def _jsonl_names(result: Any, customer_id: int, s: Subjects) -> bool:
    return isinstance(result, str) and f'"customer_id": {customer_id}' in result.replace(
        '"customer_id":', '"customer_id": '
    ).replace("  ", " ")


CORE_CASES = [
    Case(
        "customers.create",
        lambda c, s: c.customers.create({"name": "kit new", "owner": "kit-owner"}),
        OWNER_CREATES,
    ),
    Case(
        "customers.create_many",
        lambda c, s: c.customers.create_many([{"name": "kit new 2", "owner": "kit-owner"}]),
        OWNER_CREATES,
    ),
    Case("customers.get", lambda c, s: c.customers.get(s.visible)),
    Case("customers.update", lambda c, s: c.customers.update(s.visible, {"industry": "kit"})),
    Case(
        "customers.delete",
        lambda c, s: c.customers.delete(s.fresh),
        EVERYONE_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "customers.erase", lambda c, s: c.customers.erase(s.fresh), ADMIN_ONLY, setup=fresh_customer
    ),
    Case("customers.exists", lambda c, s: c.customers.exists([s.visible]), reveals=_contains),
    Case("customers.search", lambda c, s: c.customers.search()),
    Case("customers.iter_all", lambda c, s: list(c.customers.iter_all())),
    Case(
        "customers.find_duplicate",
        lambda c, s: c.customers.find_duplicate(
            {"name": "x", "email": f"kitmark-{s.visible}@kit.example"}
        ),
        reveals=lambda r, cid, s: r == cid,
    ),
    Case("customers.profile", lambda c, s: c.customers.profile(s.visible)),
    Case("customers.export", lambda c, s: c.customers.export(s.visible), EVERYONE_ONLY),
    Case("interactions.record", lambda c, s: c.interactions.record(_interaction(s.visible))),
    Case(
        "interactions.record_many",
        lambda c, s: c.interactions.record_many([_interaction(s.visible)]),
    ),
    Case("interactions.list", lambda c, s: c.interactions.list()),
    Case("interactions.timeline", lambda c, s: c.interactions.timeline(s.visible)),
    Case("lifecycle.move", lambda c, s: c.lifecycle.move(s.visible, "new")),
    Case("lifecycle.move_many", lambda c, s: c.lifecycle.move_many([(s.visible, "new", None)])),
    Case("lifecycle.apply", _apply),
    Case("lifecycle.history", lambda c, s: c.lifecycle.history(s.visible)),
    Case("audit.query", lambda c, s: c.audit.query(customer_id=s.visible), EVERYONE_ONLY),
    Case("access.grant", lambda c, s: c.access.grant(s.visible, "kit-x"), EVERYONE_ONLY),
    Case("access.guard", lambda c, s: c.access.guard(None, [s.visible], Action.WRITE)),
    Case("access.visible_ids", lambda c, s: c.access.visible_ids(), reveals=None),
    Case("metrics", lambda c, s: c.metrics(PERIOD), EVERYONE_ONLY),
    Case("churn_signals", lambda c, s: c.churn_signals([s.visible]), EVERYONE_ONLY),
    Case("events.list", lambda c, s: c.events.list(), EVERYONE_ONLY),
    Case("exports.export_customers", _export, EVERYONE_ONLY),
    Case("exports.export_interactions", _export_interactions, EVERYONE_ONLY),
    Case("imports.import_customers", lambda c, s: _import(c, s), EVERYONE_ONLY),
    Case("customers.rotate_encryption", lambda c, s: c.customers.rotate_encryption(), ADMIN_ONLY),
    Case("customers.stored_forms", lambda c, s: c.customers.stored_forms("email", "a@x.org")),
    Case(
        "customers.get_by_external_id",
        lambda c, s: c.customers.get_by_external_id("kit", f"v-{s.visible}"),
        setup=lambda c, s: _external_id(c, s, f"v-{s.visible}"),
    ),
    Case("customers.external_ids", lambda c, s: c.customers.external_ids(s.visible)),
    Case(
        "customers.update_many",
        lambda c, s: c.customers.update_many([(s.visible, {"industry": uuid.uuid4().hex[:8]})]),
    ),
    Case(
        "customers.add_external_id",
        lambda c, s: c.customers.add_external_id(s.visible, "kit", uuid.uuid4().hex),
    ),
    Case(
        "customers.remove_external_id",
        lambda c, s: c.customers.remove_external_id(s.visible, "kit", "rm"),
        setup=lambda c, s: _external_id(c, s, "rm"),
    ),
    Case("imports.import_customers.update_existing", lambda c, s: _upsert(c, s), EVERYONE_ONLY),
    Case("access.revoke", lambda c, s: c.access.revoke(s.visible, "kit-granted"), EVERYONE_ONLY),
    Case("access.where", lambda c, s: _scoped_ids(c)),
    Case("access.visible_customers", lambda c, s: _visible_rows(c)),
    Case("events.iter", lambda c, s: list(c.events.iter()), EVERYONE_ONLY),
]


def _external_id(crm: CRM, s: Subjects, external_id: str) -> None:
    crm.customers.add_external_id(s.visible, "kit", external_id)


def _upsert(crm: CRM, s: Subjects) -> Any:
    import tempfile

    from crmcore.io.imports import import_customers

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.csv"
        row = f"kitmark-{s.visible}-name,kitmark-{s.visible}@kit.example,{uuid.uuid4().hex[:8]}"
        path.write_text(f"name,email,industry\n{row}\n", "utf-8")
        result = import_customers(crm, path, update_existing=True, match="email")
        assert (result.created, result.updated) == (0, 1)
        return result


def _import(crm: CRM, s: Subjects) -> Any:
    import tempfile

    from crmcore.io.imports import import_customers

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.csv"
        path.write_text(f"name,owner\nkit import {uuid.uuid4().hex[:6]},kit-owner\n", "utf-8")
        return import_customers(crm, path)


def _scoped_ids(crm: CRM) -> list[dict[str, int]]:
    from sqlalchemy import select

    with crm.reading() as uow:
        ids = uow.connection.execute(
            select(customers_table.c.id).where(crm.access.where(customers_table.c.id))
        ).scalars()
        return [{"customer_id": i} for i in ids]


def _visible_rows(crm: CRM) -> list[dict[str, int]]:
    from sqlalchemy import select

    visible = crm.access.visible_customers()
    with crm.reading() as uow:
        return [{"customer_id": i} for i in uow.connection.execute(select(visible.c.id)).scalars()]


def test_core_conformance_matrix(crm: CRM) -> None:
    matrix = run_conformance(crm, "core", CORE_CASES)
    print(matrix.format())
    matrix.assert_clean()
    assert len(matrix.cells) == 5 * len(CORE_CASES)
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("customers.get", "foreign")] == "denied"
    assert outcome[("customers.update", "granted")] == "allowed"
    assert outcome[("customers.exists", "foreign")] == "nothing foreign"


@pytest.fixture
def shop(crm: CRM) -> CRM:
    crm.customers.create_many(
        [
            {"name": "Alice's", "email": "a@x.org", "owner": "alice", "attributes": {"r": "EU"}},
            {"name": "Bob's", "email": "b@x.org", "owner": "bob", "attributes": {"r": "US"}},
        ]
    )
    return crm


def test_identity_oracles_closed(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice"))
    assert alice.customers.exists([1, 2, 3, 99]) == {1}
    assert shop.customers.exists([1, 2, 3, 99]) == {1, 2}
    assert alice.customers.find_duplicate({"name": "x", "email": "a@x.org"}) == 1
    with pytest.raises(ConflictError) as refused:
        alice.customers.find_duplicate({"name": "x", "email": "b@x.org"})
    assert "customer 2" not in str(refused.value) and "may not see" in str(refused.value)
    with pytest.raises(ConflictError) as duplicate:
        alice.customers.create({"name": "Copy", "email": "b@x.org"})
    assert "2" not in str(duplicate.value) and duplicate.value.existing_id is None
    assert shop.customers.search(name="Copy").total == 0
    with pytest.raises(ConflictError, match="already belongs to customer 2"):
        shop.customers.create({"name": "Copy", "email": "b@x.org"})


def test_guard_does_not_say_which_ids_exist(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice"))
    alice.access.guard(None, [1], Action.WRITE)
    with pytest.raises(AccessDeniedError) as foreign:
        alice.access.guard(None, [1, 2], Action.WRITE)
    with pytest.raises(AccessDeniedError) as missing:
        alice.access.guard(None, [1, 99], Action.WRITE)
    assert str(foreign.value) == str(missing.value)


class EUManagers:
    """Managers see European customers only; decided per customer (no SQL answer)."""

    @hookimpl
    def crm_authorize(
        self, crm: CRM, principal: Principal, action: str, customer: Customer | None
    ) -> bool | None:
        if principal.role is Role.MANAGER and customer is not None:
            return customer.attributes.get("r") == "EU"
        return None


class EUManagersInSQL:
    """The same policy, with a SQL condition for listings."""

    @hookimpl
    def crm_authorize(
        self, crm: CRM, principal: Principal, action: str, customer: Customer | None
    ) -> bool | ColumnElement[bool] | None:
        if principal.role is not Role.MANAGER:
            return None
        if customer is None:
            return customers_table.c.name.like("Alice%")
        return customer.attributes.get("r") == "EU"


@pytest.mark.parametrize("policy", [EUManagers, EUManagersInSQL])
def test_authorize_hook_decides_listings(crm_factory: CRMFactory, policy: type) -> None:
    crm = crm_factory(plugins=[policy()])
    crm.customers.create_many(
        [
            {"name": "Alice's", "owner": "alice", "attributes": {"r": "EU"}},
            {"name": "Bob's", "owner": "bob", "attributes": {"r": "US"}},
        ]
    )
    crm.interactions.record(_interaction(2))
    mona = crm.as_user(Principal("mona", Role.MANAGER))
    with pytest.raises(AccessDeniedError):
        mona.customers.get(2)
    assert [c.id for c in mona.customers.search().items] == [1]
    assert mona.customers.search().total == 1
    assert [c.id for c in mona.customers.iter_all()] == [1]
    assert mona.customers.exists([1, 2]) == {1}
    assert mona.interactions.list().total == 0
    out = io.StringIO()
    assert export_customers(crm.as_user(Principal("root", Role.ADMIN)), out) == 2
    if policy is EUManagers:
        out = io.StringIO()
        export_customers(mona, out, format="jsonl")
        assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [1]
    with pytest.raises(AccessDeniedError):
        mona.access.guard(None, [1, 2], Action.READ)


def test_audit_actor_is_the_principal(shop: CRM) -> None:
    alice = shop.as_user(Principal("alice"))
    alice.customers.update(1, {"industry": "x"}, actor="mallory")
    entry = shop.audit.query(action="customer.update").items[0]
    assert (entry.actor, entry.on_behalf_of) == ("alice", "mallory")
    alice.customers.create({"name": "Mine"}, actor="alice")
    entry = shop.audit.query(action="customer.create").items[0]
    assert (entry.actor, entry.on_behalf_of) == ("alice", None)
    shop.customers.update(2, {"industry": "y"}, actor="import-job")  # trusted: names itself
    entry = shop.audit.query(action="customer.update").items[0]
    assert (entry.actor, entry.on_behalf_of) == ("import-job", None)
    assert shop.audit.query(actor="mallory").total == 0
    alice.lifecycle.move(1, "new", actor="mallory")
    assert shop.lifecycle.history(1)[-1].actor == "alice"


def test_cli_actor_cannot_impersonate(db_url: str) -> None:
    runner = CliRunner()

    def crm(*args: str) -> Any:
        return runner.invoke(build_cli(), ["--db", db_url, *args])

    assert crm("init").exit_code == 0
    result = crm("--user", "alice", "--actor", "bob", "customers", "add", "--name", "A")
    assert result.exit_code == 0, result.output
    entries = json.loads(crm("audit", "--json").output)["items"]
    assert [(e["actor"], e["on_behalf_of"]) for e in entries] == [("alice", "bob")]
    assert json.loads(crm("audit", "--actor", "bob", "--json").output)["total"] == 0


def test_role_switch_can_be_turned_off(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "crm.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n\n[access]\nallow_role_switch = false\n', encoding="utf-8"
    )
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(build_cli(), [*base, "init"]).exit_code == 0
    for switch in (["--user", "alice"], ["--role", "admin"]):
        refused = runner.invoke(build_cli(), [*base, *switch, "customers", "list"])
        assert refused.exit_code != 0
        assert "role switching is turned off" in refused.output
        assert "Traceback" not in refused.output
    assert runner.invoke(build_cli(), [*base, "customers", "list"]).exit_code == 0


def test_a_lost_race_does_not_name_a_hidden_winner(postgres_url: str) -> None:
    rival = CRM.open(postgres_url, discover=False, upgrade=True)

    class Racer:
        """Registers the same email for bob between the agent's pre-check and write."""

        @hookimpl
        def crm_validate_customers(self, ctx: Any, customers: Any) -> None:
            rival.customers.create({"name": "Winner", "email": "race@x.org", "owner": "bob"})

    crm = CRM.open(postgres_url, plugins=[Racer()], discover=False)
    try:
        alice = crm.as_user(Principal("alice"))
        with pytest.raises(ConflictError) as info:
            alice.customers.create({"name": "Loser", "email": "race@x.org"})
        assert str(info.value) == (
            "duplicate customer: email 'race@x.org' already belongs to a customer you may not "
            "see (registered concurrently)"
        )
        assert info.value.existing_id is None
    finally:
        crm.close()
        rival.close()


def _leaky_read(crm: CRM, s: Subjects) -> list[dict[str, Any]]:
    from sqlalchemy import select

    with crm.reading() as uow:  # raw SQL, no scope: a leak for agents
        rows = uow.connection.execute(select(customers_table.c.id, customers_table.c.name))
        return [{"customer_id": r.id, "name": r.name} for r in rows]


def _unchecked_write(crm: CRM, s: Subjects) -> None:
    from sqlalchemy import update

    with crm.unit_of_work() as uow:  # raw SQL, no guard: an unauthorised write
        uow.connection.execute(
            update(customers_table)
            .where(customers_table.c.id == s.visible)
            .values(industry=uuid.uuid4().hex[:12])
        )


def test_the_kit_catches_leaks_writes_and_wrong_refusals(crm: CRM) -> None:
    cases = [
        Case("leaky_read", _leaky_read),
        Case("unchecked_write", _unchecked_write),
        Case("too_strict", lambda c, s: c.access.require(Action.ERASE)),
    ]
    matrix = run_conformance(
        crm, "careless", cases, functions=["leaky_read", "forgotten"], record=False
    )
    bad = {(c.function, c.role): c.outcome for c in matrix.failures}
    assert bad[("leaky_read", "owner")] == "LEAK"  # sees the hidden customer
    assert bad[("leaky_read", "foreign")] == "LEAK"
    assert bad[("unchecked_write", "foreign")] == "UNAUTHORISED WRITE"
    assert bad[("too_strict", "manager")] == "denied"
    assert bad[("forgotten", "admin")] == "not covered"
    assert ("leaky_read", "admin") not in bad
    with pytest.raises(AssertionError, match="access conformance of careless failed"):
        matrix.assert_clean()
    assert matrix not in recorded_matrices()  # a self-test, left out of the report
