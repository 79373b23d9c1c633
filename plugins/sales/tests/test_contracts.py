"""Issue 12 item 4: contracts, schedules, payments as core purchases, ageing and the sweep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from crmcore_sales import contracts, deals, receivables, stages
from crmcore_sales.tables import payments_table

from crmcore import CRM
from crmcore.errors import ConflictError, ValidationError
from crmcore.hooks import hookimpl
from crmcore.testing import FrozenClock


def _won(crm: CRM, customer_id: int, amount: str = "1200") -> int:
    deal = deals.add_deal(
        crm,
        {
            "customer_id": customer_id,
            "title": "Licence",
            "expected_close": "2026-01-31",
            "amount": amount,
            "owner": "alice",
        },
    )
    stages.win_deal(crm, deal.id, reason="price")
    return deal.id


def _contract(crm: CRM, customer_id: int, **data: Any) -> dict[str, Any]:
    fields = {"start_date": "2026-01-01", "end_date": "2026-12-31", **data}
    return contracts.create_contract(crm, _won(crm, customer_id), fields)


def test_contract_schedule_defaults_and_validation(scrm: CRM, org: int) -> None:
    contract = _contract(scrm, org, instalment_count=3, payment_terms_days=14)
    assert contract["value"] == "1200" and contract["currency"] == "EUR"
    assert [(i["due_date"], i["amount"]) for i in contract["instalments"]] == [
        ("2026-01-15", "400"),
        ("2026-02-15", "400"),
        ("2026-03-15", "400"),
    ]
    odd = _contract(scrm, org, value="100", instalment_count=3)
    assert [i["amount"] for i in odd["instalments"]] == ["33.33", "33.33", "33.34"]
    open_deal = deals.add_deal(
        scrm, {"customer_id": org, "title": "x", "expected_close": "2026-02-01"}
    )
    with pytest.raises(ValidationError) as info:
        contracts.create_contract(
            scrm, open_deal.id, {"start_date": "2026-01-01", "end_date": "2026-12-31"}
        )
    assert info.value.field == "deal_id"
    for data, field in (
        ({"end_date": "2025-01-01"}, "end_date"),
        ({"instalments": [{"due_date": "2026-02-01", "amount": "5"}]}, "instalments"),
        ({"instalments": [{"due_date": "soon", "amount": "1200"}]}, "instalments[0].due_date"),
        ({"value": "0"}, "value"),
        ({"payment_terms": 3}, "payment_terms"),
    ):
        with pytest.raises(ValidationError) as info:
            _contract(scrm, org, **data)
        assert info.value.field == field


def test_payment_records_one_purchase_and_is_idempotent(
    scrm: CRM, org: int, clock: FrozenClock
) -> None:
    contract = _contract(scrm, org, instalment_count=2)
    clock.advance(days=40)
    paid = contracts.record_payment(scrm, contract["id"], "600", reference="INV-1")
    again = contracts.record_payment(scrm, contract["id"], Decimal("600"), reference="INV-1")
    assert again == paid
    purchases = scrm.interactions.list(customer_id=org).items
    assert [(p.kind.value, p.amount, p.external_id) for p in purchases] == [
        ("purchase", Decimal("600"), "payment:INV-1")
    ]
    assert paid["interaction_id"] == purchases[0].id
    with pytest.raises(ConflictError):
        contracts.record_payment(scrm, contract["id"], "500", reference="INV-1")
    with pytest.raises(ValidationError) as info:
        contracts.record_payment(scrm, contract["id"], "601", reference="INV-2")
    assert info.value.field == "amount"
    with pytest.raises(ValidationError) as info:
        contracts.record_payment(scrm, contract["id"], 10.0, reference="INV-3")
    assert info.value.field == "amount"
    with pytest.raises(ValidationError) as info:
        contracts.record_payment(
            scrm, contract["id"], "1", reference="INV-4", received_on=clock().date() + timedelta(1)
        )
    assert info.value.field == "received_on"
    state = contracts.get_contract(scrm, contract["id"])
    assert state["outstanding"] == "600"
    assert [i["outstanding"] for i in state["instalments"]] == ["0", "600"]
    with scrm.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(payments_table(scrm.metadata)))
        assert count.scalar() == 1


def test_a_failing_reaction_rolls_the_payment_and_its_purchase_back(
    open_crm: Callable[..., CRM],
) -> None:
    class Refuse:
        @hookimpl(trylast=True)
        def crm_interactions_recorded(self, ctx: Any, interactions: Any) -> None:
            raise ValidationError("amount: refused by a test plugin", field="amount")

    crm = open_crm(extra=[Refuse()])
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    contract = _contract(crm, cid)
    with pytest.raises(ValidationError):
        contracts.record_payment(crm, contract["id"], "10", reference="R-1")
    assert contracts.list_payments(crm) == []
    assert crm.interactions.list(customer_id=cid).items == []


def test_ageing_buckets_and_fifo_settlement(scrm: CRM, org: int, clock: FrozenClock) -> None:
    today = clock().date()
    instalments = [
        {"due_date": (today - timedelta(days=d)).isoformat(), "amount": "100"}
        for d in (120, 91, 90, 61, 60, 31, 30, 1, 0, -5)
    ]
    contract = _contract(scrm, org, value="1000", instalments=instalments, start_date="2025-01-01")
    report = receivables.ageing(scrm)
    assert report["currencies"]["EUR"] == {
        "current": Decimal(200),
        "1-30": Decimal(200),
        "31-60": Decimal(200),
        "61-90": Decimal(200),
        "90+": Decimal(200),
        "total": Decimal(1000),
    }
    contracts.record_payment(
        scrm, contract["id"], "250", reference="P1", received_on=today - timedelta(days=2)
    )
    report = receivables.ageing(scrm)["currencies"]["EUR"]
    assert (report["90+"], report["61-90"], report["total"]) == (Decimal(0), Decimal(150), 750)
    before = receivables.ageing(scrm, as_of=today - timedelta(days=3))["currencies"]["EUR"]
    assert before == {  # the payment came later: nothing settled, every day 3 fewer past due
        "current": Decimal(300),
        "1-30": Decimal(200),
        "31-60": Decimal(200),
        "61-90": Decimal(200),
        "90+": Decimal(100),
        "total": Decimal(1000),
    }
    with pytest.raises(ValidationError) as info:
        receivables.ageing(scrm, as_of="yesterday")
    assert info.value.field == "as_of"


def test_sweep_fires_each_hook_once(
    open_crm: Callable[..., CRM], recorder: Any, clock: FrozenClock
) -> None:
    crm = open_crm({"renewal_notice_days": 30})
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    today = clock().date()
    contract = _contract(
        crm,
        cid,
        start_date=(today - timedelta(days=60)).isoformat(),
        end_date=(today + timedelta(days=20)).isoformat(),
        instalments=[
            {"due_date": (today - timedelta(days=10)).isoformat(), "amount": "700"},
            {"due_date": (today + timedelta(days=10)).isoformat(), "amount": "500"},
        ],
    )
    first = receivables.sweep(crm)
    assert [(o["contract_id"], o["outstanding"], o["days_overdue"]) for o in first["overdue"]] == [
        (contract["id"], "700", 10)
    ]
    assert [(r["contract_id"], r["days_left"]) for r in first["renewals"]] == [(contract["id"], 20)]
    assert recorder.calls == 2 and len(recorder.overdue) == 1
    assert receivables.sweep(crm) == {"overdue": [], "renewals": []}
    assert recorder.calls == 2
    clock.advance(days=11)
    second = receivables.sweep(crm)
    assert [o["outstanding"] for o in second["overdue"]] == ["500"]


def test_a_failing_hook_rolls_the_sweep_back(
    open_crm: Callable[..., CRM], clock: FrozenClock
) -> None:
    class Boom:
        @hookimpl
        def sales_instalments_overdue(self, ctx: Any, instalments: Any) -> None:
            raise RuntimeError("task system down")

    crm = open_crm(extra=[Boom()])
    cid = crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    _contract(crm, cid, start_date="2025-06-01", end_date="2026-06-01")
    with pytest.raises(Exception, match="task system down"):
        receivables.sweep(crm)
    assert receivables.ageing(crm)["currencies"]["EUR"]["total"] == Decimal(1200)
    assert date.fromisoformat(receivables.ageing(crm)["as_of"]) == clock().date()
