"""Issue 11 item 8: the customer pool, claims, assignment rules, reassignment and recycling."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from crmcore import CRM, Config, ConfigError, ConflictError, ValidationError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.cli import build_cli
from crmcore.model.pool import PoolSettings
from crmcore.storage.tables import audit_log, customers
from crmcore.testing import FrozenClock

ALICE = Principal("alice", Role.AGENT)
BOB = Principal("bob", Role.AGENT)
MEG = Principal("meg", Role.MANAGER)


def _owner(crm: CRM, customer_id: int) -> str | None:
    with crm.engine.connect() as conn:
        return conn.execute(select(customers.c.owner).where(customers.c.id == customer_id)).scalar()


def test_agents_see_only_the_configured_fields_of_unowned_customers(crm: CRM) -> None:
    free = crm.customers.create(
        {"name": "Free Co", "email": "free@co.test", "kind": "organization", "industry": "tea"}
    )
    crm.customers.create({"name": "Owned", "owner": "carol"})
    page = crm.as_user(ALICE).pool.list()
    assert page.total == 1
    (item,) = page.items
    assert item["id"] == free.id and item["name"] == "Free Co" and item["industry"] == "tea"
    assert "email" not in item and "phone" not in item and "owner" not in item
    with pytest.raises(AccessDeniedError):
        crm.as_user(ALICE).customers.get(free.id)  # the pool shows part, not everything


def test_claim_makes_the_agent_the_owner_once(crm: CRM) -> None:
    free = crm.customers.create({"name": "Free"})
    assert free.id is not None
    claimed = crm.as_user(ALICE).pool.claim(free.id)
    assert claimed.owner == "alice"
    assert crm.as_user(ALICE).customers.get(free.id).owner == "alice"
    with pytest.raises(ConflictError, match="not in the pool"):
        crm.as_user(BOB).pool.claim(free.id)
    with pytest.raises(AccessDeniedError, match="for themself only"):
        crm.as_user(BOB).pool.claim(free.id, user="carol")
    with pytest.raises(ValidationError, match="user: name who claims"):
        crm.pool.claim(free.id)
    with crm.engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action)).scalars().all()
    assert "customer.claim" in actions
    assert [e.data["changed"] for e in crm.events.list(type="customer.updated")] == [["owner"]]


def _claim_in_process(url: str, customer_id: int, user: str, start: Any, results: Any) -> None:
    crm = CRM.open(url, discover=False)
    try:
        start.wait()
        crm.as_user(Principal(user, Role.AGENT)).pool.claim(customer_id)
        results.put((user, "won"))
    except ConflictError:
        results.put((user, "lost"))
    except Exception as exc:  # reported, so the assertion shows it
        results.put((user, f"error: {exc!r}"))
    finally:
        crm.close()


def test_concurrent_claims_in_processes_have_exactly_one_winner(db_url: str) -> None:
    crm = CRM.open(db_url, discover=False, upgrade=True)
    try:
        free = crm.customers.create({"name": "Contested"})
        assert free.id is not None
        context = multiprocessing.get_context("spawn")
        start = context.Event()
        results = context.Queue()
        users = [f"agent{n}" for n in range(6)]
        workers = [
            context.Process(target=_claim_in_process, args=(db_url, free.id, u, start, results))
            for u in users
        ]
        for w in workers:
            w.start()
        start.set()
        for w in workers:
            w.join(timeout=120)
        outcome = dict(results.get(timeout=5) for _ in users)
        winners = [u for u, r in outcome.items() if r == "won"]
        assert len(winners) == 1, outcome
        assert sorted(r for r in outcome.values() if r != "won") == ["lost"] * 5, outcome
        assert _owner(crm, free.id) == winners[0]
    finally:
        crm.close()


def test_release_puts_a_customer_back(crm: CRM) -> None:
    mine = crm.customers.create({"name": "Mine", "owner": "alice"})
    assert mine.id is not None
    with pytest.raises(AccessDeniedError):
        crm.as_user(ALICE).pool.release(mine.id)  # agents ask a manager
    assert crm.as_user(MEG).pool.release(mine.id).owner is None
    with pytest.raises(ConflictError, match="already in the pool"):
        crm.pool.release(mine.id)
    assert crm.as_user(BOB).pool.list().total == 1


def test_reassign_hands_over_every_customer_in_one_transaction(crm: CRM) -> None:
    ids = [crm.customers.create({"name": f"c{n}", "owner": "alice"}).id for n in range(5)]
    other = crm.customers.create({"name": "other", "owner": "carol"})
    dry = crm.as_user(MEG).pool.reassign("alice", "bob", dry_run=True)
    assert dry.count == 5 and dry.dry_run
    assert all(_owner(crm, i) == "alice" for i in ids if i)
    done = crm.as_user(MEG).pool.reassign("alice", "bob")
    assert set(done.customer_ids) == set(ids)
    assert all(_owner(crm, i) == "bob" for i in ids if i)
    assert other.id and _owner(crm, other.id) == "carol"
    with crm.engine.connect() as conn:
        entries = (
            conn.execute(
                select(audit_log.c.details).where(audit_log.c.action == "customer.reassign")
            )
            .scalars()
            .all()
        )
    assert len(entries) == 1  # one batch entry listing every id
    assert crm.pool.reassign("alice", "bob").count == 0


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (("alice", "alice"), ValidationError, "to_owner: must differ"),
        (("", "bob"), ValidationError, "from_owner: give a user name"),
        (("alice", "b\x00b"), ValidationError, "to_owner"),
    ],
)
def test_reassign_bad_input(crm: CRM, args: tuple[str, str], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        crm.pool.reassign(*args)


def test_agents_may_not_reassign_or_recycle(crm: CRM) -> None:
    with pytest.raises(AccessDeniedError):
        crm.as_user(ALICE).pool.reassign("alice", "bob")
    with pytest.raises(AccessDeniedError):
        crm.as_user(ALICE).pool.recycle(30)


def test_recycle_returns_uncontacted_customers_and_is_idempotent(
    crm: CRM, clock: FrozenClock
) -> None:
    start = clock.now
    quiet = crm.customers.create({"name": "quiet", "owner": "alice"})
    busy = crm.customers.create({"name": "busy", "owner": "alice"})
    assert quiet.id and busy.id
    clock.advance(days=100)
    crm.interactions.record(
        {"customer_id": busy.id, "kind": "call", "occurred_at": clock.now - timedelta(days=3)}
    )
    young = crm.customers.create({"name": "young", "owner": "alice"})
    assert young.id
    dry = crm.pool.recycle(30, dry_run=True)
    assert dry.customer_ids == (quiet.id,)
    assert _owner(crm, quiet.id) == "alice"
    assert crm.pool.recycle(30).customer_ids == (quiet.id,)
    assert _owner(crm, quiet.id) is None and _owner(crm, busy.id) == "alice"
    assert _owner(crm, young.id) == "alice"
    assert crm.pool.recycle(30).count == 0
    assert clock.now > start
    with pytest.raises(ValidationError, match="days: give --days"):
        crm.pool.recycle()
    with pytest.raises(ValidationError, match="days: must be 1 to 36500"):
        crm.pool.recycle(0)


def test_round_robin_assignment_of_new_customers(crm_factory: Any) -> None:
    crm = crm_factory(pool=PoolSettings(assignment="round_robin", team=("alice", "bob", "carol")))
    created = crm.customers.create_many([{"name": f"n{n}"} for n in range(6)])
    owners = [c.owner for c in created]
    assert sorted(owners) == ["alice", "alice", "bob", "bob", "carol", "carol"]
    assert owners[:3] == owners[3:]  # in turn
    assert crm.customers.create({"name": "kept", "owner": "dan"}).owner == "dan"
    assert (
        crm.as_user(Principal("erin", Role.AGENT)).customers.create({"name": "e"}).owner == "erin"
    )


def test_weighted_sequence_is_smooth() -> None:
    settings = PoolSettings(assignment="weighted", weights={"alice": 2, "bob": 1})
    assert settings.sequence() == ("alice", "bob", "alice")
    five = PoolSettings(assignment="weighted", weights={"a": 5, "b": 1, "c": 1}).sequence()
    assert five == ("a", "a", "b", "a", "c", "a", "a")


def test_weighted_assignment_of_new_customers(crm_factory: Any) -> None:
    crm = crm_factory(pool=PoolSettings(assignment="weighted", weights={"alice": 2, "bob": 1}))
    owners = [c.owner for c in crm.customers.create_many([{"name": f"w{n}"} for n in range(9)])]
    assert owners.count("alice") == 6 and owners.count("bob") == 3


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"assignment": "random"}, "pool.assignment"),
        ({"assignment": "round_robin"}, "pool.team: round_robin assignment needs"),
        ({"assignment": "weighted", "weights": {"a": 0}}, "pool.weights.a: must be 1 to 100"),
        ({"visible_fields": ["salary"]}, "pool.visible_fields: 'salary' is not a customer field"),
        ({"recycle_after_days": 0}, "pool.recycle_after_days"),
    ],
)
def test_bad_pool_config_is_refused(section: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Config.from_mapping({"pool": section})


def test_pool_listing_bad_paging(crm: CRM) -> None:
    with pytest.raises(ValidationError):
        crm.pool.list(limit=0)


def test_claim_of_an_unknown_customer(crm: CRM) -> None:
    from crmcore import NotFoundError

    with pytest.raises(NotFoundError):
        crm.as_user(ALICE).pool.claim(424242)


def test_claim_keeps_the_time(crm: CRM, clock: FrozenClock) -> None:
    free = crm.customers.create({"name": "Free"})
    assert free.id is not None
    clock.advance(hours=2)
    claimed = crm.as_user(ALICE).pool.claim(free.id)
    assert claimed.updated_at == clock.now
    assert claimed.updated_at == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)


def _cli(db_url: str, *args: str) -> Any:
    argv = ["--db", db_url, *args]
    return CliRunner().invoke(build_cli(argv), argv)


def test_cli_pool_claim_release_reassign_recycle(crm_factory: Any, db_url: str) -> None:
    crm = crm_factory(discover=True)
    free = crm.customers.create({"name": "Pooled Tea Co", "email": "secret@tea.test"})
    listed = _cli(db_url, "--user", "alice", "--role", "agent", "pool", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert "Pooled Tea Co" in listed.output and "secret@tea.test" not in listed.output
    claimed = _cli(db_url, "--user", "alice", "--role", "agent", "pool", "claim", str(free.id))
    assert claimed.exit_code == 0 and "now owned by alice" in claimed.output, claimed.output
    again = _cli(db_url, "--user", "bob", "--role", "agent", "pool", "claim", str(free.id))
    assert again.exit_code == 1 and "not in the pool" in again.output
    dry = _cli(db_url, "customers", "reassign", "--from", "alice", "--to", "bob", "--dry-run")
    assert dry.exit_code == 0 and "would move 1 customer(s)" in dry.output, dry.output
    assert _owner(crm, free.id) == "alice"
    asked = _cli(db_url, "customers", "reassign", "--from", "alice", "--to", "bob")
    assert asked.exit_code == 1 and "pass --yes" in asked.output
    done = _cli(db_url, "customers", "reassign", "--from", "alice", "--to", "bob", "--yes")
    assert done.exit_code == 0 and "Moved 1 customer(s)" in done.output
    assert _owner(crm, free.id) == "bob"
    agent = _cli(db_url, "--user", "bob", "--role", "agent", "pool", "recycle", "--days", "1")
    assert agent.exit_code == 1 and "may not" in agent.output
    swept = _cli(db_url, "pool", "recycle", "--days", "1", "--dry-run")
    assert swept.exit_code == 0 and "would move 1 customer(s)" in swept.output  # created in January
    assert _owner(crm, free.id) == "bob"
    refused = _cli(db_url, "--user", "bob", "--role", "agent", "pool", "release", str(free.id))
    assert refused.exit_code == 1 and "may not" in refused.output
    back = _cli(db_url, "--user", "meg", "--role", "manager", "pool", "release", str(free.id))
    assert back.exit_code == 0, back.output
    assert _owner(crm, free.id) is None
