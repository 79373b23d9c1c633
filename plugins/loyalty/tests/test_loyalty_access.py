"""Issue 16: every loyalty service function obeys the principal and is audited."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from crmcore_loyalty import earning, kpis, membership, points, privacy, service, statements, tiers
from crmcore_loyalty.records import TierChange

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

MODULES = (service, points, tiers, membership, statements, privacy, kpis, earning)
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for cid in (visible, hidden):
        service.enroll(crm, cid)
        service.earn(crm, cid, 1000)
        data[cid] = crm.interactions.record(
            {
                "customer_id": cid,
                "kind": "purchase",
                "channel": "web",
                "occurred_at": crm.clock(),
                "amount": Decimal("12.00"),
                "currency": "EUR",
            }
        )
    data["visible_customer"] = crm.customers.get(visible)
    return data


def _enrolled_fresh(crm: CRM, s: Subjects) -> int:
    cid = fresh_customer(crm, s)
    service.enroll(crm, cid)
    return cid


CASES = [
    Case("membership.enroll", lambda c, s: service.enroll(c, s.fresh), setup=fresh_customer),
    Case(
        "membership.enroll_many",
        lambda c, s: service.enroll_many(c, [{"customer_id": s.fresh}]),
        setup=fresh_customer,
    ),
    Case("membership.leave", lambda c, s: service.leave(c, s.fresh), setup=_enrolled_fresh),
    Case(
        "membership.member_row",
        in_unit_of_work(
            lambda uow, s: dict(membership.member_row(uow, s.visible, lock=False)._mapping)
        ),
    ),
    Case(
        "membership.insert_members",
        in_unit_of_work(
            lambda uow, s: membership.insert_members(
                uow, [{"customer_id": s.fresh, "joined_at": uow.now}]
            )
        ),
        setup=fresh_customer,
    ),
    Case(
        "membership.record_tier_changes",
        in_unit_of_work(
            lambda uow, s: membership.record_tier_changes(
                uow, [TierChange(s.visible, None, "silver", uow.now, "kit")]
            )
        ),
    ),
    Case("membership.get_member", lambda c, s: service.get_member(c, s.visible)),
    Case("statements.balance", lambda c, s: service.balance(c, s.visible)),
    Case("statements.history", lambda c, s: service.history(c, s.visible)),
    Case("statements.tier_history", lambda c, s: service.tier_history(c, s.visible)),
    Case(
        "statements.profile_section",
        lambda c, s: service.profile_section(c, s.data["visible_customer"]),
    ),
    Case("points.earn", lambda c, s: service.earn(c, s.visible, 100_000)),
    Case("points.redeem", lambda c, s: service.redeem(c, s.visible, 1)),
    Case("points.adjust", lambda c, s: service.adjust(c, s.visible, 5, reason="kit")),
    Case("earning.backfill", lambda c, s: service.backfill(c, customer_ids=[s.visible])),
    Case("tiers.evaluate_tiers", lambda c, s: service.evaluate_tiers(c, customer_ids=[s.visible])),
    Case("points.expire", lambda c, s: service.expire(c), EVERYONE_ONLY),
    Case(
        "tiers.qualifying_values",
        lambda c, s: _qualifying(c, s),
    ),
    Case(
        "points.credit_compensations",
        in_unit_of_work(
            lambda uow, s: service.credit_compensations(
                uow,
                [
                    {
                        "customer_id": s.visible,
                        "kind": "points",
                        "points": 5000,
                        "idempotency_key": uuid.uuid4().hex,
                    }
                ],
            )
        ),
    ),
    Case(
        "earning.earn_from_interactions",
        in_unit_of_work(lambda uow, s: earning.earn_from_interactions(uow, [s.data[s.visible]])),
    ),
    Case(
        "privacy.export",
        in_unit_of_work(lambda uow, s: privacy.export(uow, s.visible)),
        EVERYONE_ONLY,
    ),
    Case(
        "privacy.erase",
        in_unit_of_work(lambda uow, s: privacy.erase(uow, s.fresh)),
        ADMIN_ONLY,
        setup=_enrolled_fresh,
    ),
    Case(
        "privacy.forget",
        in_unit_of_work(lambda uow, s: privacy.forget(uow, [s.fresh])),
        EVERYONE_ONLY,
        setup=_enrolled_fresh,
    ),
    Case("kpis.metrics", lambda c, s: kpis.metrics(c, PERIOD), EVERYONE_ONLY),
    Case("kpis.programme_report", lambda c, s: kpis.programme_report(c), EVERYONE_ONLY),
    Case(
        "kpis.period_kpis",
        lambda c, s: _period_kpis(c),
        EVERYONE_ONLY,
    ),
]


def _qualifying(crm: CRM, s: Subjects) -> Any:
    with crm.reading() as uow:
        return service.qualifying_values(uow, crm.clock(), [s.visible])


def _period_kpis(crm: CRM) -> Any:
    with crm.reading() as uow:
        return kpis.period_kpis(crm, uow.connection, PERIOD)


def test_every_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []


def test_loyalty_conformance_matrix(lcrm: CRM) -> None:
    matrix = run_conformance(
        lcrm, "loyalty", CASES, prepare=_prepare, functions=service_functions(*MODULES)
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("points.earn", "foreign")] == "denied"
    assert outcome[("points.earn", "granted")] == "allowed"
    assert outcome[("statements.balance", "foreign")] == "denied"


def test_agent_cannot_credit_a_foreign_customer(lcrm: CRM) -> None:
    mine, theirs = lcrm.customers.create_many(
        [{"name": "Mine", "owner": "alice"}, {"name": "Theirs", "owner": "bob"}]
    )
    assert mine.id is not None and theirs.id is not None
    for cid in (mine.id, theirs.id):
        service.enroll(lcrm, cid)
    alice = lcrm.as_user(Principal("alice"))
    with pytest.raises(AccessDeniedError):
        service.earn(alice, theirs.id, 100_000)
    with pytest.raises(AccessDeniedError):
        service.enroll(alice, mine.id, referred_by=theirs.id)
    assert service.balance(lcrm, theirs.id).points == 0


def test_every_loyalty_write_is_audited(lcrm: CRM) -> None:
    customer = lcrm.customers.create({"name": "Ann", "owner": "alice"})
    assert customer.id is not None
    alice = lcrm.as_user(Principal("alice"))
    service.enroll(alice, customer.id)
    service.earn(alice, customer.id, 100, actor="mallory")
    service.redeem(alice, customer.id, 30)
    service.adjust(alice, customer.id, 5, reason="goodwill")
    service.leave(alice, customer.id)
    entries = lcrm.audit.query(action="loyalty.*", limit=100).items
    actions = {e.action for e in entries}
    assert {"loyalty.enroll", "loyalty.earn", "loyalty.redeem", "loyalty.adjust"} <= actions
    assert "loyalty.leave" in actions
    assert {e.actor for e in entries} == {"alice"}
    earned = next(e for e in entries if e.action == "loyalty.earn")
    assert earned.on_behalf_of == "mallory" and earned.customer_id == customer.id


def test_cli_obeys_the_user_and_audits_as_them(db_url: str) -> None:
    from click.testing import CliRunner

    from crmcore.cli import build_cli

    with CRM.open(db_url, upgrade=True) as crm:
        mine, theirs = crm.customers.create_many(
            [{"name": "Mine", "owner": "alice"}, {"name": "Theirs", "owner": "bob"}]
        )
        assert mine.id is not None and theirs.id is not None
        service.enroll(crm, mine.id)
        service.enroll(crm, theirs.id)

    def crm_cli(*args: str) -> Any:
        argv = ["--db", db_url, *args]
        return CliRunner().invoke(build_cli(argv), argv)

    as_alice = ["--user", "alice", "--actor", "bob"]
    refused = crm_cli(*as_alice, "loyalty", "earn", str(theirs.id), "100000")
    assert refused.exit_code == 1 and "may not write customer" in refused.output
    assert crm_cli(*as_alice, "loyalty", "balance", str(theirs.id)).exit_code == 1
    assert crm_cli(*as_alice, "loyalty", "earn", str(mine.id), "50").exit_code == 0
    audit = crm_cli("audit", "--action", "loyalty.earn", "--json")
    entries = [e for e in json.loads(audit.stdout)["items"] if e["customer_id"] == mine.id]
    assert [(e["actor"], e["on_behalf_of"]) for e in entries] == [("alice", "bob")]
