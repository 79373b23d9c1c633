"""The documented scenario: purchases, refunds, redemptions, expiry: exact balances and tiers.

Replayed through the public API (core's interaction service for purchases
and refunds, the loyalty service for the rest), on SQLite and PostgreSQL.
The same scenario is walked through in docs/plugins/loyalty.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from crmcore_loyalty import service
from crmcore_loyalty.tables import ledger_table, lots_table

from crmcore import CRM, ValidationError


def at(text: str) -> datetime:
    """An aware UTC datetime from ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def purchase(crm: CRM, cid: int, when: str, amount: str, channel: str = "web", **extra: Any) -> int:
    """Record a purchase through core; return its id."""
    record = {
        "customer_id": cid,
        "kind": "purchase",
        "channel": channel,
        "occurred_at": at(when),
        "amount": Decimal(amount),
        "currency": "EUR",
        **extra,
    }
    interaction_id = crm.interactions.record(record).id
    assert interaction_id is not None
    return interaction_id


def refund(crm: CRM, cid: int, when: str, amount: str, of: int) -> int:
    """Record a refund of purchase ``of`` through core (the core refund convention)."""
    interaction_id = crm.interactions.record(
        {
            "customer_id": cid,
            "kind": "refund",
            "occurred_at": at(when),
            "amount": Decimal(amount),
            "currency": "EUR",
            "payload": {"refund_of": of},
        }
    ).id
    assert interaction_id is not None
    return interaction_id


def points(crm: CRM, cid: int) -> int:
    """The member's ledger balance."""
    return service.balance(crm, cid).points


def lots_remaining(crm: CRM, cid: int) -> int:
    """Sum of the member's lots' remaining points (must equal the ledger balance)."""
    lots = lots_table(crm.metadata)
    with crm.reading() as uow:
        return int(
            uow.connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(lots.c.remaining), 0)).where(
                    lots.c.customer_id == cid
                )
            ).scalar_one()
        )


def test_documented_scenario(lcrm: CRM) -> None:
    """Documented scenario."""
    crm = lcrm
    ann = crm.customers.create({"name": "Ann", "birth_date": "1990-07-15"}).id
    bob = crm.customers.create({"name": "Bob", "birth_date": "1985-12-01"}).id
    assert ann is not None and bob is not None

    service.enroll(crm, ann, joined_at=at("2025-01-10 09:00"), channel="store")
    p1 = purchase(crm, ann, "2025-01-15 10:00", "120.50")
    assert points(crm, ann) == 120 + 50  # floor(120.50) + first-purchase bonus

    service.enroll(crm, bob, joined_at=at("2025-02-01 09:00"), referred_by=ann)
    purchase(crm, bob, "2025-02-10 10:00", "80.00", channel="app")
    assert points(crm, bob) == 160 + 50  # app x2, first-purchase bonus
    assert points(crm, ann) == 170 + 100  # referral bonus

    p3 = purchase(crm, ann, "2025-03-01 10:00", "400.00", channel="store")
    refund(crm, ann, "2025-03-05 10:00", "200.00", of=p3)
    assert points(crm, ann) == 270 + 400 - 200

    service.redeem(crm, ann, 300, idempotency_key="ann-voucher-1", at=at("2025-04-01 12:00"))
    assert points(crm, ann) == 170
    changes = service.evaluate_tiers(crm, as_of=date(2025, 4, 1))
    assert changes == []  # spend 320.50: still "member"

    purchase(crm, ann, "2025-07-20 10:00", "300.00", channel="app")  # birthday month
    assert points(crm, ann) == 170 + 300 * 2 * 2
    changes = service.evaluate_tiers(crm, as_of=date(2025, 7, 31))
    assert [(c.customer_id, c.from_tier, c.to_tier) for c in changes] == [(ann, "member", "silver")]

    purchase(crm, ann, "2025-08-01 10:00", "100.00")  # silver x1.5
    p5_points = 150
    assert points(crm, ann) == 1370 + p5_points

    # Bob's points (earned 2025-02-10 10:00) expire 2026-02-10 10:00.
    assert service.expire(crm, as_of=datetime(2026, 2, 10, 9, 59, 59, tzinfo=UTC)).points == 0
    run = service.expire(crm, as_of=date(2026, 2, 10))
    assert (run.lots, run.points, run.members) == (2, 210, 1)
    assert points(crm, bob) == 0

    run = service.expire(crm, as_of=date(2026, 3, 1))  # what is left of the 400 purchase
    assert (run.points, run.members) == (170, 1)
    assert points(crm, ann) == 1350
    again = service.expire(crm, as_of=date(2026, 3, 1))
    assert (again.lots, again.points) == (0, 0)  # idempotent

    changes = service.evaluate_tiers(crm, as_of=date(2026, 3, 1))
    # Window (2025-03-01 23:59:59.999999, 2026-03-01 23:59:59.999999]: the 400 purchase
    # is out, its refund (-200) in: 300 + 100 - 200 = 200 -> back to "member".
    assert [(c.customer_id, c.from_tier, c.to_tier) for c in changes] == [(ann, "silver", "member")]

    with pytest.raises(ValidationError, match=r"would overdraw the balance of 1350"):
        service.redeem(crm, ann, 2000, idempotency_key="too-much")
    assert points(crm, ann) == 1350

    p5 = crm.interactions.list(customer_id=ann, kinds=["purchase"], limit=1).items[0].id
    assert p5 is not None
    refund(crm, ann, "2026-03-10 10:00", "100.00", of=p5)
    assert points(crm, ann) == 1200
    assert service.balance(crm, ann).tier == "member"
    assert service.balance(crm, bob).tier == "member"
    for cid in (ann, bob):
        assert lots_remaining(crm, cid) == points(crm, cid)
    assert p1 < p3


