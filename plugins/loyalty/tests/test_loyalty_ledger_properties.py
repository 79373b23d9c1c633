"""Property test: whatever happens, the balance is the ledger sum, equals the lots, never < 0.

A hypothesis state machine drives one member through earns, redemptions,
adjustments, purchases and refunds recorded through core, replayed keys and
expiry runs while the clock moves on. One database per test (both
backends); each example starts from a fresh customer.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from crmcore_loyalty import service
from crmcore_loyalty.tables import ledger_table, lots_table
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from crmcore import CRM, ConflictError, ValidationError
from crmcore.testing import FrozenClock


def test_balance_always_equals_ledger_sum_and_is_never_negative(
    lcrm: CRM, clock: FrozenClock
) -> None:
    """Balance always equals ledger sum and is never negative."""
    crm = lcrm
    ledger = ledger_table(crm.metadata)
    lots = lots_table(crm.metadata)

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            cid = crm.customers.create({"name": "Prop"}).id
            assert cid is not None
            self.cid = cid
            service.enroll(crm, cid)
            self.keys: list[tuple[str, str, int]] = []
            self.purchases: list[int] = []
            self.counter = 0

        def key(self) -> str:
            self.counter += 1
            return f"c{self.cid}-{self.counter}"

        @rule(points=st.integers(1, 60), days=st.integers(0, 120))
        def earn(self, points: int, days: int) -> None:
            clock.advance(days=days)
            key = self.key()
            service.earn(crm, self.cid, points, idempotency_key=key)
            self.keys.append((key, "earn", points))

        @rule(points=st.integers(1, 90))
        def redeem(self, points: int) -> None:
            before = service.balance(crm, self.cid)
            key = self.key()
            try:
                service.redeem(crm, self.cid, points, idempotency_key=key)
            except ValidationError:
                assert points > before.available
                assert service.balance(crm, self.cid).points == before.points
            else:
                assert points <= before.available
                self.keys.append((key, "redeem", points))

        @rule(points=st.integers(-40, 40).filter(bool))
        def adjust(self, points: int) -> None:
            before = service.balance(crm, self.cid)
            try:
                service.adjust(crm, self.cid, points, reason="property")
            except ValidationError:
                assert -points > before.available

        @rule(
            amount=st.decimals(Decimal("0.01"), Decimal("150"), places=2), days=st.integers(0, 60)
        )
        def purchase(self, amount: Decimal, days: int) -> None:
            clock.advance(days=days)
            recorded = crm.interactions.record(
                {
                    "customer_id": self.cid,
                    "kind": "purchase",
                    "channel": "web",
                    "occurred_at": clock(),
                    "amount": amount,
                    "currency": "EUR",
                }
            )
            assert recorded.id is not None
            self.purchases.append(recorded.id)

        @rule(data=st.data())
        def refund(self, data: st.DataObject) -> None:
            if not self.purchases:
                return
            pid = data.draw(st.sampled_from(self.purchases))
            amount = data.draw(st.decimals(Decimal("0.01"), Decimal("150"), places=2))
            crm.interactions.record(
                {
                    "customer_id": self.cid,
                    "kind": "refund",
                    "occurred_at": clock() + timedelta(seconds=1),
                    "amount": amount,
                    "currency": "EUR",
                    "payload": {"refund_of": pid},
                }
            )

        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            if not self.keys:
                return
            key, kind, points = data.draw(st.sampled_from(self.keys))
            before = service.balance(crm, self.cid).points
            operation = service.earn if kind == "earn" else service.redeem
            entry = operation(crm, self.cid, points, idempotency_key=key)
            assert entry.replayed
            assert service.balance(crm, self.cid).points == before
            try:
                operation(crm, self.cid, points + 1, idempotency_key=key)
            except ConflictError:
                pass
            else:
                raise AssertionError("a key reused for another amount was accepted")

        @rule(days=st.integers(0, 400))
        def expire(self, days: int) -> None:
            clock.advance(days=days)
            service.expire(crm)
            assert service.expire(crm).points == 0  # idempotent
            assert service.balance(crm, self.cid).overdue == 0

        @invariant()
        def balance_is_the_ledger_sum(self) -> None:
            with crm.reading() as uow:
                total = uow.connection.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(ledger.c.points), 0)).where(
                        ledger.c.customer_id == self.cid
                    )
                ).scalar_one()
                remaining = uow.connection.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(lots.c.remaining), 0)).where(
                        lots.c.customer_id == self.cid
                    )
                ).scalar_one()
            balance = service.balance(crm, self.cid)
            assert balance.points == total == remaining
            assert balance.points >= 0
            assert 0 <= balance.available <= balance.points

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
