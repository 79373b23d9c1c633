"""Issue 12 items 1-2: deals, pipelines, stage moves with history, validation, stale flags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from crmcore_sales import deals, stages
from crmcore_sales.tables import deals_table, history_table

from crmcore import CRM
from crmcore.errors import ConfigError, NotFoundError, TransitionError, ValidationError
from crmcore.testing import FrozenClock


def _deal(crm: CRM, customer_id: int, **extra: Any) -> Any:
    return deals.add_deal(
        crm,
        {"customer_id": customer_id, "title": "Fleet", "expected_close": "2026-03-31", **extra},
    )


def test_plugin_is_discovered_and_creates_its_tables(crm_factory: Callable[..., CRM]) -> None:
    crm = crm_factory(discover=True)
    assert "sales" in {p.name for p in crm.plugins()}
    with crm.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert {"sales_deals", "sales_deal_history", "sales_payments", "sales_targets"} <= names


def test_add_deal_defaults_contacts_items_and_history(scrm: CRM, org: int) -> None:
    person = scrm.accounts.contacts(org)[0].person_id
    deal = _deal(
        scrm,
        org,
        items=[{"product": "van", "quantity": 3, "unit_price": "19999.99"}],
        contacts=[{"contact_id": person}],
        owner="alice",
        channel="web",
        campaign_id="spring-26",
    )
    assert deal.amount == Decimal("59999.97") and deal.currency == "EUR"
    assert (deal.pipeline, deal.stage, deal.status, deal.probability) == (
        "new_business",
        "qualification",
        "open",
        10,
    )
    assert deal.weighted_amount == Decimal("5999.997")
    assert [(c.contact_id, c.role) for c in deal.contacts] == [(person, "decision_maker")]
    assert deal.expected_close == date(2026, 3, 31)
    history = deals.deal_history(scrm, deal.id)
    assert {h.field: h.new for h in history}["amount"] == "59999.97"
    assert all(h.old is None for h in history)
    entries = scrm.audit.query(action="sales.*").items
    assert [e.action for e in entries] == ["sales.deal_add"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"amount": 12.5}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.00001"}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"expected_close": "31/03/2026"}, "expected_close"),
        ({"pipeline": "nope"}, "pipeline"),
        ({"stage": "won"}, "stage"),
        ({"probability": 101}, "probability"),
        ({"title": "  "}, "title"),
        ({"colour": "red"}, "colour"),
        ({"items": [{"product": "x", "quantity": 0, "unit_price": "1"}]}, "items[0].quantity"),
        ({"contacts": [{"contact_id": 999}]}, "contacts[0].contact_id"),
        ({"category": "maybe"}, "category"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    scrm: CRM, org: int, extra: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _deal(scrm, org, **extra)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    with scrm.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(deals_table(scrm.metadata))
            ).scalar()
            == 0
        )


def test_unknown_customer_is_not_found(scrm: CRM) -> None:
    with pytest.raises(NotFoundError):
        _deal(scrm, 12345)


def test_moves_follow_the_pipeline_and_record_history(
    scrm: CRM, org: int, clock: FrozenClock
) -> None:
    deal = _deal(scrm, org, amount="1000")
    clock.advance(days=3)
    moved = stages.move_deal(scrm, deal.id, "proposal", actor="bob")
    assert (moved.stage, moved.probability, moved.category) == ("proposal", 50, "best_case")
    assert moved.stage_changed_at == clock()
    override = stages.move_deal(scrm, deal.id, "negotiation", probability=60)
    assert override.probability == 60
    won = stages.win_deal(scrm, deal.id, reason="price")
    assert (won.status, won.stage, won.probability, won.closed_at) == ("won", "won", 100, clock())
    with pytest.raises(TransitionError, match="reopen it"):
        stages.move_deal(scrm, deal.id, "proposal")
    with pytest.raises(TransitionError, match="only won or lost"):
        stages.reopen_deal(scrm, _deal(scrm, org).id)
    reopened = stages.reopen_deal(scrm, deal.id, stage="proposal")
    assert (reopened.status, reopened.stage, reopened.reopen_count, reopened.closed_at) == (
        "open",
        "proposal",
        1,
        None,
    )
    lost = stages.lose_deal(scrm, deal.id, reason="competitor", competitor="Globex")
    assert (lost.status, lost.probability, lost.competitor) == ("lost", 0, "Globex")
    stage_moves = [(h.old, h.new) for h in deals.deal_history(scrm, deal.id) if h.field == "stage"]
    assert stage_moves == [
        (None, "qualification"),
        ("qualification", "proposal"),
        ("proposal", "negotiation"),
        ("negotiation", "won"),
        ("won", "proposal"),
        ("proposal", "lost"),
    ]
    actors = {h.actor for h in deals.deal_history(scrm, deal.id) if h.new == "proposal"}
    assert "bob" in actors


def test_reasons_come_from_the_configured_lists(scrm: CRM, org: int) -> None:
    deal = _deal(scrm, org)
    with pytest.raises(ValidationError) as info:
        stages.win_deal(scrm, deal.id, reason="luck")
    assert info.value.field == "reason"
    with pytest.raises(ValidationError):
        stages.lose_deal(scrm, deal.id, reason="luck")
    assert deals.get_deal(scrm, deal.id).status == "open"


def test_configured_moves_and_stages(open_crm: Callable[..., CRM]) -> None:
    crm = open_crm(
        {
            "currency": "USD",
            "pipelines": {
                "direct": {
                    "stages": [
                        {"name": "lead", "probability": 5, "stale_days": 7},
                        {"name": "quote", "probability": 40},
                    ],
                    "moves": {"lead": ["quote", "lost"]},
                    "won_reasons": ["fit"],
                }
            },
        }
    )
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    deal = _deal(crm, cid)
    assert (deal.pipeline, deal.currency, deal.probability) == ("direct", "USD", 5)
    with pytest.raises(TransitionError, match="from lead to won"):
        stages.win_deal(crm, deal.id, reason="fit")
    stages.move_deal(crm, deal.id, "quote")
    assert stages.win_deal(crm, deal.id, reason="fit").status == "won"


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"pipelines": {"p": {"stages": [{"name": "won", "probability": 1}]}}}, "reserved"),
        (
            {
                "pipelines": {
                    "p": {"stages": [{"name": "a", "probability": 1}], "moves": {"a": ["z"]}}
                }
            },
            "plugins.sales.pipelines.p.moves.a",
        ),
        ({"default_pipeline": "nope"}, "default_pipeline"),
        ({"currency": "eur"}, "currency"),
    ],
)
def test_bad_configuration_is_refused(
    open_crm: Callable[..., CRM], section: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        open_crm(section)


def test_stale_flag_follows_stage_and_activity(scrm: CRM, org: int, clock: FrozenClock) -> None:
    deal = _deal(scrm, org)  # qualification: stale after 14 days
    clock.advance(days=13)
    assert not deals.get_deal(scrm, deal.id).stale
    clock.advance(days=1)
    assert deals.get_deal(scrm, deal.id).stale
    assert [d.id for d in deals.list_deals(scrm, stale=True)] == [deal.id]
    scrm.interactions.record({"customer_id": org, "kind": "call", "occurred_at": clock()})
    fresh = deals.get_deal(scrm, deal.id)
    assert not fresh.stale and fresh.last_activity_at == clock()
    assert deals.list_deals(scrm, stale=True) == []


def test_update_tracks_fields_and_closed_deals_keep_their_amount(
    scrm: CRM, org: int, clock: FrozenClock
) -> None:
    deal = _deal(scrm, org, amount="100")
    clock.advance(hours=1)
    updated = deals.update_deal(
        scrm, deal.id, {"amount": "250.50", "expected_close": "2026-04-30", "notes": "call back"}
    )
    assert updated.amount == Decimal("250.50") and updated.notes == "call back"
    changes = [(h.field, h.old, h.new) for h in deals.deal_history(scrm, deal.id) if h.old]
    assert changes == [("amount", "100", "250.50"), ("expected_close", "2026-03-31", "2026-04-30")]
    stages.win_deal(scrm, deal.id, reason="price")
    with pytest.raises(ValidationError) as info:
        deals.update_deal(scrm, deal.id, {"amount": "1"})
    assert info.value.field == "amount"
    with pytest.raises(ValidationError) as info:
        stages.move_deal(scrm, _deal(scrm, org).id, "proposal", at=clock() + timedelta(days=1))
    assert info.value.field == "at"


def test_a_later_failure_rolls_the_win_back(open_crm: Callable[..., CRM]) -> None:
    crm = open_crm()
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    deal = _deal(crm, cid)
    with pytest.raises(ValidationError), crm.unit_of_work() as uow:
        stages.win_deal(crm, deal.id, reason="price", ctx=uow)
        raise ValidationError("late failure")
    assert deals.get_deal(crm, deal.id).status == "open"
    history = history_table(crm.metadata)
    with crm.engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(history).where(history.c.new == "won")
        ).scalar()
    assert count == 0


def test_backdated_history(scrm: CRM, org: int, clock: FrozenClock) -> None:
    start = clock() - timedelta(days=40)
    deal = deals.add_deal(
        scrm, {"customer_id": org, "title": "Old", "expected_close": "2026-01-15"}, at=start
    )
    stages.move_deal(scrm, deal.id, "proposal", at=start + timedelta(days=10))
    with pytest.raises(ValidationError):
        stages.move_deal(scrm, deal.id, "negotiation", at=start + timedelta(days=5))
    assert deals.get_deal(scrm, deal.id).stage_changed_at == datetime(2025, 12, 2, 12, tzinfo=UTC)
