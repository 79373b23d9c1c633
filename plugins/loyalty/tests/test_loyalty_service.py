"""The loyalty service and hooks through core, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import crmcore_loyalty.plugin
import pytest
import sqlalchemy as sa
from crmcore_loyalty import kpis, service
from crmcore_loyalty.programme import Programme, add_months
from crmcore_loyalty.tables import (
    allocations_table,
    ledger_table,
    lots_table,
    members_table,
    tier_changes_table,
)

from crmcore import (
    CRM,
    ConfigError,
    ConflictError,
    Interaction,
    NotFoundError,
    Period,
    UnitOfWork,
    ValidationError,
)
from crmcore.hooks import hookimpl
from crmcore.testing import FrozenClock

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def count(crm: CRM, table: sa.Table, *where: Any) -> int:
    """Rows of ``table`` matching ``where``."""
    with crm.reading() as uow:
        return int(
            uow.connection.execute(
                sa.select(sa.func.count()).select_from(table).where(*where)
            ).scalar_one()
        )


def member(crm: CRM, name: str = "Ann", **enrol: Any) -> int:
    """Create a customer and enroll them; return the id."""
    cid = crm.customers.create({"name": name}).id
    assert cid is not None
    service.enroll(crm, cid, **enrol)
    return cid


def buy(crm: CRM, cid: int, amount: str, when: datetime = T0, **extra: Any) -> int:
    """Record a purchase through core; return its id."""
    recorded = crm.interactions.record(
        {
            "customer_id": cid,
            "kind": "purchase",
            "channel": extra.pop("channel", "web"),
            "occurred_at": when,
            "amount": Decimal(amount),
            "currency": extra.pop("currency", "EUR"),
            **extra,
        }
    )
    assert recorded.id is not None
    return recorded.id


class TierWatcher:
    """A throw-away plugin implementing ``loyalty_tier_changed``."""

    def __init__(self) -> None:
        self.calls: list[list[Mapping[str, Any]]] = []

    @hookimpl
    def loyalty_tier_changed(self, ctx: UnitOfWork, changes: Sequence[Mapping[str, Any]]) -> None:
        """Remember each batch of changes."""
        assert ctx.connection is not None
        self.calls.append(list(changes))


# --- packaging and configuration ---------------------------------------------------------


def test_entry_point_registers_the_plugin_and_migrations_create_tables(
    crm_factory: Callable[..., CRM],
) -> None:
    """Entry point registers the plugin and migrations create tables."""
    names = {ep.name for ep in importlib.metadata.entry_points(group="crmcore.plugins")}
    assert "loyalty" in names
    crm = crm_factory(plugins=[crmcore_loyalty.plugin])
    info = {p.name: p for p in crm.plugins()}["loyalty"]
    assert "crm_interactions_recorded" in info.hooks
    inspector = sa.inspect(crm.engine)
    for table in (
        "loyalty_members",
        "loyalty_ledger",
        "loyalty_lots",
        "loyalty_allocations",
        "loyalty_tier_changes",
    ):
        assert inspector.has_table(table)


def test_bad_programme_is_refused_naming_the_field(open_loyalty: Callable[..., CRM]) -> None:
    """Bad programme is refused naming the field."""
    with pytest.raises(ConfigError, match=r"plugins\.loyalty\.rounding"):
        open_loyalty({"rounding": "sideways"})
    with pytest.raises(ConfigError, match=r"plugins\.loyalty\.tiers: tier 'gold' is defined twice"):
        open_loyalty(
            {"tiers": [{"name": "gold", "threshold": 0}, {"name": "gold", "threshold": 9}]}
        )


def test_programme_rules_are_exact() -> None:
    """Programme rules are exact."""
    programme = Programme.from_config(
        {
            "points_per_unit": 1.1,
            "rounding": "half_up",
            "category_multipliers": {"books": 3},
            "channel_multipliers": {"app": 2},
        }
    )
    assert programme.points_per_unit == Decimal("1.1")
    assert programme.purchase_points(Decimal("10.45"), channel="web") == 11  # 11.495 -> 11
    assert programme.purchase_points(Decimal("10.50"), channel="web") == 12  # 11.55 -> 12
    assert programme.purchase_points(Decimal("10"), channel="app") == 22

    class Line:
        def __init__(self, price: str | None, category: str, quantity: int = 1) -> None:
            self.unit_price = None if price is None else Decimal(price)
            self.category = category
            self.quantity = Decimal(quantity)

    # Priced items: books weigh 3; the unexplained 5.00 weighs 1.
    assert programme.category_weighted_amount(
        Decimal("35"), [Line("10", "books"), Line("10", "food", 2)]
    ) == Decimal("55")
    # Items priced above the amount (an order discount) are scaled down.
    assert programme.category_weighted_amount(
        Decimal("15"), [Line("10", "books"), Line("10", "food", 2)]
    ) == Decimal("25")
    # No prices: the highest category multiplier applies to the whole amount.
    assert programme.category_weighted_amount(Decimal("7"), [Line(None, "books")]) == Decimal(21)
    floor = Programme.from_config({"rounding": "floor"})
    assert floor.purchase_points(Decimal("99.99"), channel="web") == 99
    assert add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 2, 29, tzinfo=UTC), 12) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2025, 3, 31, tzinfo=UTC), -1) == datetime(2025, 2, 28, tzinfo=UTC)


# --- enrolment ---------------------------------------------------------------------------


def test_enrolment_rules(open_loyalty: Callable[..., CRM], clock: FrozenClock) -> None:
    """Enrolment rules."""
    watcher = TierWatcher()
    crm = open_loyalty(extra_plugins=[watcher])
    ann = member(crm, channel="store")
    got = service.get_member(crm, ann)
    assert (got.member_number, got.status, got.tier, got.channel) == (
        f"M{ann:08d}",
        "active",
        "member",
        "store",
    )
    assert watcher.calls == [
        [
            {
                "customer_id": ann,
                "from_tier": None,
                "to_tier": "member",
                "at": T0,
                "reason": "enrolled",
            }
        ]
    ]
    with pytest.raises(ConflictError, match=rf"customer {ann} is already a member"):
        service.enroll(crm, ann)
    with pytest.raises(NotFoundError, match=r"customer 999 does not exist"):
        service.enroll(crm, 999)
    bob = crm.customers.create({"name": "Bob"}).id
    assert bob is not None
    with pytest.raises(ValidationError, match=r"^channel: 'pigeon' is not one of"):
        service.enroll(crm, bob, channel="pigeon")
    with pytest.raises(ValidationError, match=rf"^referred_by: customer {bob} is not another"):
        service.enroll(crm, bob, referred_by=bob)
    with pytest.raises(ConflictError, match=r"^member_number: 'M00000001' is already taken"):
        service.enroll(crm, bob, member_number=f"M{ann:08d}")
    with pytest.raises(ValidationError, match=r"^joined_at: must be a timezone-aware"):
        service.enroll(crm, bob, joined_at=datetime(2026, 1, 1))
    members = members_table(crm.metadata)
    assert count(crm, members, members.c.customer_id == bob) == 0

    clock.advance(days=3)
    left = service.leave(crm, ann)
    assert (left.status, left.left_at, left.tier) == ("left", clock(), None)
    with pytest.raises(ValidationError, match=r"left the programme"):
        service.earn(crm, ann, 10)
    with pytest.raises(ConflictError, match=r"already left"):
        service.leave(crm, ann)
    back = service.enroll(crm, ann)
    assert (back.member_number, back.status, back.tier) == (f"M{ann:08d}", "active", "member")
    changes = tier_changes_table(crm.metadata)
    assert count(crm, changes, changes.c.customer_id == ann) == 3  # joined, left, rejoined
    with pytest.raises(NotFoundError, match=rf"customer {bob} is not a loyalty member"):
        service.balance(crm, bob)


# --- ledger ------------------------------------------------------------------------------


def test_bad_points_and_non_members_store_nothing(lcrm: CRM) -> None:
    """Bad points and non members store nothing."""
    ann = member(lcrm)
    ledger = ledger_table(lcrm.metadata)
    for bad in (0, -5, True, 1.5, "10"):
        with pytest.raises(ValidationError, match=r"^points: "):
            service.earn(lcrm, ann, bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^points: an adjustment must not be 0"):
        service.adjust(lcrm, ann, 0, reason="x")
    with pytest.raises(ValidationError, match=r"^reason: required"):
        service.adjust(lcrm, ann, 5, reason="")
    with pytest.raises(ValidationError, match=r"^idempotency_key: "):
        service.earn(lcrm, ann, 5, idempotency_key="")
    with pytest.raises(ValidationError, match=r"^at: must be a timezone-aware"):
        service.earn(lcrm, ann, 5, at=datetime(2026, 1, 1))
    with pytest.raises(NotFoundError):
        service.redeem(lcrm, 12345, 5)
    with pytest.raises(
        ValidationError, match=r"^points: redeem of 1 would overdraw the balance of 0"
    ):
        service.redeem(lcrm, ann, 1)
    assert count(lcrm, ledger) == 0


def test_idempotency_keys_apply_once(lcrm: CRM) -> None:
    """Idempotency keys apply once."""
    ann = member(lcrm)
    bob = member(lcrm, "Bob")
    first = service.earn(lcrm, ann, 100, idempotency_key="order-1")
    again = service.earn(lcrm, ann, 100, idempotency_key="order-1")
    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert service.balance(lcrm, ann).points == 100
    with pytest.raises(ConflictError, match=r"^idempotency_key: 'order-1' was already used"):
        service.earn(lcrm, ann, 99, idempotency_key="order-1")
    with pytest.raises(ConflictError, match=r"idempotency_key"):
        service.earn(lcrm, bob, 100, idempotency_key="order-1")
    with pytest.raises(ConflictError, match=r"idempotency_key"):
        service.redeem(lcrm, ann, 100, idempotency_key="order-1")
    redeemed = service.redeem(lcrm, ann, 40, idempotency_key="r-1")
    assert service.redeem(lcrm, ann, 40, idempotency_key="r-1").id == redeemed.id
    assert service.balance(lcrm, ann).points == 60
    assert service.balance(lcrm, bob).points == 0


def test_redemption_consumes_oldest_unexpired_lots_first(lcrm: CRM, clock: FrozenClock) -> None:
    """Redemption consumes oldest unexpired lots first."""
    ann = member(lcrm, joined_at=T0 - timedelta(days=800))
    old = service.earn(lcrm, ann, 30, at=T0 - timedelta(days=400))  # expired at T0
    mid = service.earn(lcrm, ann, 50, at=T0 - timedelta(days=100))
    new = service.earn(lcrm, ann, 70, at=T0 - timedelta(days=10))
    assert old.expires_at == add_months(T0 - timedelta(days=400), 12)
    state = service.balance(lcrm, ann)
    assert (state.points, state.overdue, state.available) == (150, 30, 120)
    with pytest.raises(ValidationError, match=r"overdraw the balance of 120"):
        service.redeem(lcrm, ann, 121)
    entry = service.redeem(lcrm, ann, 60)
    lots = lots_table(lcrm.metadata)
    allocations = allocations_table(lcrm.metadata)
    with lcrm.reading() as uow:
        remaining = dict(uow.connection.execute(sa.select(lots.c.id, lots.c.remaining)).all())
        taken = dict(
            uow.connection.execute(
                sa.select(allocations.c.lot_id, allocations.c.points).where(
                    allocations.c.entry_id == entry.id
                )
            ).all()
        )
    assert remaining == {old.id: 0, mid.id: 0, new.id: 60}  # the old lot expired first
    assert taken == {mid.id: 50, new.id: 10}
    kinds = [(e["kind"], e["points"]) for e in service.history(lcrm, ann)]
    assert kinds[:1] == [("redeem", -60)] and ("expire", -30) in kinds
    assert service.history(lcrm, ann)[0]["balance_after"] == 60


def test_expiry_is_exact_to_the_point_and_idempotent(lcrm: CRM) -> None:
    """Expiry is exact to the point and idempotent."""
    ann = member(lcrm, joined_at=datetime(2024, 1, 1, tzinfo=UTC))
    earned_at = datetime(2025, 3, 31, 15, 30, tzinfo=UTC)
    service.earn(lcrm, ann, 25, at=earned_at)
    service.earn(lcrm, ann, 40, at=earned_at + timedelta(seconds=1))
    service.redeem(lcrm, ann, 5, at=earned_at + timedelta(days=1))
    expiry = datetime(2026, 3, 31, 15, 30, tzinfo=UTC)
    assert service.expire(lcrm, as_of=expiry - timedelta(microseconds=1)).points == 0
    run = service.expire(lcrm, as_of=expiry)
    assert (run.lots, run.points, run.members) == (1, 20, 1)
    assert service.expire(lcrm, as_of=expiry).points == 0
    assert service.balance(lcrm, ann, as_of=expiry).points == 40
    run = service.expire(lcrm, as_of=date(2026, 3, 31))  # a date: the end of that day
    assert (run.lots, run.points) == (1, 40)
    assert service.expire(lcrm, as_of=date(2027, 1, 1)).points == 0
    entries = [e for e in service.history(lcrm, ann) if e["kind"] == "expire"]
    assert [(e["points"], e["occurred_at"]) for e in entries] == [
        (-40, (expiry + timedelta(seconds=1)).isoformat()),
        (-20, expiry.isoformat()),
    ]
    assert service.balance(lcrm, ann).points == 0


def test_points_never_expire_with_expiry_months_zero(open_loyalty: Callable[..., CRM]) -> None:
    """Points never expire with expiry months zero."""
    crm = open_loyalty({"expiry_months": 0})
    ann = member(crm)
    assert service.earn(crm, ann, 10, at=T0 - timedelta(days=3000)).expires_at is None
    assert service.expire(crm, as_of=T0 + timedelta(days=9000)).points == 0


# --- automatic earning -------------------------------------------------------------------


def test_only_members_purchases_in_programme_currency_after_joining_earn(lcrm: CRM) -> None:
    """Only members purchases in programme currency after joining earn."""
    ann = member(lcrm, joined_at=T0 - timedelta(days=1))
    stranger = lcrm.customers.create({"name": "Stranger"}).id
    assert stranger is not None
    buy(lcrm, ann, "10", when=T0 - timedelta(days=2))  # before joining
    buy(lcrm, ann, "10", currency="USD")
    buy(lcrm, stranger, "10")
    assert service.balance(lcrm, ann).points == 0
    assert count(lcrm, ledger_table(lcrm.metadata)) == 0
    assert service.backfill(lcrm) == 0  # the purchase before joining stays unearned
    buy(lcrm, ann, "10.99", items=[{"sku": "B1", "category": "books"}])
    assert service.balance(lcrm, ann).points == 32 + 50  # floor(10.99 * 3) + first purchase


def test_backfill_applies_earlier_purchases_once(lcrm: CRM) -> None:
    """Backfill applies earlier purchases once."""
    cid = lcrm.customers.create({"name": "Late"}).id
    assert cid is not None
    first = buy(lcrm, cid, "20", when=T0 - timedelta(days=30))
    buy(lcrm, cid, "30", when=T0 - timedelta(days=20))
    lcrm.interactions.record(
        {
            "customer_id": cid,
            "kind": "refund",
            "occurred_at": T0 - timedelta(days=10),
            "amount": Decimal("20"),
            "currency": "EUR",
            "payload": {"refund_of": first},
        }
    )
    service.enroll(lcrm, cid, joined_at=T0 - timedelta(days=60))
    assert service.backfill(lcrm) == 4  # two earns, the first-purchase bonus, a reversal
    assert service.backfill(lcrm) == 0
    assert service.balance(lcrm, cid).points == 30  # 20 + 50 bonus reversed in full


def test_a_failing_plugin_rolls_back_earning(open_loyalty: Callable[..., CRM]) -> None:
    """A failing plugin rolls back earning."""

    class Saboteur:
        @hookimpl(trylast=True)
        def crm_interactions_recorded(
            self, ctx: UnitOfWork, interactions: Sequence[Interaction]
        ) -> None:
            """Fail after the loyalty plugin has written."""
            raise RuntimeError("boom")

    crm = open_loyalty(extra_plugins=[Saboteur()])
    ann = member(crm)
    with pytest.raises(Exception, match=r"boom"):
        buy(crm, ann, "10")
    assert count(crm, ledger_table(crm.metadata)) == 0
    assert count(crm, crm.metadata.tables["crm_interactions"]) == 0


def test_earning_is_batch_first(lcrm: CRM) -> None:
    """Earning is batch first."""
    ids = [lcrm.customers.create({"name": f"C{i}"}).id for i in range(60)]
    service.enroll_many(lcrm, [{"customer_id": cid} for cid in ids])

    def statements(size: int) -> int:
        seen: list[str] = []

        def listener(*args: Any) -> None:
            if "loyalty_" in args[2]:
                seen.append(args[2])

        sa.event.listen(lcrm.engine, "before_cursor_execute", listener)
        try:
            lcrm.interactions.record_many(
                {
                    "customer_id": ids[i % len(ids)],
                    "kind": "purchase",
                    "channel": "web",
                    "occurred_at": T0,
                    "amount": "12.50",
                    "currency": "EUR",
                }
                for i in range(size)
            )
        finally:
            sa.event.remove(lcrm.engine, "before_cursor_execute", listener)
        return len(seen)

    small, large = statements(10), statements(400)
    assert large == small  # a constant number of statements per batch
    ledger = ledger_table(lcrm.metadata)
    assert count(lcrm, ledger, ledger.c.kind == "earn") == 410 + 60  # 60 first-purchase bonuses


def test_referral_bonus_goes_to_active_referrer_once(lcrm: CRM) -> None:
    """Referral bonus goes to active referrer once."""
    ann = member(lcrm)
    bob = member(lcrm, "Bob", referred_by=ann)
    buy(lcrm, bob, "10")
    buy(lcrm, bob, "10")
    assert service.balance(lcrm, ann).points == 100
    assert service.balance(lcrm, bob).points == 20 + 50


# --- tiers -------------------------------------------------------------------------------


def test_tiers_upgrade_and_downgrade_over_the_rolling_window(
    open_loyalty: Callable[..., CRM],
) -> None:
    """Tiers upgrade and downgrade over the rolling window."""
    watcher = TierWatcher()
    crm = open_loyalty(extra_plugins=[watcher])
    ann = member(crm, joined_at=datetime(2025, 1, 1, tzinfo=UTC))
    buy(crm, ann, "1500", when=datetime(2025, 2, 1, tzinfo=UTC))
    buy(crm, ann, "600", when=datetime(2025, 3, 1, tzinfo=UTC))
    watcher.calls.clear()
    changes = service.evaluate_tiers(crm, as_of=date(2025, 3, 1))
    assert [(c.from_tier, c.to_tier) for c in changes] == [("member", "gold")]
    assert watcher.calls[0][0]["reason"] == "upgrade: spend 2100 over 12 months"
    assert service.evaluate_tiers(crm, as_of=date(2025, 3, 1)) == []
    changes = service.evaluate_tiers(crm, as_of=date(2026, 2, 1))  # the 1500 left the window
    assert [(c.from_tier, c.to_tier) for c in changes] == [("gold", "silver")]
    changes = service.evaluate_tiers(crm, as_of=date(2026, 3, 1))
    assert [(c.from_tier, c.to_tier) for c in changes] == [("silver", "member")]
    assert [c[0]["to_tier"] for c in watcher.calls] == ["gold", "silver", "member"]
    history = service.tier_history(crm, ann)
    assert [h["to_tier"] for h in history] == ["member", "gold", "silver", "member"]


# --- compensation, views, privacy --------------------------------------------------------


def test_complaint_points_compensation_is_credited_once(lcrm: CRM) -> None:
    """Complaint points compensation is credited once."""
    ann = member(lcrm)
    newcomer = lcrm.customers.create({"name": "New"}).id
    assert newcomer is not None
    payload = [
        {
            "complaint_id": 7,
            "customer_id": ann,
            "kind": "points",
            "points": 300,
            "amount": None,
            "currency": None,
            "reason": "late delivery",
            "idempotency_key": "complaint-7-comp",
        },
        {
            "complaint_id": 8,
            "customer_id": newcomer,
            "kind": "points",
            "points": 50,
            "amount": None,
            "currency": None,
            "reason": "rude",
            "idempotency_key": "complaint-8-comp",
        },
        {
            "complaint_id": 9,
            "customer_id": ann,
            "kind": "refund",
            "points": None,
            "amount": Decimal("5"),
            "currency": "EUR",
            "reason": "refund",
            "idempotency_key": "complaint-9-comp",
        },
    ]
    for _ in range(2):
        with lcrm.unit_of_work() as uow:
            lcrm.call_hook("complaints_compensation_issued", ctx=uow, compensations=payload)
    assert service.balance(lcrm, ann).points == 300
    assert service.balance(lcrm, newcomer).points == 50
    entry = service.history(lcrm, ann)[0]
    assert (entry["kind"], entry["reason"]) == ("adjust", "complaint 7: late delivery")
    clash = [{**payload[0], "points": 301}]
    with pytest.raises(ConflictError), lcrm.unit_of_work() as uow:
        lcrm.call_hook("complaints_compensation_issued", ctx=uow, compensations=clash)


def test_profile_metrics_export_erase_and_delete(lcrm: CRM, clock: FrozenClock) -> None:
    """Profile metrics export erase and delete."""
    ann = member(lcrm, joined_at=T0 - timedelta(days=5))
    bob = member(lcrm, "Bob", referred_by=ann, joined_at=T0 - timedelta(days=5))
    other = lcrm.customers.create({"name": "Non member"}).id
    assert other is not None
    buy(lcrm, ann, "100", when=T0 - timedelta(days=1))
    buy(lcrm, ann, "50", when=T0 - timedelta(hours=1))
    buy(lcrm, bob, "10", when=T0 - timedelta(hours=1))
    buy(lcrm, other, "10", when=T0 - timedelta(hours=1))
    service.redeem(lcrm, ann, 100, at=T0)
    section = lcrm.customers.profile(ann)["plugins"]["loyalty"]
    assert section["points"] == 100 + 50 + 50 + 100 - 100
    assert (section["tier"], section["benefits"], section["expiring_soon"]) == ("member", [], 0)
    assert "loyalty" not in lcrm.customers.profile(other)["plugins"]

    figures = lcrm.metrics(Period(T0 - timedelta(days=30), T0 + timedelta(seconds=1)))["loyalty"]
    assert figures["active_members"] == 2
    assert figures["new_members"] == 2
    assert figures["enrollment_rate"] == round(2 / 3, 4)
    assert figures["points_issued"] == 100 + 50 + 50 + 10 + 50 + 100
    assert figures["points_redeemed"] == 100
    assert figures["redemption_rate"] == round(100 / 360, 4)
    assert figures["points_outstanding"] == 260
    assert figures["liability"] == Decimal("2.60")
    assert figures["repeat_purchase_rate_members"] == 0.5
    assert figures["repeat_purchase_rate_non_members"] == 0.0

    exported = lcrm.customers.export(ann)["plugins"]["loyalty"]
    assert exported["member"]["member_number"] == f"M{ann:08d}"
    assert exported["balance"] == 200 and len(exported["ledger"]) == 5

    lcrm.customers.erase(ann)
    ledger = ledger_table(lcrm.metadata)
    assert count(lcrm, ledger, ledger.c.customer_id == ann) == 0
    assert count(lcrm, ledger, ledger.c.idempotency_key.like("%referral%")) == 0
    assert (
        count(lcrm, members_table(lcrm.metadata), members_table(lcrm.metadata).c.customer_id == ann)
        == 0
    )
    assert service.get_member(lcrm, bob).referred_by is None
    assert "loyalty" not in lcrm.customers.export(ann)["plugins"]
    after = kpis.metrics(lcrm, Period(T0 - timedelta(days=30), T0 + timedelta(days=1)))
    assert after["points_issued"] == figures["points_issued"]  # anonymous totals remain
    assert after["points_outstanding"] == 60  # Ann's balance was forfeited

    lcrm.customers.delete(bob)
    assert count(lcrm, ledger, ledger.c.customer_id == bob) == 0
    assert count(lcrm, lots_table(lcrm.metadata)) == 0
