"""Issue 11 item 6: identity keys by phonenumbers (E.164) and Chinese legal forms; crmcore_0010."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import CRM, ConflictError, ValidationError
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.cli import build_cli
from crmcore.config import Config
from crmcore.errors import ConfigError
from crmcore.model.identity import (
    legacy_phone_key,
    normalise_org_name,
    normalise_phone,
)
from crmcore.pytest_plugin import CRMFactory
from crmcore.security.encryption import KEY_ENV, OLD_KEYS_ENV, new_key
from crmcore.storage.migrate import alembic_config
from crmcore.storage.rekey import rekey_identity
from crmcore.storage.tables import customers, identity_collisions, metadata
from crmcore.testing import ADMIN_ONLY, Case, run_conformance

FORMS = ("138 0013 8000", "+86 138-0013-8000", "0086 13800138000")


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_key()
    monkeypatch.setenv(KEY_ENV, value)
    monkeypatch.delenv(OLD_KEYS_ENV, raising=False)
    return value


# ---- normalisers ---------------------------------------------------------------------------


def test_three_forms_of_one_number_are_one_key() -> None:
    assert {normalise_phone(f, "CN") for f in FORMS} == {"+8613800138000"}
    assert normalise_phone("(202) 555-0143", "US") == "+12025550143"
    assert normalise_phone("+44 20 7946 0958", "CN") == "+442079460958"  # region is no matter


@pytest.mark.parametrize(
    ("phone", "region", "message"),
    [
        ("123", "CN", "'123' is not a valid number for region CN (too short)"),
        ("+1 555 010003", "CN", "'+1 555 010003' is not a valid number (too short)"),
        ("+999 1234567", "CN", "(unknown country code)"),
        ("+86 138 0013 8000 1234 5", "CN", "(too long)"),
        ("138 0013 8000", "ZZ", "(no valid country code)"),
        ("call me", "CN", "not a valid phone number: 'call me'"),
    ],
)
def test_invalid_numbers_are_refused_with_the_reason(phone: str, region: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        normalise_phone(phone, region)
    assert message in str(refused.value)


_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_CODES), st.text("0123456789", min_size=4, max_size=13))
def test_the_e164_fast_path_gives_what_a_full_parse_gives(code: int, digits: str) -> None:
    value = f"+{code}{digits}"
    try:
        number = phonenumbers.parse(value, "CN")
        possible = phonenumbers.is_possible_number_with_reason(number)
        expected = (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if possible == phonenumbers.ValidationResult.IS_POSSIBLE
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    try:
        got: str | None = normalise_phone(value, "CN")
    except ValueError:
        got = None
    assert got == expected


_REGIONS = ["CN", "US", "CA", "GB", "DE", "FR", "IT", "IN", "JP", "RU", "BR", "HK", "SG", "AU"]


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(_REGIONS),
    st.text("0123456789", min_size=5, max_size=14),
    st.sampled_from(["", " ", "-"]),
)
def test_the_national_fast_path_gives_what_a_full_parse_gives(
    region: str, digits: str, separator: str
) -> None:
    value = separator.join([digits[:3], digits[3:]]) if separator else digits
    try:
        number = phonenumbers.parse(value, region)
        possible = phonenumbers.is_possible_number_with_reason(number)
        expected = (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if possible == phonenumbers.ValidationResult.IS_POSSIBLE
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    try:
        got: str | None = normalise_phone(value, region)
    except ValueError:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("华为技术有限公司", "华为技术"),
        ("华为技术股份有限公司", "华为技术"),
        ("华为技术有限责任公司", "华为技术"),
        ("阿里巴巴集团", "阿里巴巴"),
        ("美的集团股份有限公司", "美的"),
        ("华为技术（深圳）有限公司", "华为技术 (深圳)"),  # noqa: RUF001
        ("ＡＣＭＥ　Ｉｎｃ．", "Acme"),  # noqa: RUF001
        ("Huawei Technologies Co., Ltd.", "huawei technologies"),
    ],
)
def test_organisation_names_that_collide(a: str, b: str) -> None:
    assert normalise_org_name(a) == normalise_org_name(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("华为技术有限公司北京分公司", "华为技术"),  # a branch is registered on its own
        ("华为投资控股有限公司", "华为投资"),  # a holding is another company
        ("中国银行", "中国"),
    ],
)
def test_organisation_names_that_stay_apart(a: str, b: str) -> None:
    assert normalise_org_name(a) != normalise_org_name(b)


@pytest.mark.parametrize("name", ["有限公司", "集团", "股份有限公司", "公司", "Ltd", "华集团"])
def test_a_name_never_normalises_to_empty(name: str) -> None:
    assert normalise_org_name(name)
    assert normalise_org_name("华集团") == "华集团"  # one character would be left: keep it whole


def test_the_legacy_key_is_the_digits() -> None:
    assert legacy_phone_key("138 0013 8000") == "13800138000"
    assert legacy_phone_key("0086 13800138000") == "+8613800138000"


# ---- configuration -------------------------------------------------------------------------


def test_default_region_is_cn_and_configurable() -> None:
    assert Config.from_mapping({}).default_region == "CN"
    assert Config.from_mapping({"customers": {"default_region": "gb"}}).default_region == "GB"
    assert Config.from_mapping({"customers": {"default_region": "ZZ"}}).default_region == "ZZ"
    with pytest.raises(ConfigError, match=r"customers\.default_region: 'XX' is not a region"):
        Config.from_mapping({"customers": {"default_region": "XX"}})
    with pytest.raises(ConfigError, match="default_region"):
        Config.from_mapping({"customers": {"default_region": "CHN"}})


# ---- through the service -------------------------------------------------------------------


def test_national_and_international_forms_collide(crm: CRM) -> None:
    first = crm.customers.create({"name": "Wang", "phone": FORMS[0]})
    for form in FORMS[1:]:
        with pytest.raises(ConflictError, match=f"already belongs to customer {first.id}"):
            crm.customers.create({"name": "Wang again", "phone": form})
        assert crm.customers.search(phone=form).items[0].id == first.id
        assert crm.customers.find_duplicate({"name": "x", "phone": form}) == first.id
    assert crm.customers.stored_forms("phone", FORMS[2]) == ("+8613800138000",)
    assert crm.customers.get(first.id).phone == FORMS[0]  # type: ignore[arg-type]  # as written


def test_invalid_phone_is_refused_naming_the_field(crm: CRM) -> None:
    with pytest.raises(ValidationError) as refused:
        crm.customers.create({"name": "Short", "phone": "123"})
    assert str(refused.value) == "phone: '123' is not a valid number for region CN (too short)"
    assert refused.value.field == "phone"
    with pytest.raises(ValidationError, match=r"phone: .*too short"):
        crm.customers.stored_forms("phone", "123")
    assert crm.customers.search().total == 0


def test_create_many_rolls_back_on_an_invalid_phone(crm: CRM) -> None:
    with pytest.raises(ValidationError, match=r"customers\[1\]: phone: '12' is not a valid"):
        crm.customers.create_many([{"name": "A", "phone": FORMS[0]}, {"name": "B", "phone": "12"}])
    assert crm.customers.search().total == 0


def test_region_comes_from_the_config(crm_factory: CRMFactory) -> None:
    us = crm_factory(default_region="US")
    created = us.customers.create({"name": "Sam", "phone": "(202) 555-0143"})
    assert us.customers.search(phone="+1 202 555 0143").items[0].id == created.id
    strict = crm_factory(default_region="ZZ")
    with pytest.raises(ValidationError, match=r"phone: '202 555 0144' .*\(no valid country code\)"):
        strict.customers.create({"name": "Pat", "phone": "202 555 0144"})


def test_chinese_company_names_collide(crm: CRM) -> None:
    first = crm.customers.create({"name": "华为技术有限公司", "kind": "organization"})
    with pytest.raises(ConflictError, match=f"organisation name '华为技术' .* customer {first.id}"):
        crm.customers.create({"name": "华为技术", "kind": "organization"})
    branch = crm.customers.create({"name": "华为技术有限公司北京分公司", "kind": "organization"})
    assert branch.id != first.id


def test_encrypted_forms_collide_and_old_indexes_are_found(
    key: str, crm_factory: CRMFactory
) -> None:
    crm = crm_factory()
    assert crm.cipher is not None
    first = crm.customers.create({"name": "Wang", "phone": FORMS[0]})
    for form in FORMS[1:]:
        with pytest.raises(ConflictError):
            crm.customers.create({"name": "again", "phone": form})
        assert crm.customers.search(phone=form).total == 1
    # A row keyed under the scheme before crmcore_0010 (index of the digits-only form) ...
    old = crm.customers.create({"name": "Old", "phone": "+86 139 0013 8000"})
    legacy = crm.cipher.blind_index("phone", legacy_phone_key("139 0013 8000"))
    with crm.engine.begin() as conn:
        conn.execute(sa.update(customers).where(customers.c.id == old.id).values(phone_norm=legacy))
    # ... is still found by the same form, and a copy in that form is still refused.
    assert crm.customers.search(phone="139 0013 8000").items[0].id == old.id
    with pytest.raises(ConflictError, match=f"customer {old.id}"):
        crm.customers.create({"name": "Old copy", "phone": "139 0013 8000"})
    assert first.id is not None


def test_key_rotation_rekeys_phones_in_the_configured_region(
    key: str, crm_factory: CRMFactory
) -> None:
    crm = crm_factory()
    assert crm.cipher is not None
    old = crm.customers.create({"name": "Old", "phone": "139 0013 8000"})
    legacy = crm.cipher.blind_index("phone", legacy_phone_key("139 0013 8000"))
    with crm.engine.begin() as conn:
        conn.execute(sa.update(customers).where(customers.c.id == old.id).values(phone_norm=legacy))
    assert crm.customers.rotate_encryption() == 1
    with crm.engine.connect() as conn:
        stored = conn.execute(sa.select(customers.c.phone_norm)).scalar_one()
    assert stored == crm.cipher.blind_index("phone", "+8613900138000")


# ---- crmcore_0010 --------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _row(cid: int, name: str, year: int, **values: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "kind": values.pop("kind", "person"),
        "name": name,
        "name_norm": name.lower(),
        "stage": "prospect",
        "attributes": {},
        "consent_marketing_email": False,
        "consent_marketing_sms": False,
        "consent_marketing_phone": False,
        "consent_surveys": False,
        "consent_data_processing": False,
        "created_at": T0.replace(year=year),
        "updated_at": T0,
        **values,
    }


OLD_ROWS = [
    _row(1, "Intl", 2024, phone="+86 138-0013-8000", phone_norm="+8613800138000"),
    _row(2, "National", 2025, phone="138 0013 8000", phone_norm="13800138000"),
    _row(3, "Oldest", 2023, phone="0086 13800138000", phone_norm="+8613800138000x"),
    _row(4, "华为技术有限公司", 2024, kind="organization", org_norm="华为技术有限公司"),
    _row(5, "华为技术", 2025, kind="organization", org_norm="华为技术"),
    _row(6, "Short", 2024, phone="123456", phone_norm="123456"),
    _row(7, "Other", 2024, phone="139 0013 8000", phone_norm="13900138000"),
    _row(8, "Blind", 2024, phone_norm="b2:" + "0" * 40, sealed="v1:k:x"),
    _row(9, "London", 2024, phone="020 7946 0958", phone_norm="02079460958"),
]


def _database_at_0009(db_url: str) -> sa.Engine:
    engine = sa.create_engine(db_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["metadata"] = metadata
        command.upgrade(cfg, "crmcore_0009")
        for row in OLD_ROWS:
            conn.execute(sa.insert(customers).values(row))
    return engine


def test_migration_rekeys_and_reports_collisions(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _database_at_0009(db_url)
    with caplog.at_level(logging.INFO, logger="crmcore.migrations"):
        crm = CRM.open(db_url, discover=False, upgrade=True)
    try:
        with engine.connect() as conn:
            keys = dict(conn.execute(sa.select(customers.c.id, customers.c.phone_norm)).all())
            orgs = dict(conn.execute(sa.select(customers.c.id, customers.c.org_norm)).all())
            found = conn.execute(
                sa.select(
                    identity_collisions.c.customer_id,
                    identity_collisions.c.holder_id,
                    identity_collisions.c.key_column,
                    identity_collisions.c.source,
                ).order_by(identity_collisions.c.customer_id)
            ).all()
        # The oldest of the three forms keeps the key; the others' keys are cleared.
        assert keys[3] == "+8613800138000" and keys[1] is None and keys[2] is None
        assert keys[7] == "+8613900138000"  # national form re-keyed in the default region
        assert keys[9] == "+862079460958"  # (CN when unset: 020 is Guangzhou)
        assert keys[6] == "123456"  # not a valid number now: kept as it was, and reported
        assert keys[8] == "b2:" + "0" * 40  # a blind index: left for the key rotation
        assert orgs[4] == "华为技术" and orgs[5] is None
        assert [tuple(r) for r in found] == [
            (1, 3, "phone_norm", "crmcore_0010"),
            (2, 3, "phone_norm", "crmcore_0010"),
            (5, 4, "org_norm", "crmcore_0010"),
        ]
        summary = [r.getMessage() for r in caplog.records if r.name == "crmcore.migrations"]
        assert summary == [
            "identity keys: 3 phone_norm re-keyed, 1 org_norm re-keyed, 1 blind-indexed "
            "(run `crm security rotate-key`), 1 kept as they were (not valid under the new "
            "rules), 3 duplicate(s) uncovered (see `crm customers duplicates`)"
        ]
        assert caplog.records[-1].levelno == logging.WARNING
        # The collisions are listed as duplicates, score 1, for a merge.
        pairs = {p.customer_ids: p for p in crm.customers.duplicates()}
        assert pairs[(1, 3)].score == 1.0 and "same phone key" in pairs[(1, 3)].reasons[0]
        assert (4, 5) in pairs and (2, 3) in pairs
        # Re-running changes nothing and finds nothing new.
        with engine.begin() as conn:
            again = rekey_identity(conn, "CN")
        assert again.rekeyed == {"phone_norm": 0, "org_norm": 0} and again.collisions == ()
    finally:
        crm.close()
        engine.dispose()


def test_migration_reads_national_numbers_in_the_configured_region(db_url: str) -> None:
    engine = _database_at_0009(db_url)
    crm = CRM.open(Config(database_url=db_url, default_region="GB"), discover=False, upgrade=True)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(customers.c.phone_norm).where(customers.c.id == 9)
            ).scalar_one()
        assert stored == "+442079460958"
        assert crm.customers.search(phone="+44 20 7946 0958").items[0].id == 9
    finally:
        crm.close()
        engine.dispose()


# ---- crm.customers.rekey / crm customers rekey ---------------------------------------------


def test_rekey_after_a_region_change_reports_collisions(crm_factory: CRMFactory) -> None:
    cn = crm_factory()
    national = cn.customers.create({"name": "Local", "phone": "020 7946 0958"})
    london = cn.customers.create({"name": "London", "phone": "+44 20 7946 0958"})
    assert cn.customers.search(phone="020 7946 0958").items[0].id == national.id
    gb = crm_factory(default_region="GB")
    dry = gb.customers.rekey(dry_run=True)
    assert [(c.customer_id, c.holder_id) for c in dry.collisions] == [(london.id, national.id)]
    assert gb.customers.search(phone="+86 20 7946 0958").total == 1  # rolled back
    report = gb.customers.rekey(actor="ops")
    assert report.rekeyed["phone_norm"] == 1 and len(report.collisions) == 1
    assert gb.customers.search(phone="020 7946 0958").items[0].id == national.id
    (pair,) = gb.customers.duplicates()
    assert pair.customer_ids == (national.id, london.id) and pair.score == 1.0
    (entry,) = gb.audit.query(action="customers.rekey").items
    assert entry.details["collisions"] == 1 and entry.details["region"] == "GB"
    again = gb.customers.rekey()
    assert again.collisions == () and again.rekeyed == {"phone_norm": 0, "org_norm": 0}


def test_rekey_is_for_administrators_and_checks_its_input(crm: CRM) -> None:
    with pytest.raises(AccessDeniedError):
        crm.as_user(Principal("alice", Role.MANAGER)).customers.rekey()
    with pytest.raises(ValidationError, match="dry_run: expected true or false, got 'yes'"):
        crm.customers.rekey(dry_run="yes")  # type: ignore[arg-type]
    matrix = run_conformance(
        crm,
        "core rekey",
        [Case("customers.rekey", lambda c, s: c.customers.rekey(dry_run=True), ADMIN_ONLY)],
    )
    matrix.assert_clean()


def test_rekey_cli(crm: CRM, db_url: str) -> None:
    crm.customers.create({"name": "Wang", "phone": FORMS[0]})
    runner = CliRunner()
    assert runner.invoke(build_cli([]), ["--db", db_url, "db", "upgrade"]).exit_code == 0
    dry = runner.invoke(build_cli([]), ["--db", db_url, "customers", "rekey", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "identity keys: 0 phone_norm re-keyed" in dry.output and "dry run" in dry.output
    as_json = runner.invoke(build_cli([]), ["--db", db_url, "customers", "rekey", "--json"])
    assert json.loads(as_json.output)["collisions"] == []
    agent = runner.invoke(
        build_cli([]), ["--db", db_url, "--user", "bob", "--role", "agent", "customers", "rekey"]
    )
    assert agent.exit_code != 0 and "Error" in agent.output


def test_import_matches_a_phone_in_another_form(crm: CRM, tmp_path: Path) -> None:
    from crmcore.io.imports import import_customers

    first = crm.customers.create({"name": "Wang", "phone": "+86 138-0013-8000"})
    path = tmp_path / "c.csv"
    path.write_text("name,phone,industry\nWang,138 0013 8000,retail\n", "utf-8")
    result = import_customers(crm, path, update_existing=True, match="phone")
    assert (result.imported, result.updated, result.rejected) == (0, 1, 0)
    assert crm.customers.get(first.id).industry == "retail"  # type: ignore[arg-type]
    path.write_text("name,phone\nShort,123\n", "utf-8")
    refused = import_customers(crm, path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert refused.rejected == 1
    assert "is not a valid number for region CN (too short)" in (tmp_path / "r.csv").read_text()
