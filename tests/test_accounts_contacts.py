"""Issue 11 item 1: contacts of organisations, the primary contact, dates, the hook."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import CRM, ConflictError, NotFoundError, ValidationError
from crmcore.config import Config
from crmcore.errors import ConfigError
from crmcore.hooks import hookimpl
from crmcore.io.exports import INTERACTION_CSV_COLUMNS, export_interactions
from crmcore.io.imports import import_interactions
from crmcore.model.accounts import AccountSettings
from crmcore.pytest_plugin import CRMFactory
from crmcore.testing import FrozenClock

T0 = "2026-01-01T10:00:00+00:00"


class Recorder:
    """Remembers every crm_relationships_changed call."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    @hookimpl
    def crm_relationships_changed(self, ctx: Any, changes: Sequence[Mapping[str, Any]]) -> None:
        json.dumps(list(changes))  # JSON-safe
        self.calls.append([dict(c) for c in changes])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def acrm(crm_factory: CRMFactory, recorder: Recorder) -> CRM:
    return crm_factory(plugins=[recorder])


def _org(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, "kind": "organization", **fields})
    assert customer.id is not None
    return customer.id


def _person(crm: CRM, name: str, **fields: Any) -> int:
    customer = crm.customers.create({"name": name, **fields})
    assert customer.id is not None
    return customer.id


def test_add_update_end_remove(acrm: CRM, recorder: Recorder, clock: FrozenClock) -> None:
    huawei = _org(acrm, "Huawei Technologies")
    li = _person(acrm, "Li Wei")
    contact = acrm.accounts.add_contact(
        huawei,
        li,
        job_title=" Purchasing director ",
        department="Procurement",
        role="decision_maker",
        primary=True,
        start_date="2025-03-01",
    )
    assert contact.id is not None and contact.primary and contact.job_title == "Purchasing director"
    assert contact.start_date == date(2025, 3, 1) and contact.end_date is None
    assert recorder.calls[-1] == [
        {
            "kind": "contact",
            "action": "added",
            "contact_id": contact.id,
            "person_id": li,
            "organisation_id": huawei,
            "role": "decision_maker",
            "primary": True,
        }
    ]
    assert acrm.accounts.contacts(huawei) == [contact]
    assert acrm.accounts.organisations(li) == [contact]

    updated = acrm.accounts.update_contact(huawei, li, {"role": "champion", "job_title": None})
    assert updated.role == "champion" and updated.job_title is None
    assert recorder.calls[-1][0]["changed"] == ["job_title", "role"]
    calls = len(recorder.calls)
    assert acrm.accounts.update_contact(huawei, li, {"role": "champion"}) == updated
    assert len(recorder.calls) == calls  # nothing changed, nothing reported

    ended = acrm.accounts.end_contact(huawei, li)
    assert ended.end_date == clock.now.date() and not ended.primary
    assert set(recorder.calls[-1][0]["changed"]) == {"end_date", "primary"}
    assert acrm.accounts.contacts(huawei) == []
    assert acrm.accounts.contacts(huawei, include_ended=True) == [ended]
    assert acrm.accounts.organisations(li) == []

    removed = acrm.accounts.remove_contact(huawei, li)
    assert removed.id == contact.id
    assert recorder.calls[-1][0]["action"] == "removed"
    assert acrm.accounts.contacts(huawei, include_ended=True) == []
    with pytest.raises(NotFoundError, match="not a contact of organisation"):
        acrm.accounts.remove_contact(huawei, li)

    actions = [e.action for e in acrm.audit.query(customer_id=li, action="account.*").items]
    assert actions[::-1] == [
        "account.contact.added",
        "account.contact.updated",
        "account.contact.updated",
        "account.contact.removed",
    ]
    events = [e for e in acrm.events.list() if e.type == "account.relationship_changed"]
    assert [e.customer_id for e in events] == [huawei] * 4
    assert events[0].data["person_id"] == li