def test_partial_refunds_reverse_proportionally_and_exactly(lcrm: CRM) -> None:
    """Partial refunds reverse proportionally and exactly."""
    crm = lcrm
    cid = crm.customers.create({"name": "Cy"}).id
    assert cid is not None
    service.enroll(crm, cid, joined_at=at("2025-01-01 00:00"))
    service.earn(crm, cid, 1, idempotency_key="not-first", at=at("2025-01-01 00:00"))
    pid = purchase(crm, cid, "2025-01-02 10:00", "99.99")
    assert points(crm, cid) == 1 + 99 + 50  # a manual earn is no purchase: bonus applies
    bonus = 50
    earned = 99 + bonus
    refund(crm, cid, "2025-01-03 10:00", "33.33", of=pid)
    first = earned * 333300 // 999900  # floor(149 * 33.33 / 99.99) = 49
    assert points(crm, cid) == 1 + earned - first
    refund(crm, cid, "2025-01-04 10:00", "33.33", of=pid)
    refund(crm, cid, "2025-01-05 10:00", "33.33", of=pid)  # full amount refunded now
    assert points(crm, cid) == 1  # exactly what the purchase earned was reversed
    refund(crm, cid, "2025-01-06 10:00", "5.00", of=pid)  # beyond the amount: nothing more
    assert points(crm, cid) == 1
    ledger = ledger_table(crm.metadata)
    with crm.reading() as uow:
        spend = uow.connection.execute(
            sa.select(sa.func.sum(ledger.c.amount)).where(ledger.c.customer_id == cid)
        ).scalar_one()
    assert spend == Decimal(0)


def test_refund_after_redemption_never_overdraws(lcrm: CRM) -> None:
    """Refund after redemption never overdraws."""
    crm = lcrm
    cid = crm.customers.create({"name": "Dee"}).id
    assert cid is not None
    service.enroll(crm, cid, joined_at=at("2025-01-01 00:00"))
    pid = purchase(crm, cid, "2025-01-02 10:00", "100")
    service.redeem(crm, cid, 120, at=at("2025-01-03 10:00"))
    refund(crm, cid, "2025-01-04 10:00", "100", of=pid)
    assert points(crm, cid) == 0
    entry = service.history(crm, cid, limit=1)[0]
    assert entry["kind"] == "reverse"
    assert entry["points"] == -30
    assert entry["details"] == {"wanted": 150, "shortfall": 120}


def test_rerun_interactions_import_earns_nothing_twice(lcrm: CRM, tmp_path: Any) -> None:
    """An interactions import run twice (idempotent by content keys) credits points once."""
    from crmcore.io.imports import import_interactions

    cid = lcrm.customers.create({"name": "Rerun"}).id
    assert cid is not None
    service.enroll(lcrm, cid, joined_at=at("2025-01-10 09:00"), channel="store")
    path = tmp_path / "purchases.csv"
    path.write_text(
        "customer_id,kind,occurred_at,amount,currency\n"
        f"{cid},purchase,2025-03-01T10:00:00Z,120.00,EUR\n"
        f"{cid},purchase,2025-03-02T10:00:00Z,80.00,EUR\n",
        encoding="utf-8",
    )
    assert import_interactions(lcrm, path).imported == 2
    earned = points(lcrm, cid)
    assert earned == 250  # 120 + 80, plus the first-purchase bonus of 50
    again = import_interactions(lcrm, path)
    assert (again.imported, again.already_stored) == (0, 2)
    assert points(lcrm, cid) == earned == lots_remaining(lcrm, cid)
