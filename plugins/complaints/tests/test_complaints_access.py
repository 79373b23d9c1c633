"""Issue 16: every complaints service function obeys the principal and is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from crmcore_complaints import ComplaintService, analytics, followups, privacy, views

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _open(crm: CRM, customer_id: int) -> int:
    opened = ComplaintService(crm).open(
        {"customer_id": customer_id, "category": "delivery/late", "description": "kit"}
    )
    assert opened.id is not None
    return opened.id


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    return {"complaint": _open(crm, visible), "hidden_complaint": _open(crm, hidden)}


def _fresh_complaint(crm: CRM, s: Subjects) -> int:
    return _open(crm, s.visible)


def _svc(crm: CRM) -> ComplaintService:
    return ComplaintService(crm)


def _reveals_complaint(result: Any, customer_id: int, s: Subjects) -> bool:
    hidden = s.data["complaint"] if customer_id == s.visible else s.data["hidden_complaint"]
    items = getattr(result, "items", None)
    return isinstance(items, list) and any(getattr(i, "id", None) == hidden for i in items)


C = "complaint"
CASES = [
    Case(
        "service.open",
        lambda c, s: _svc(c).open({"customer_id": s.visible, "category": "delivery/late"}),
    ),
    Case(
        "service.open_many",
        lambda c, s: _svc(c).open_many([{"customer_id": s.visible, "category": "delivery/late"}]),
    ),
    Case("service.get", lambda c, s: _svc(c).get(s.data[C])),
    Case("service.list", lambda c, s: _svc(c).list(), reveals=_reveals_complaint),
    Case("service.history", lambda c, s: _svc(c).history(s.data[C])),
    Case("service.compensations", lambda c, s: _svc(c).compensations(s.data[C])),
    Case("service.sla_status", lambda c, s: _svc(c).sla_status(s.data[C])),
    Case(
        "service.move", lambda c, s: _svc(c).move(s.fresh, "acknowledged"), setup=_fresh_complaint
    ),
    Case(
        "service.resolve",
        lambda c, s: _svc(c).resolve(
            s.fresh,
            resolution="kit",
            compensations=[{"kind": "voucher", "reason": "kit", "amount": "5", "currency": "EUR"}],
        ),
        setup=_fresh_complaint,
    ),
    Case("service.close", lambda c, s: _svc(c).close(s.fresh), setup=_fresh_complaint),
    Case("service.reopen", lambda c, s: _svc(c).reopen(s.data[C])),
    Case("service.assign", lambda c, s: _svc(c).assign(s.data[C], "kit-owner")),
    Case("service.rate", lambda c, s: _svc(c).rate(s.data[C], 4)),
    Case("service.sweep", lambda c, s: _svc(c).sweep(), EVERYONE_ONLY),
    Case(
        "followups.open_followups",
        in_unit_of_work(
            lambda uow, s: followups.open_followups(
                uow, [{"customer_id": s.visible, "score": 1, "survey": "kit", "response_id": 1}]
            )
        ),
    ),
    Case(
        "views.profile_section",
        lambda c, s: views.profile_section(c, s.data["visible_customer"]),
    ),
    Case("views.churn_signals", lambda c, s: views.churn_signals(c, [s.visible])),
    Case(
        "privacy.export",
        in_unit_of_work(lambda uow, s: privacy.export(uow, s.visible)),
        EVERYONE_ONLY,
    ),
    Case(
        "privacy.erase",
        in_unit_of_work(lambda uow, s: privacy.erase(uow, s.fresh)),
        ADMIN_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "privacy.forget",
        in_unit_of_work(lambda uow, s: privacy.forget(uow, [s.fresh])),
        EVERYONE_ONLY,
        setup=fresh_customer,
    ),
    *(
        Case(
            f"analytics.{name}",
            (lambda f: lambda c, s: f(c, PERIOD))(getattr(analytics, name)),
            EVERYONE_ONLY,
        )
        for name in ("metrics", "trends", "hot_issues", "workload", "top_counts", "report")
    ),
    Case("analytics.backlog", lambda c, s: analytics.backlog(c), EVERYONE_ONLY),
]


def test_complaints_conformance_matrix(ccrm: CRM) -> None:
    def prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
        return {**_prepare(crm, visible, hidden), "visible_customer": crm.customers.get(visible)}

    matrix = run_conformance(ccrm, "complaints", CASES, prepare=prepare)
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("service.resolve", "foreign")] == "denied"
    assert outcome[("service.list", "foreign")] == "nothing foreign"


def test_agent_cannot_touch_a_foreign_complaint_and_writes_are_audited(ccrm: CRM) -> None:
    mine, theirs = ccrm.customers.create_many(
        [{"name": "Mine", "owner": "alice"}, {"name": "Theirs", "owner": "bob"}]
    )
    assert mine.id is not None and theirs.id is not None
    foreign = _open(ccrm, theirs.id)
    alice = ComplaintService(ccrm.as_user(Principal("alice")))
    for attempt in (
        lambda: alice.assign(foreign, "alice"),
        lambda: alice.move(foreign, "acknowledged"),
        lambda: alice.resolve(foreign, resolution="x"),
        lambda: alice.rate(foreign, 5),
        lambda: alice.close(foreign),
        lambda: alice.get(foreign),
        lambda: alice.history(foreign),
    ):
        with pytest.raises(AccessDeniedError):
            attempt()
    assert [c.id for c in alice.list().items] == []
    own = alice.open({"customer_id": mine.id, "category": "delivery/late"}).id
    assert own is not None
    alice.resolve(own, resolution="refunded", actor="mallory")
    entries = ccrm.audit.query(action="complaints.*", customer_id=mine.id).items
    assert {e.action for e in entries} >= {"complaints.open", "complaints.move"}
    assert {e.actor for e in entries} == {"alice"}
