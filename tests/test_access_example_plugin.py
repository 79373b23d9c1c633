"""Issue 16: the example plugin run through the access conformance kit, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import crmcore_example.plugin
from crmcore_example import service

from crmcore import CRM, CustomerChange, LifecycleEvent, Period
from crmcore.model.entities import Stage
from crmcore.pytest_plugin import CRMFactory
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
T0 = "2026-01-01T00:00:00+00:00"


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    for cid in (visible, hidden):
        crm.interactions.record({"customer_id": cid, "kind": "call", "occurred_at": T0})
    customer = crm.customers.get(visible)
    return {
        "customer": customer,
        "interaction": crm.interactions.list(customer_id=visible).items[0],
        "change": CustomerChange(customer, customer, ("industry",)),
    }


CASES = [
    Case("service.remember_settings", lambda c, s: service.remember_settings(c)),
    Case("service.settings_of", lambda c, s: service.settings_of(c)),
    Case("service.authorize", lambda c, s: service.authorize(c, "kit-owner", "read")),
    Case(
        "service.start_tracking",
        in_unit_of_work(lambda u, s: service.start_tracking(u, [s.visible])),
    ),
    Case(
        "service.stop_tracking", in_unit_of_work(lambda u, s: service.stop_tracking(u, [s.visible]))
    ),
    Case(
        "service.merge_counts",
        in_unit_of_work(lambda u, s: service.merge_counts(u, s.visible, s.fresh)),
        setup=fresh_customer,
    ),
    Case(
        "service.count_updates",
        in_unit_of_work(lambda u, s: service.count_updates(u, [s.data["change"]])),
    ),
    Case(
        "service.count_moves",
        in_unit_of_work(
            lambda u, s: service.count_moves(
                u,
                [LifecycleEvent(customer_id=s.visible, to_stage=Stage.NEW, at=u.now)],
            )
        ),
    ),
    Case(
        "service.record_touches",
        in_unit_of_work(lambda u, s: service.record_touches(u, [s.data["interaction"]])),
    ),
    Case(
        "service.note_relationships",
        in_unit_of_work(
            lambda u, s: service.note_relationships(
                u, [{"kind": "team", "action": "added", "account_id": s.visible}]
            )
        ),
    ),
    Case("service.blocked_emails", lambda c, s: service.blocked_emails(c, [s.data["customer"]])),
    Case("service.touches_of", lambda c, s: service.touches_of(c, s.visible)),
    Case("service.profile_section", lambda c, s: service.profile_section(c, s.data["customer"])),
    Case(
        "service.account_touches",
        lambda c, s: service.account_touches(c, s.visible, [s.visible]),
    ),
    Case("service.metrics", lambda c, s: service.metrics(c, PERIOD), EVERYONE_ONLY),
    Case(
        "service.touches_by_channel_chart",
        lambda c, s: service.touches_by_channel_chart(c, PERIOD),
        EVERYONE_ONLY,
    ),
    Case("service.never_touched", lambda c, s: service.never_touched(c, [s.visible])),
    Case("service.top_touched", lambda c, s: service.top_touched(c)),
    Case(
        "service.export", in_unit_of_work(lambda u, s: service.export(u, s.visible)), EVERYONE_ONLY
    ),
    Case("service.erase", in_unit_of_work(lambda u, s: service.erase(u, s.visible)), ADMIN_ONLY),
]


def test_example_declares_every_service_function() -> None:
    assert undeclared(service) == []


def test_example_conformance_matrix(crm_factory: CRMFactory) -> None:
    crm = crm_factory(plugins=[crmcore_example.plugin])
    matrix = run_conformance(
        crm, "example", CASES, prepare=_prepare, functions=service_functions(service)
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("service.top_touched", "foreign")] == "nothing foreign"
    assert outcome[("service.touches_of", "foreign")] == "denied"
