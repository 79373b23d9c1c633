"""Issue 11 item 4: a merge combines the segmentation rows (costs, alerts, stored scores)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import crmcore_segmentation.plugin
from crmcore_segmentation import lifetime, predictive
from crmcore_segmentation.tables import CHURN_ALERTS, CUSTOMER_COSTS, PREDICTIONS, table
from sqlalchemy import func, insert, select

from crmcore import CRM
from crmcore.pytest_plugin import CRMFactory


def _rows(crm: CRM, name: str, customer_id: int) -> list[Any]:
    t = table(crm.metadata, name)
    with crm.engine.connect() as conn:
        return list(conn.execute(select(t).where(t.c.customer_id == customer_id)))


def test_costs_add_up_alerts_move_and_stale_scores_go(crm_factory: CRMFactory) -> None:
    crm = crm_factory(plugins=[crmcore_segmentation.plugin])
    keep = crm.customers.create({"name": "keep"})
    dup = crm.customers.create({"name": "dup"})
    assert keep.id and dup.id
    lifetime.set_costs(crm, keep.id, acquisition="100.00", service="5.50")
    lifetime.set_costs(crm, dup.id, acquisition="20.00")
    with crm.unit_of_work() as uow:
        uow.connection.execute(
            insert(table(crm.metadata, CHURN_ALERTS)),
            [{"customer_id": dup.id, "score": 0.8, "reasons": [], "moved": False, "at": uow.now}],
        )
        uow.connection.execute(
            insert(table(crm.metadata, PREDICTIONS)),
            [
                {
                    "customer_id": dup.id,
                    "p_alive": 0.5,
                    "expected_purchases": 1.0,
                    "horizon_days": 273,
                    "at": uow.now,
                }
            ],
        )
    crm.customers.merge(keep.id, dup.id)
    (costs,) = _rows(crm, CUSTOMER_COSTS, keep.id)
    assert (costs.acquisition, costs.service) == (Decimal("120.00"), Decimal("5.50"))
    assert len(_rows(crm, CHURN_ALERTS, keep.id)) == 1
    assert _rows(crm, PREDICTIONS, keep.id) == []  # no fit stored: removed, not left stale
    with crm.engine.connect() as conn:
        left = conn.execute(
            select(func.count()).select_from(table(crm.metadata, PREDICTIONS))
        ).scalar_one()
    assert left == 0


def test_the_kept_customers_scores_are_recomputed(
    crm_factory: CRMFactory, clock: Any, cdnow: Any
) -> None:
    from datetime import UTC, datetime

    clock.set(datetime(1998, 7, 1, tzinfo=UTC))
    crm = crm_factory(plugins=[crmcore_segmentation.plugin])
    ids = cdnow.load(crm)
    predictive.fit_models(crm, calibration_end=cdnow.calibration_end)
    keep, dup = ids[1], ids[2]
    before = {r.customer_id: r for r in _rows(crm, PREDICTIONS, keep)}
    crm.customers.merge(keep, dup)
    (after,) = _rows(crm, PREDICTIONS, keep)
    fresh = predictive.predict(crm, horizon_days=after.horizon_days, customer_ids=[keep])
    assert after.expected_purchases == fresh[0].expected_purchases
    assert _rows(crm, PREDICTIONS, dup) == []
    assert keep in before