def test_a_person_may_work_for_several_organisations(acrm: CRM) -> None:
    first, second = _org(acrm, "Acme"), _org(acrm, "Globex")
    li = _person(acrm, "Li Wei")
    acrm.accounts.add_contact(first, li, role="user")
    acrm.accounts.add_contact(second, li, role="influencer", end_date="2030-01-01")
    assert [c.organisation_id for c in acrm.accounts.organisations(li)] == [first, second]


def test_at_most_one_primary_contact(acrm: CRM, recorder: Recorder) -> None:
    org = _org(acrm, "Acme")
    ada, bob, eve = (_person(acrm, n) for n in ("Ada", "Bob", "Eve"))
    acrm.accounts.add_contact(org, ada, primary=True)
    acrm.accounts.add_contact(org, bob, primary=True)
    reported = recorder.calls[-1]
    assert [(c["person_id"], c["action"], c["primary"]) for c in reported] == [
        (ada, "updated", False),
        (bob, "added", True),
    ]
    assert reported[0]["changed"] == ["primary"]
    acrm.accounts.add_contact(org, eve)
    acrm.accounts.update_contact(org, eve, {"primary": True})
    listed = acrm.accounts.contacts(org)
    assert [(c.person_id, c.primary) for c in listed] == [(eve, True), (ada, False), (bob, False)]
    with pytest.raises(sa.exc.IntegrityError), acrm.engine.begin() as connection:
        connection.execute(sa.text("UPDATE crm_contacts SET is_primary = true"))  # the index


def test_bad_contacts_are_refused(acrm: CRM) -> None:
    org = _org(acrm, "Acme")
    li = _person(acrm, "Li Wei")
    other = _org(acrm, "Globex")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"person_id": other}, "person_id: customer 3 is an organisation, not a person"),
        ({"organisation_id": li}, "organisation_id: customer 2 is a person, not an organisation"),
        ({"role": "boss"}, "role: 'boss' is not one of: decision_maker"),
        ({"start_date": "yesterday"}, "start_date: expected a date (YYYY-MM-DD)"),
        ({"start_date": "2025-02-01", "end_date": "2025-01-01"}, "end_date: 2025-01-01 is before"),
        ({"primary": True, "end_date": "2025-01-01"}, "only a current contact can be the primary"),
        (
            {"primary": True, "start_date": "2027-01-01"},
            "only a current contact can be the primary",
        ),
        ({"primary": "yes"}, "primary: expected true or false"),
        ({"job_title": "x" * 201}, "job_title: longer than 200 characters"),
        ({"job_title": "a\x00b"}, "job_title: contains a NUL character"),
        ({"department": 5}, "department: expected text"),
        ({"person_id": "2"}, "person_id: expected a customer id"),
        ({"person_id": 2**63}, "person_id"),
    ]
    for fields, message in cases:
        args = {"organisation_id": org, "person_id": li, **fields}
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            acrm.accounts.add_contact(**args)
    with pytest.raises(NotFoundError):
        acrm.accounts.add_contact(org, 999)
    acrm.accounts.add_contact(org, li)
    with pytest.raises(ConflictError, match="already is a contact"):
        acrm.accounts.add_contact(org, li)
    with pytest.raises(ValidationError, match="nickname: unknown contact field"):
        acrm.accounts.update_contact(org, li, {"nickname": "x"})
    with pytest.raises(ValidationError, match="changes: expected a mapping"):
        acrm.accounts.update_contact(org, li, ["role"])  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        acrm.accounts.update_contact(org, _person(acrm, "Bob"), {"role": "user"})
    assert acrm.accounts.contacts(org)[0].role is None  # nothing half-written


def test_configured_contact_roles(crm_factory: CRMFactory) -> None:
    crm = crm_factory(accounts=AccountSettings(contact_roles=("buyer", "signer")))
    org, li = _org(crm, "Acme"), _person(crm, "Li")
    assert crm.accounts.add_contact(org, li, role="signer").role == "signer"
    with pytest.raises(ValidationError, match="'decision_maker' is not one of: buyer, signer"):
        crm.accounts.update_contact(org, li, {"role": "decision_maker"})


