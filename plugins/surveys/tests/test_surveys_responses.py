"""Recording responses: validation, one per invitation, core interaction, low-score hook."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import crmcore_surveys.plugin
import pytest
from crmcore_surveys import catalog, distribution, responses
from crmcore_surveys.templates import template

from crmcore import CRM, ConflictError, NotFoundError, UnitOfWork, ValidationError
from crmcore.hooks import hookimpl
from crmcore.testing import FrozenClock

CONTRACT = {
    "response_id",
    "survey_id",
    "survey_key",
    "survey_version",
    "customer_id",
    "metric",
    "score",
    "threshold",
    "answered_at",
    "comment",
}


class Listener:
    """A plugin implementing surveys_low_score, recording what it receives."""

    def __init__(self, fail: bool = False) -> None:
        """Init."""
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail

    @hookimpl(optionalhook=True)
    def surveys_low_score(self, ctx: UnitOfWork, responses: Sequence[Mapping[str, Any]]) -> None:
        """Surveys low score."""
        self.calls.append([dict(r) for r in responses])
        if self.fail:
            raise RuntimeError("follow-up failed")


@pytest.fixture
def listener() -> Listener:
    """Listener."""
    return Listener()


@pytest.fixture
def lcrm(crm_factory: Callable[..., CRM], listener: Listener) -> CRM:
    """Lcrm."""
    crm = crm_factory(plugins=[crmcore_surveys.plugin, listener])
    catalog.create_survey(crm, template("nps"))
    catalog.create_survey(crm, template("satisfaction"))
    return crm


@pytest.fixture
def customers(lcrm: CRM) -> list[int]:
    """Customers."""
    made = lcrm.customers.create_many(
        {"name": f"C{i}", "consent": {"surveys": True}} for i in range(4)
    )
    return [c.id for c in made if c.id is not None]


def test_response_by_token_records_interaction_and_answers(
    lcrm: CRM, customers: list[int], clock: FrozenClock
) -> None:
    """Response by token records interaction and answers."""
    inv = distribution.invite(lcrm, "nps", customer_ids=[customers[0]]).invitations[0]
    rec = responses.record_response(
        lcrm, token=inv.token, answers={"recommend": "9", "reason": "fast"}, comment="great"
    )
    assert rec.ratings == {"recommend": 9}
    assert rec.customer_id == customers[0] and rec.invitation_id == inv.id
    assert rec.answered_at == clock() and rec.alert is None
    [interaction] = lcrm.interactions.timeline(customers[0]).items
    assert interaction.kind.value == "survey"
    assert interaction.id == rec.interaction_id
    assert interaction.payload["response_id"] == rec.id
    assert interaction.payload["ratings"] == {"recommend": 9}
    assert interaction.text == "great"
    assert interaction.channel.value == "email"


def test_second_response_to_an_invitation_is_a_conflict(
    lcrm: CRM, customers: list[int], rows_of: Callable[[CRM], dict[str, Any]]
) -> None:
    """Second response to an invitation is a conflict."""
    inv = distribution.invite(lcrm, "nps", customer_ids=[customers[0]]).invitations[0]
    responses.record_response(lcrm, token=inv.token, answers={"recommend": 8})
    before = rows_of(lcrm)
    with pytest.raises(ConflictError, match=r"token: invitation .* already answered"):
        responses.record_response(lcrm, token=inv.token, answers={"recommend": 3})
    with pytest.raises(ConflictError):
        responses.record_responses(
            lcrm, [{"token": t, "answers": {"recommend": 5}} for t in [inv.token] * 2]
        )
    assert rows_of(lcrm) == before
    with pytest.raises(NotFoundError, match="token: no invitation with token 'nope'"):
        responses.record_response(lcrm, token="nope", answers={"recommend": 3})


def test_duplicate_token_inside_one_batch(lcrm: CRM, customers: list[int]) -> None:
    """Duplicate token inside one batch."""
    inv = distribution.invite(lcrm, "nps", customer_ids=[customers[1]]).invitations[0]
    with pytest.raises(ConflictError, match=r"responses\[1\]: token"):
        responses.record_responses(lcrm, [{"token": inv.token, "answers": {"recommend": 5}}] * 2)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"recommend": 11}, "answers.recommend: 11 is outside the scale 0-10"),
        ({"recommend": -1}, "answers.recommend: -1 is outside the scale 0-10"),
        ({"recommend": 7.5}, "answers.recommend: expected a whole number on the scale 0-10"),
        ({"recommend": "ten"}, "answers.recommend: expected a whole number"),
        ({"recommend": True}, "answers.recommend: expected a whole number"),
        ({"reason": "x"}, "answers.recommend: required"),
        ({"recommend": 5, "colour": 1}, "answers.colour: no question 'colour' in survey nps"),
        ({"recommend": 5, "reason": 5}, "answers.reason: expected text"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_stored(
    lcrm: CRM,
    customers: list[int],
    rows_of: Callable[[CRM], dict[str, Any]],
    answers: dict[str, Any],
    message: str,
) -> None:
    """Bad answers are refused and nothing is stored."""
    before = rows_of(lcrm)
    with pytest.raises(ValidationError) as caught:
        responses.record_response(lcrm, survey="nps", customer_id=customers[0], answers=answers)
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.field is not None and caught.value.field.startswith("answers")
    assert rows_of(lcrm) == before


def test_choice_answers(lcrm: CRM, customers: list[int]) -> None:
    """Choice answers."""
    good = {f: 4 for f in ("overall", "product_quality", "service", "communication")}
    good |= {"response_speed": 4, "price": 4}
    rec = responses.record_response(
        lcrm,
        survey="satisfaction",
        customer_id=customers[0],
        answers={**good, "channel": "web", "improve": "delivery|prices"},
    )
    assert rec.ratings["overall"] == 4
    for bad, message in [
        ({"channel": "fax"}, "answers.channel: 'fax' is not one of"),
        ({"improve": ["delivery", "support", "prices"]}, "answers.improve: 3 options chosen"),
        ({"improve": ["delivery", "delivery"]}, "answers.improve: an option is chosen twice"),
        ({"improve": ["nope"]}, "answers.improve: 'nope' is not one of"),
    ]:
        with pytest.raises(ValidationError, match=message):
            responses.record_response(
                lcrm, survey="satisfaction", customer_id=customers[1], answers={**good, **bad}
            )


def test_other_bad_input(
    lcrm: CRM, customers: list[int], clock: FrozenClock, rows_of: Callable[[CRM], dict[str, Any]]
) -> None:
    """Other bad input."""
    before = rows_of(lcrm)
    with pytest.raises(NotFoundError, match="customer_id: customer 999 does not exist"):
        responses.record_response(lcrm, survey="nps", customer_id=999, answers={"recommend": 5})
    with pytest.raises(ValidationError, match=r"answered_at: .* is in the future"):
        responses.record_response(
            lcrm,
            survey="nps",
            customer_id=customers[0],
            answers={"recommend": 5},
            answered_at=clock() + timedelta(days=1),
        )
    with pytest.raises(ValidationError, match="customer_id: required when no invitation"):
        responses.record_response(lcrm, survey="nps", answers={"recommend": 5})
    with pytest.raises(NotFoundError, match="survey: no survey 'zzz'"):
        responses.record_response(lcrm, survey="zzz", customer_id=customers[0], answers={})
    assert rows_of(lcrm) == before


def test_bulk_is_all_or_nothing_unless_rejects_are_handled(
    lcrm: CRM, customers: list[int], rows_of: Callable[[CRM], dict[str, Any]]
) -> None:
    """Bulk is all or nothing unless rejects are handled."""
    items = [
        {"survey": "nps", "customer_id": customers[0], "answers": {"recommend": 9}},
        {"survey": "nps", "customer_id": customers[1], "answers": {"recommend": 12}},
        {"survey": "nps", "customer_id": customers[2], "answers": {"recommend": 2}},
    ]
    before = rows_of(lcrm)
    with pytest.raises(ValidationError, match=r"responses\[1\]: answers.recommend: 12"):
        responses.record_responses(lcrm, items)
    assert rows_of(lcrm) == before
    rejected: list[tuple[int, str]] = []
    stored = responses.record_responses(
        lcrm, items, on_reject=lambda i, _item, exc: rejected.append((i, str(exc))), batch_size=2
    )
    assert [r.customer_id for r in stored] == [customers[0], customers[2]]
    assert rejected == [(1, "answers.recommend: 12 is outside the scale 0-10")]


def test_low_score_hook_contract(lcrm: CRM, customers: list[int], listener: Listener) -> None:
    """Low score hook contract."""
    inv = distribution.invite(lcrm, "nps", customer_ids=customers[:3]).invitations
    stored = responses.record_responses(
        lcrm,
        [
            {"token": inv[0].token, "answers": {"recommend": 3}, "comment": "slow"},
            {"token": inv[1].token, "answers": {"recommend": 9}},
            {"token": inv[2].token, "answers": {"recommend": 6}},
        ],
    )
    [call] = listener.calls  # one call for the batch
    assert [r["response_id"] for r in call] == [stored[0].id, stored[2].id]
    first = call[0]
    assert set(first) == CONTRACT
    assert first["metric"] == "nps"
    assert first["score"] == 3.0 and isinstance(first["score"], float)
    assert first["threshold"] == 7.0
    assert first["survey_key"] == "nps" and first["survey_version"] == 1
    assert first["customer_id"] == inv[0].customer_id
    assert first["comment"] == "slow"
    assert first["answered_at"].tzinfo is not None


def test_one_alert_per_response_nps_first(
    crm_factory: Callable[..., CRM], listener: Listener, customers: list[int], lcrm: CRM
) -> None:
    """One alert per response nps first."""
    definition = {
        "key": "combo",
        "title": "combo",
        "questions": [
            {
                "id": "n",
                "type": "rating",
                "text": "n",
                "scale": {"min": 0, "max": 10},
                "metric": "nps",
            },
            {
                "id": "c",
                "type": "rating",
                "text": "c",
                "scale": {"min": 1, "max": 5},
                "metric": "csat",
            },
        ],
    }
    catalog.create_survey(lcrm, definition)
    responses.record_response(
        lcrm, survey="combo", customer_id=customers[0], answers={"n": 1, "c": 1}
    )
    responses.record_response(
        lcrm, survey="combo", customer_id=customers[1], answers={"n": 9, "c": 2}
    )
    metrics = [r["metric"] for call in listener.calls for r in call]
    thresholds = [r["threshold"] for call in listener.calls for r in call]
    assert metrics == ["nps", "csat"]
    assert thresholds == [7.0, 3.0]  # 1 + 50% of the 1-5 span


def test_index_alert_and_configured_thresholds(
    crm_factory: Callable[..., CRM], listener: Listener
) -> None:
    """Index alert and configured thresholds."""
    crm = crm_factory(
        plugins=[crmcore_surveys.plugin, listener],
        plugin_sections={"surveys": {"nps_threshold": 5, "index_threshold": 60}},
    )
    catalog.create_survey(crm, template("nps"))
    catalog.create_survey(crm, template("b2b"))
    cid = crm.customers.create({"name": "X"}).id
    assert cid is not None
    responses.record_response(crm, survey="nps", customer_id=cid, answers={"recommend": 6})
    assert listener.calls == []  # 6 is not below 5
    dims = ["acceptance", "participation", "information", "guidance", "project_support"]
    answers = {d: 3 for d in dims} | {"preference": 4, "overall": 7}
    responses.record_response(crm, survey="b2b", customer_id=cid, answers=answers)
    [[alert]] = listener.calls
    assert alert["metric"] == "index"
    assert alert["threshold"] == 60.0
    assert 33.3 < alert["score"] < 50.0


def test_a_failing_follow_up_rolls_the_response_back(
    crm_factory: Callable[..., CRM], rows_of: Callable[[CRM], dict[str, Any]]
) -> None:
    """A failing follow up rolls the response back."""
    crm = crm_factory(plugins=[crmcore_surveys.plugin, Listener(fail=True)])
    catalog.create_survey(crm, template("nps"))
    cid = crm.customers.create({"name": "X", "consent": {"surveys": True}}).id
    distribution.invite(crm, "nps")
    before = rows_of(crm)
    with pytest.raises(Exception, match="follow-up failed"):
        responses.record_response(crm, survey="nps", customer_id=cid, answers={"recommend": 0})
    assert rows_of(crm) == before
