"""Profile, metrics, churn signals, export, erase and delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from crmcore_surveys import catalog, distribution, responses
from crmcore_surveys.scoring import survey_report
from crmcore_surveys.templates import template

from crmcore import CRM, Period
from crmcore.testing import FrozenClock


@pytest.fixture
def answered(scrm: CRM, clock: FrozenClock) -> tuple[CRM, int, int]:
    """Answered."""
    catalog.create_survey(scrm, template("nps"))
    catalog.create_survey(scrm, template("satisfaction"))
    a = scrm.customers.create({"name": "Ann", "consent": {"surveys": True}}).id
    b = scrm.customers.create({"name": "Bob", "consent": {"surveys": True}}).id
    assert a is not None and b is not None
    invs = {i.customer_id: i for i in distribution.invite(scrm, "nps").invitations}
    responses.record_response(
        scrm,
        token=invs[a].token,
        answers={"recommend": 2, "reason": "my parcel never came"},
        comment="call me at 555",
        answered_at=clock() - timedelta(days=5),
    )
    responses.record_response(scrm, token=invs[b].token, answers={"recommend": 10})
    return scrm, a, b


def test_profile_section(answered: tuple[CRM, int, int]) -> None:
    """Profile section."""
    crm, a, b = answered
    section = crm.customers.profile(a)["plugins"]["surveys"]
    assert section["responses"] == 1 and section["pending_invitations"] == 0
    latest = section["latest"]["nps"]
    assert latest["nps"] == 2 and latest["nps_category"] == "detractor"
    assert latest["low_score"] == {"metric": "nps", "score": 2.0}
    assert crm.customers.profile(b)["plugins"]["surveys"]["latest"]["nps"]["nps"] == 10


def test_metrics(answered: tuple[CRM, int, int], clock: FrozenClock) -> None:
    """Metrics."""
    crm, _, _ = answered
    figures = crm.metrics(Period(clock() - timedelta(days=30), clock() + timedelta(seconds=1)))
    surveys = figures["surveys"]
    assert surveys["responses"] == 2 and surveys["invitations_sent"] == 2
    assert surveys["response_rate_pct"] == 100.0
    assert surveys["nps"] == 0.0  # one promoter, one detractor
    assert surveys["low_scores"] == 1
    empty = crm.metrics(Period(clock() - timedelta(days=90), clock() - timedelta(days=60)))
    assert empty["surveys"]["nps"] is None and empty["surveys"]["responses"] == 0


def test_churn_signals(answered: tuple[CRM, int, int], clock: FrozenClock) -> None:
    """Churn signals."""
    crm, a, b = answered
    [signal] = crm.churn_signals([a, b])
    assert signal.customer_id == a and signal.source == "surveys"
    assert "nps 2" in signal.reason and signal.weight == pytest.approx(0.4)
    clock.advance(days=120)
    assert crm.churn_signals([a, b]) == []


def test_export_and_erase_leave_no_personal_trace(answered: tuple[CRM, int, int]) -> None:
    """Export and erase leave no personal trace."""
    crm, a, _ = answered
    before = survey_report(crm, "nps", trend=None)["nps"]
    exported = crm.customers.export(a)["plugins"]["surveys"]
    assert exported["responses"][0]["answers"]["reason"] == "my parcel never came"
    assert exported["responses"][0]["comment"] == "call me at 555"
    assert exported["invitations"][0]["status"] == "answered"
    crm.customers.erase(a)
    assert crm.customers.export(a)["plugins"].get("surveys") is None
    with crm.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("surveys_responses", "surveys_answers", "surveys_invitations")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
        )
        linked = conn.execute(
            sa.text("SELECT count(*) FROM surveys_responses WHERE customer_id = :c"), {"c": a}
        ).scalar_one()
    assert "parcel" not in dump and "555" not in dump and linked == 0
    assert survey_report(crm, "nps", trend=None)["nps"] == before  # anonymous scores stay


def test_deleting_customers_deletes_their_rows(answered: tuple[CRM, int, int]) -> None:
    """Deleting customers deletes their rows."""
    crm, a, b = answered
    crm.customers.delete(a)
    with crm.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT customer_id FROM surveys_responses")).scalars().all()
        invited = conn.execute(sa.text("SELECT customer_id FROM surveys_invitations")).scalars()
        assert list(left) == [b] and list(invited) == [b]