def test_accounts_config_section(tmp_path: Path) -> None:
    path = tmp_path / "crm.toml"
    path.write_text('[accounts]\nlink_types = ["referred_by"]\nweak_score = 55\n')
    config = Config.from_mapping({"accounts": {"link_types": ["referred_by"], "weak_score": 55}})
    assert config.accounts.link_types == ("referred_by",) and config.accounts.weak_score == 55.0
    for bad, message in [
        ({"team_write_roles": ["boss"]}, "'boss' is not one of team_roles"),
        ({"contact_roles": []}, "contact_roles"),
        ({"link_types": ["Referred By"]}, "does not match"),
        ({"falling_drop": 0}, "falling_drop"),
        ({"colour": "red"}, "colour"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Config.from_mapping({"accounts": bad})


def test_an_interaction_names_a_contact_of_the_organisation(acrm: CRM, tmp_path: Path) -> None:
    org, other = _org(acrm, "Acme"), _org(acrm, "Globex")
    li, bob = _person(acrm, "Li"), _person(acrm, "Bob")
    acrm.accounts.add_contact(org, li, start_date="2025-01-01", end_date="2025-12-01")
    acrm.accounts.add_contact(other, bob)
    call = {"customer_id": org, "kind": "call", "occurred_at": "2025-06-01T09:00:00+00:00"}
    recorded = acrm.interactions.record({**call, "contact_id": li})
    assert recorded.contact_id == li
    assert acrm.interactions.timeline(org).items[0].contact_id == li
    assert acrm.interactions.record(call).contact_id is None
    for bad, message in [
        ({"contact_id": bob}, f"contact_id: customer {bob} is not a contact of customer {org}"),
        (
            {"contact_id": li, "occurred_at": "2025-12-01T09:00:00+00:00"},
            "was not a current contact of customer 1 on 2025-12-01",
        ),
        ({"contact_id": "li"}, "contact_id: expected an integer"),
        ({"customer_id": li, "contact_id": li}, "is not a contact of customer"),
    ]:
        with pytest.raises(ValidationError, match=message):
            acrm.interactions.record({**call, **bad})
    rejected: list[tuple[int, str]] = []
    stored = acrm.interactions.record_many(
        [{**call, "contact_id": bob}, {**call, "contact_id": li}],
        on_reject=lambda position, item, exc: rejected.append((position, str(exc))),
    )
    assert [i.contact_id for i in stored] == [li]
    assert rejected == [(0, f"contact_id: customer {bob} is not a contact of customer {org}")]

    out = io.StringIO()
    export_interactions(acrm, out, format="csv", customer_id=org)
    header, *rows = out.getvalue().splitlines()
    assert header.split(",") == list(INTERACTION_CSV_COLUMNS) and "contact_id" in header
    assert rows[0].endswith(f",{li}") or f",{li}," in rows[0]
    source = tmp_path / "calls.csv"
    source.write_text(
        "customer_id,kind,occurred_at,contact_id\n"
        f"{org},call,2025-07-01T09:00:00+00:00,{li}\n"
        f"{org},call,2025-07-02T09:00:00+00:00,{bob}\n",
        encoding="utf-8",
    )
    report = import_interactions(acrm, source, skip_invalid=True)
    assert report.imported == 1 and report.rejected == 1
    named = [i.contact_id for i in acrm.interactions.timeline(org, limit=100).items]
    assert named.count(li) == 3


def test_deleting_a_person_clears_their_contacts(acrm: CRM) -> None:
    org, li = _org(acrm, "Acme"), _person(acrm, "Li")
    acrm.accounts.add_contact(org, li)
    acrm.interactions.record(
        {"customer_id": org, "kind": "call", "occurred_at": T0, "contact_id": li}
    )
    acrm.customers.delete(li)
    assert acrm.accounts.contacts(org, include_ended=True) == []
    assert acrm.interactions.timeline(org).items[0].contact_id is None
