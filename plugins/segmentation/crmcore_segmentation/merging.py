"""A merged customer's segmentation rows, combined into the kept one (``crm_customers_merged``).

* **Costs** (``segmentation_customer_costs``) add up: the kept customer's
  acquisition and service costs become the sums of both customers' costs.
* **Churn alerts** move: they are the history of warnings about the person.
* **Segment memberships and their history** of the duplicate go (by the
  cascade when its row is deleted): membership follows from the rules, and the
  kept customer's is re-evaluated at the next refresh of each segment.
* **Stored predictions** are recomputed for the kept customer from its
  combined purchases with the latest stored fits (:func:`predictive.predict`);
  when there is no fit yet, or the fit cannot score it, the kept customer's
  stored prediction is removed rather than left stale.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete, insert, select, update

from crmcore.errors import ValidationError
from crmcore.unit_of_work import UnitOfWork
from crmcore_segmentation import predictive
from crmcore_segmentation.tables import CHURN_ALERTS, CUSTOMER_COSTS, PREDICTIONS, table


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None and b is None:
        return None
    return (a or Decimal(0)) + (b or Decimal(0))


def _merge_costs(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    costs = table(ctx.crm.metadata, CUSTOMER_COSTS)
    rows = {
        r.customer_id: r
        for r in ctx.connection.execute(
            select(costs).where(costs.c.customer_id.in_([keep_id, duplicate_id]))
        )
    }
    if duplicate_id not in rows:
        return
    theirs = rows[duplicate_id]
    if keep_id in rows:
        mine = rows[keep_id]
        ctx.connection.execute(
            update(costs)
            .where(costs.c.customer_id == keep_id)
            .values(
                acquisition=_add(mine.acquisition, theirs.acquisition),
                service=_add(mine.service, theirs.service),
                updated_at=ctx.now,
            )
        )
        ctx.connection.execute(delete(costs).where(costs.c.customer_id == duplicate_id))
    else:
        ctx.connection.execute(
            update(costs).where(costs.c.customer_id == duplicate_id).values(customer_id=keep_id)
        )


def _rescore(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    scores = table(ctx.crm.metadata, PREDICTIONS)
    stored = (
        ctx.connection.execute(
            select(scores.c.horizon_days).where(scores.c.customer_id.in_([keep_id, duplicate_id]))
        )
        .scalars()
        .all()
    )
    ctx.connection.execute(delete(scores).where(scores.c.customer_id.in_([keep_id, duplicate_id])))
    if not stored:
        return
    try:
        fresh = predictive.predict(ctx.crm, horizon_days=stored[0], customer_ids=[keep_id], ctx=ctx)
    except ValidationError:  # no fit stored, or it cannot score this history
        return
    ctx.connection.execute(
        insert(scores),
        [
            {
                "customer_id": p.customer_id,
                "p_alive": p.p_alive,
                "expected_purchases": p.expected_purchases,
                "expected_spend": p.expected_spend,
                "clv": p.clv,
                "horizon_days": p.horizon_days,
                "at": ctx.now,
            }
            for p in fresh
            if p.customer_id == keep_id
        ],
    )


def merge_rows(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    """Combine ``duplicate_id``'s segmentation rows into ``keep_id`` (the module docstring)."""
    _merge_costs(ctx, keep_id, duplicate_id)
    alerts = table(ctx.crm.metadata, CHURN_ALERTS)
    ctx.connection.execute(
        update(alerts).where(alerts.c.customer_id == duplicate_id).values(customer_id=keep_id)
    )
    _rescore(ctx, keep_id, duplicate_id)


__all__ = ["merge_rows"]
