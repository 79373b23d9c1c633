"""Issue 11 item 5: probable duplicates, scored with reasons, blocked, visible pairs only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import CRM, ValidationError
from crmcore.access import Principal, Role
from crmcore.cli import build_cli
from crmcore.pytest_plugin import CRMFactory
from crmcore.security.encryption import KEY_ENV, OLD_KEYS_ENV, new_key
from crmcore.services.customers.matching import (
    MAX_BLOCK,
    WINDOW,
    MatchRecord,
    candidate_pairs,
    canonical_email,
    city_of,
    score_pair,
)
from crmcore.testing import Case, Subjects, run_conformance

PEOPLE: list[dict[str, Any]] = [
    {"name": "Wei Li", "address": "1 Main St, Springfield", "company_name": "Acme Inc"},
    {"name": "Li Wei", "address": "9 Elm St, Springfield", "company_name": "ACME"},
    {"name": "Ada Lovelace", "email": "ada.lovelace@gmail.com"},
    {"name": "Ada Lovelace", "email": "AdaLovelace+crm@googlemail.com"},
    {"name": "Jonathan Smith", "company_name": "Globex"},
    {"name": "Jonathon Smith", "company_name": "Globex Corp."},
    {"name": "华为技术有限公司", "kind": "organization", "address": "广东省深圳市龙岗区"},
    {"name": "华为技术（深圳）", "kind": "organization", "address": "广东省深圳市南山区"},  # noqa: RUF001
    {"name": "Bob Stone", "phone": "+86 138 0013 8001"},
    {"name": "Bob Stone", "email": "bob@x.org"},
    {"name": "Carol King", "email": "carol.king@acme.example"},
    {"name": "Carol King", "email": "carol.king@home.example"},
    {"name": "Unrelated Person", "company_name": "Acme"},
]


@pytest.fixture
def people(crm: CRM) -> CRM:
    crm.customers.create_many(PEOPLE)
    return crm


def _pairs(crm: CRM, **kwargs: Any) -> dict[tuple[int, int], Any]:
    return {p.customer_ids: p for p in crm.customers.duplicates(**kwargs)}


def test_the_kinds_of_duplicates_are_found_with_reasons(people: CRM) -> None:
    pairs = _pairs(people)
    assert set(pairs) == {(1, 2), (3, 4), (5, 6), (7, 8), (11, 12)}
    assert pairs[(7, 8)].reasons == ("names 95% similar", "same city")  # one name extends the other
    assert pairs[(1, 2)].reasons == (
        "same name, words in another order",
        "same company",
        "same city",
    )
    assert pairs[(3, 4)].reasons == ("same name", "same email") and pairs[(3, 4)].score == 1.0
    assert (
        pairs[(5, 6)].reasons[0] == "names 93% similar" and "same company" in pairs[(5, 6)].reasons
    )
    assert pairs[(11, 12)].reasons == ("same name", "same email local part")
    assert pairs[(1, 2)].names == ("Wei Li", "Li Wei")
    scores = [p.score for p in people.customers.duplicates()]
    assert scores == sorted(scores, reverse=True) and all(0.85 <= s <= 1 for s in scores)


def test_a_lower_min_score_lists_weaker_pairs(people: CRM) -> None:
    pairs = _pairs(people, min_score=0.5)
    assert (9, 10) in pairs and pairs[(9, 10)].score == 0.55  # the same name and nothing else
    assert not any(13 in ids for ids in pairs)  # a different name at the same company
    assert len(people.customers.duplicates(min_score=0.5, limit=2)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_score": 1.5}, "min_score: must be from 0 to 1, got 1.5"),
        ({"min_score": -0.1}, "min_score: must be from 0 to 1"),
        ({"min_score": True}, "min_score: expected a number from 0 to 1, got True"),
        ({"min_score": "high"}, "min_score: expected a number"),
        ({"limit": 0}, "limit: expected an integer from 1 to 1000000, got 0"),
        ({"limit": 10**7}, "limit: expected an integer from 1 to 1000000"),
        ({"limit": 2.5}, "limit: expected an integer"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    people: CRM, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        people.customers.duplicates(**kwargs)
    assert message in str(refused.value)
    assert refused.value.field == next(iter(kwargs))


def test_an_agent_sees_only_pairs_of_customers_they_may_see(crm: CRM) -> None:
    crm.customers.create_many(
        [
            {"name": "Wei Li", "company_name": "Acme", "owner": "alice"},
            {"name": "Li Wei", "company_name": "Acme", "owner": "alice"},
            {"name": "Ada King", "email": "ada.king@gmail.com", "owner": "alice"},
            {"name": "Ada King", "email": "adaking@gmail.com", "owner": "bob"},
        ]
    )
    alice = crm.as_user(Principal("alice", Role.AGENT))
    assert set(_pairs(alice)) == {(1, 2)}
    assert set(_pairs(crm)) == {(1, 2), (3, 4)}
    crm.access.grant(4, "alice")
    assert set(_pairs(alice)) == {(1, 2), (3, 4)}
    assert _pairs(crm.as_user(Principal("bob", Role.AGENT))) == {}


def test_conformance_matrix(crm: CRM) -> None:
    def prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
        # A twin of each: the agents must see the visible pair only, and never the hidden one.
        for cid in (visible, hidden):
            original = crm.customers.get(cid)
            crm.customers.create(
                {"name": original.name, "email": f"dup{cid}@kit.example", "owner": original.owner}
            )
        crm.customers.update(visible, {"company_name": "Kit Co"})
        crm.customers.update(hidden, {"company_name": "Kit Co"})
        return {}

    def call(c: CRM, s: Subjects) -> Any:
        return c.customers.duplicates(min_score=0.5)

    matrix = run_conformance(
        crm, "core duplicates", [Case("customers.duplicates", call)], prepare=prepare
    )
    print(matrix.format())
    matrix.assert_clean()
    owner = crm.as_user(Principal("kit-owner", Role.AGENT))
    assert [p.names for p in owner.customers.duplicates(min_score=0.5)]  # not an empty success


def test_encrypted_fields_are_compared_opened(
    monkeypatch: pytest.MonkeyPatch, crm_factory: CRMFactory
) -> None:
    monkeypatch.setenv(KEY_ENV, new_key())
    monkeypatch.delenv(OLD_KEYS_ENV, raising=False)
    crm = crm_factory()
    crm.customers.create_many(
        [
            {"name": "Ada Lovelace", "email": "ada.lovelace@gmail.com", "address": "1 A St, Paris"},
            {"name": "Lovelace Ada", "email": "adalovelace@gmail.com", "address": "2 B St, Paris"},
        ]
    )
    (pair,) = crm.customers.duplicates()
    assert pair.reasons == ("same name, words in another order", "same email", "same city")


def test_erased_customers_are_left_out(people: CRM) -> None:
    assert (3, 4) in _pairs(people)
    people.customers.erase(4)
    assert not any(4 in ids for ids in _pairs(people, min_score=0.0))


def test_blocks_never_compare_all_pairs() -> None:
    n = MAX_BLOCK * 20
    records = [MatchRecord(i, False, f"person {i}", phone="+8613800138000") for i in range(n)]
    pairs = list(candidate_pairs(records, 0.85))
    assert len(pairs) <= n * WINDOW < n * (n - 1) // 2
    small = [MatchRecord(i, False, f"p {i}", phone="+8613800138000") for i in range(MAX_BLOCK)]
    assert len(list(candidate_pairs(small, 0.85))) == MAX_BLOCK * (MAX_BLOCK - 1) // 2


def test_keys_and_score() -> None:
    assert canonical_email("A.Da+news@GoogleMail.com") == "ada@gmail.com"
    assert canonical_email("a.da+news@example.com") == "a.da@example.com"  # dots matter there
    assert city_of("1 Main St, Springfield") == "springfield"
    assert city_of("广东省深圳市南山区科技园") == "深圳市"
    assert city_of("somewhere") is None
    a = MatchRecord(1, False, "wei li", phone="+1")
    b = MatchRecord(2, False, "li wei", phone="+1")
    score, reasons = score_pair(a, b)
    assert score == 1.0 and reasons == ("same name, words in another order", "same phone")
    family = MatchRecord(3, False, "zhang min", phone="+1")
    assert score_pair(a, family)[0] < 0.85  # one phone, another person


def test_cli_lists_pairs_as_table_and_json(people: CRM, db_url: str) -> None:
    runner = CliRunner()
    cli = build_cli([])
    shown = runner.invoke(cli, ["--db", db_url, "customers", "duplicates"])
    assert shown.exit_code == 0, shown.output
    assert "Wei Li / Li Wei" in shown.output and "5 pair(s)" in shown.output
    as_json = runner.invoke(cli, ["--db", db_url, "customers", "duplicates", "--json"])
    listed = json.loads(as_json.output)
    assert listed[0]["customer_ids"] == [3, 4] and listed[0]["score"] == 1.0
    low = runner.invoke(
        cli, ["--db", db_url, "customers", "duplicates", "--min-score", "0.5", "--json"]
    )
    assert len(json.loads(low.output)) > len(listed)
    bad = runner.invoke(cli, ["--db", db_url, "customers", "duplicates", "--min-score", "2"])
    assert bad.exit_code != 0
    assert "min_score: must be from 0 to 1, got 2.0" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    worse = runner.invoke(cli, ["--db", db_url, "customers", "duplicates", "--limit", "0"])
    assert worse.exit_code != 0 and "limit: expected an integer from 1 to 1000000" in worse.output
