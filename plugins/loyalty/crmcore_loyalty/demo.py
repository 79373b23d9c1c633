"""``crm demo``'s loyalty part: enroll part of the demo customers and replay their history.

Deterministic from the seed. Members join some days after they became
customers; month by month up to the demo's "today" (the CRM's clock), the
purchases recorded in that month are applied (:func:`service.backfill`),
tiers are evaluated and expired points written off at the month's end, and
some members redeem a 1,000-point voucher.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from crmcore import CRM
from crmcore_loyalty import service
from crmcore_loyalty.tables import ledger_table, members_table

#: Share of demo customers who join the programme.
ENROLMENT_SHARE = 0.55
VOUCHER = 1000


def _month_ends(start: datetime, end: datetime) -> list[datetime]:
    """The first instant of each month after ``start`` up to ``end`` (month boundaries)."""
    moments: list[datetime] = []
    year, month = start.year, start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        moment = datetime(year, month, 1, tzinfo=UTC)
        if moment > end:
            return moments
        moments.append(moment)


def run_demo(crm: CRM, seed: int) -> dict[str, Any]:
    """Enroll, replay and redeem as described above; return counts of what was written."""
    rng = random.Random(f"loyalty-{seed}")
    now = crm.clock()
    customers = crm.metadata.tables["crm_customers"]
    with crm.reading() as uow:
        rows = uow.connection.execute(
            select(customers.c.id, customers.c.created_at).order_by(customers.c.id)
        ).all()
    enrolments: list[dict[str, Any]] = []
    for cid, created in rows:
        if rng.random() >= ENROLMENT_SHARE:
            continue
        joined = min(created + timedelta(days=rng.randint(0, 90)), now)
        referrer = (
            rng.choice(enrolments)["customer_id"] if enrolments and rng.random() < 0.15 else None
        )
        enrolments.append(
            {
                "customer_id": cid,
                "joined_at": joined,
                "channel": rng.choice(["web", "store", "app"]),
                "referred_by": referrer,
            }
        )
    if not enrolments:
        return {"enrolled": 0, "entries": 0, "redemptions": 0}
    service.enroll_many(crm, enrolments, actor="demo")
    members = members_table(crm.metadata)
    ledger = ledger_table(crm.metadata)
    redemptions = 0
    for month_end in [*_month_ends(min(e["joined_at"] for e in enrolments), now), now]:
        service.backfill(crm, until=month_end, actor="demo")
        service.evaluate_tiers(crm, as_of=month_end, actor="demo")
        service.expire(crm, as_of=month_end, actor="demo")
        with crm.reading() as uow:
            rich = (
                uow.connection.execute(
                    select(ledger.c.customer_id)
                    .join(members, members.c.customer_id == ledger.c.customer_id)
                    .where(members.c.status == "active")
                    .group_by(ledger.c.customer_id)
                    .having(func.sum(ledger.c.points) >= VOUCHER)
                    .order_by(ledger.c.customer_id)
                )
                .scalars()
                .all()
            )
        for cid in rich:
            if rng.random() < 0.3:
                service.redeem(
                    crm,
                    cid,
                    VOUCHER,
                    idempotency_key=f"demo:voucher:{cid}:{month_end.date()}",
                    reason="voucher",
                    at=month_end,
                    actor="demo",
                )
                redemptions += 1
    with crm.reading() as uow:
        entries = uow.connection.execute(select(func.count()).select_from(ledger)).scalar_one()
    return {"enrolled": len(enrolments), "entries": int(entries), "redemptions": redemptions}
