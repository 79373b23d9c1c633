"""Invitations: filters, consent, samples (random and stratified), tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crmcore_surveys.plugin
import pytest
from crmcore_surveys import catalog, distribution
from crmcore_surveys.distribution import proportional_allocation
from crmcore_surveys.templates import template

from crmcore import CRM, NotFoundError, ValidationError
from crmcore.hooks import hookimpl


@pytest.fixture
def nps(scrm: CRM) -> None:
    """Nps."""
    catalog.create_survey(scrm, template("nps"))


def test_only_consenting_customers_are_invited(scrm: CRM, people: list[int], nps: None) -> None:
    """Only consenting customers are invited."""
    result = distribution.invite(scrm, "nps")
    assert result.matched == 10
    assert result.skipped_no_consent == 5
    invited = sorted(i.customer_id for i in result.invitations)
    assert invited == people[0::2]
    assert len({i.token for i in result.invitations}) == 5
    again = distribution.invite(scrm, "nps")
    assert (again.already_invited, len(again.invitations)) == (5, 0)


def test_filters(scrm: CRM, people: list[int], nps: None) -> None:
    """Filters."""
    result = distribution.invite(scrm, "nps", filters={"attributes.region": "north"})
    assert sorted(i.customer_id for i in result.invitations) == [people[0], people[2], people[4]]
    vip = distribution.invite(scrm, "nps", filters={"tag": "vip"}, channel="sms")
    assert sorted(i.customer_id for i in vip.invitations) == [people[6]]
    assert vip.channel == "sms"
    with pytest.raises(ValidationError, match=r"filters\.colour: 'colour' is not one of"):
        distribution.invite(scrm, "nps", filters={"colour": "red"})


def test_random_sample_is_seeded(
    scrm: CRM, people: list[int], nps: None, rows_of: Callable[[CRM], dict[str, Any]]
) -> None:
    """Random sample is seeded."""
    catalog.create_survey(scrm, {**template("nps"), "key": "nps2"})
    a = distribution.invite(scrm, "nps", sample=3, seed=42)
    b = distribution.invite(scrm, "nps2", sample=3, seed=42)
    assert len(a.invitations) == 3
    assert [i.customer_id for i in a.invitations] == [i.customer_id for i in b.invitations]
    assert set(i.customer_id for i in a.invitations) <= set(people[0::2])


def test_stratified_sample_allocates_proportionally(scrm: CRM, nps: None) -> None:
    """Stratified sample allocates proportionally."""
    scrm.customers.create_many(
        {
            "name": f"C{i}",
            "attributes": {"segment": "big" if i < 30 else "small"},
            "consent": {"surveys": True},
        }
        for i in range(40)
    )
    result = distribution.invite(scrm, "nps", sample=8, strata="attributes.segment", seed=1)
    assert dict(result.allocation) == {"big": 6, "small": 2}
    strata = [i.stratum for i in result.invitations]
    assert strata.count("big") == 6 and strata.count("small") == 2


def test_proportional_allocation_largest_remainder() -> None:
    """Proportional allocation largest remainder."""
    assert proportional_allocation({"a": 5, "b": 3, "c": 2}, 5) == {"a": 3, "b": 1, "c": 1}
    assert proportional_allocation({"a": 1, "b": 1}, 5) == {"a": 1, "b": 1}
    assert sum(proportional_allocation({"x": 7, "y": 11, "z": 13}, 10).values()) == 10


def test_bad_requests_store_nothing(
    scrm: CRM, people: list[int], nps: None, rows_of: Callable[[CRM], dict[str, Any]]
) -> None:
    """Bad requests store nothing."""
    before = rows_of(scrm)
    with pytest.raises(NotFoundError, match="customer_ids: customer 999 does not exist"):
        distribution.invite(scrm, "nps", customer_ids=[people[0], 999])
    with pytest.raises(NotFoundError, match="survey: no survey 'zzz'"):
        distribution.invite(scrm, "zzz")
    with pytest.raises(ValidationError, match="channel: 'pigeon' is not one of"):
        distribution.invite(scrm, "nps", channel="pigeon")
    with pytest.raises(ValidationError, match="sample: must be at least 1"):
        distribution.invite(scrm, "nps", sample=0)
    assert rows_of(scrm) == before


def test_explicit_customer_list(scrm: CRM, people: list[int], nps: None) -> None:
    """Explicit customer list."""
    result = distribution.invite(scrm, "nps", customer_ids=people[:4])
    assert sorted(i.customer_id for i in result.invitations) == [people[0], people[2]]
    assert result.skipped_no_consent == 2


class _InvitationRecorder:
    """A throw-away plugin recording surveys_invitations_created."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    @hookimpl(optionalhook=True)
    def surveys_invitations_created(self, ctx: Any, invitations: Any) -> None:
        """Record one call."""
        self.calls.append([dict(i) for i in invitations])


def test_invitations_created_hook_hands_over_each_invitation_once(
    crm_factory: Callable[..., CRM],
) -> None:
    """The hook gets every new invitation with its token, once; a call inviting nobody skips it."""
    recorder = _InvitationRecorder()
    crm = crm_factory(plugins=[crmcore_surveys.plugin, recorder])
    ids = [
        c.id
        for c in crm.customers.create_many(
            {"name": f"P{i}", "consent": {"surveys": True}} for i in range(3)
        )
    ]
    catalog.create_survey(crm, template("nps"))
    result = distribution.invite(crm, "nps", channel="email")
    assert len(recorder.calls) == 1
    handed = recorder.calls[0]
    assert sorted(h["customer_id"] for h in handed) == ids
    assert {h["token"] for h in handed} == {i.token for i in result.invitations}
    assert {(h["survey_key"], h["survey_version"], h["channel"]) for h in handed} == {
        ("nps", 1, "email")
    }
    distribution.invite(crm, "nps")
    assert len(recorder.calls) == 1
