"""Sensitive customer fields are encrypted at rest; lookups and duplicate detection still work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmcore import CRM, ConflictError, StorageError
from crmcore.pytest_plugin import CRMFactory
from crmcore.security.encryption import KEY_ENV, OLD_KEYS_ENV, new_key

SECRETS = {
    "name": "Ada Lovelace",
    "email": "Ada.Secret@Example.com",
    "phone": "+44 20 7946 0958",
    "address": "12 Hidden Lane, Marylebone",
    "birth_date": "1815-12-10",
}
NEEDLES = ["ada.secret@example.com", "7946", "Hidden Lane", "1815-12-10"]


def dump(crm: CRM, db_url: str) -> str:
    """Every byte the database holds, as text: the SQLite files, or every PostgreSQL row."""
    if crm.engine.dialect.name == "sqlite":
        # The database file and its WAL: old page versions count too.
        path = Path(db_url.removeprefix("sqlite:///"))
        parts = [p.read_bytes() for p in path.parent.glob(path.name + "*")]
        return b"".join(parts).decode("latin-1").lower()
    with crm.engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        return " ".join(
            json.dumps(conn.execute(sa.text(f'SELECT json_agg(t) FROM "{t}" t')).scalar())
            for t in tables
        ).lower()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_key()
    monkeypatch.setenv(KEY_ENV, value)
    monkeypatch.delenv(OLD_KEYS_ENV, raising=False)
    return value


def test_raw_database_shows_no_plaintext(key: str, crm_factory: CRMFactory, db_url: str) -> None:
    crm = crm_factory()
    assert crm.cipher is not None
    created = crm.customers.create({**SECRETS, "tags": ["vip"]})
    crm.customers.update(created.id, {"address": "34 Other Road, Hidden Lane"})  # type: ignore[arg-type]
    raw = dump(crm, db_url)
    assert "lovelace" in raw  # names are not encrypted (substring search), so the dump is real
    for needle in NEEDLES:
        assert needle.lower() not in raw, needle
    fetched = crm.customers.get(created.id)  # type: ignore[arg-type]
    assert fetched.email == SECRETS["email"] and fetched.address == "34 Other Road, Hidden Lane"
    assert str(fetched.birth_date) == SECRETS["birth_date"]


def test_lookup_and_duplicates_with_blind_indexes(key: str, crm_factory: CRMFactory) -> None:
    crm = crm_factory()
    ada = crm.customers.create(SECRETS)
    assert [c.id for c in crm.customers.search(email=" ADA.secret@example.com").items] == [ada.id]
    assert crm.customers.search(phone="0044 20 7946 0958").total == 1
    with pytest.raises(ConflictError) as info:
        crm.customers.create({"name": "Imposter", "email": "ada.secret@EXAMPLE.com"})
    assert info.value.existing_id == ada.id
    assert "'ada.secret@example.com' already belongs" in str(info.value)  # never the blind index
    assert crm.customers.find_duplicate({"name": "x", "phone": "+44 (20) 7946-0958"}) == ada.id


def test_reading_without_the_key_is_a_clear_error(
    key: str, crm_factory: CRMFactory, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = crm_factory().customers.create(SECRETS)
    monkeypatch.delenv(KEY_ENV)
    keyless = crm_factory()
    with pytest.raises(StorageError, match="set CRM_ENCRYPTION_KEY"):
        keyless.customers.get(ada.id)  # type: ignore[arg-type]
    monkeypatch.setenv(KEY_ENV, new_key())
    wrong = crm_factory()
    with pytest.raises(StorageError, match="unknown key"):
        wrong.customers.get(ada.id)  # type: ignore[arg-type]


def test_sealed_fields_are_bound_to_their_customer(key: str, crm_factory: CRMFactory) -> None:
    crm = crm_factory()
    a = crm.customers.create(SECRETS)
    b = crm.customers.create({"name": "Bob", "email": "bob@x.org"})
    from crmcore.storage.tables import customers

    with crm.engine.begin() as conn:
        sealed = conn.execute(sa.select(customers.c.sealed).where(customers.c.id == a.id)).scalar()
        conn.execute(sa.update(customers).where(customers.c.id == b.id).values(sealed=sealed))
    with pytest.raises(StorageError, match="fail authentication"):
        crm.customers.get(b.id)  # type: ignore[arg-type]


def test_key_rotation_and_encrypting_existing_rows(
    crm_factory: CRMFactory, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    plain = crm_factory()
    old = plain.customers.create(SECRETS)  # stored before encryption was turned on
    first, second = new_key(), new_key()
    monkeypatch.setenv(KEY_ENV, first)
    crm = crm_factory()
    assert crm.customers.rotate_encryption() == 1
    newer = crm.customers.create({"name": "Bob", "email": "bob@x.org", "phone": "+1 555 010 9999"})
    assert all(n.lower() not in dump(crm, db_url) for n in NEEDLES)
    monkeypatch.setenv(KEY_ENV, second)
    monkeypatch.setenv(OLD_KEYS_ENV, first)
    rotating = crm_factory()
    assert rotating.customers.get(old.id).email == SECRETS["email"]  # type: ignore[arg-type]
    assert rotating.customers.rotate_encryption() == 2
    monkeypatch.delenv(OLD_KEYS_ENV)
    rotated = crm_factory()
    assert rotated.customers.get(newer.id).phone == "+1 555 010 9999"  # type: ignore[arg-type]
    assert rotated.customers.search(email="bob@x.org").items[0].id == newer.id
    with pytest.raises(ConflictError):
        rotated.customers.create({"name": "Again", "email": SECRETS["email"]})
    assert rotated.audit.query(action="security.rotate_key").total == 2


def test_bad_keys_and_config(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    from crmcore import Config, ConfigError

    monkeypatch.setenv(KEY_ENV, "too-short")
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        CRM.open(sqlite_url, discover=False)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match="encryption is on but CRM_ENCRYPTION_KEY is not set"):
        CRM.open(Config(database_url=sqlite_url, encryption=True), discover=False)
    monkeypatch.setenv(KEY_ENV, new_key())
    with pytest.raises(ConfigError, match="'name' cannot be encrypted"):
        CRM.open(Config(database_url=sqlite_url, encrypted_fields=("name",)), discover=False)
    off = CRM.open(Config(database_url=sqlite_url, encryption=False), discover=False)
    assert off.cipher is None
    off.close()


def test_security_cli(key: str, db_url: str) -> None:
    from click.testing import CliRunner

    from crmcore.cli import build_cli

    runner = CliRunner()
    fresh = runner.invoke(build_cli(), ["security", "new-key"]).output.strip()
    assert len(fresh) == 44 and fresh != key
    assert runner.invoke(build_cli(), ["--db", db_url, "init"]).exit_code == 0
    status = json.loads(
        runner.invoke(build_cli(), ["--db", db_url, "security", "status", "--json"]).output
    )
    assert status["encryption"] is True and status["fields"] == [
        "email",
        "phone",
        "address",
        "birth_date",
    ]
    agent = runner.invoke(build_cli(), ["--db", db_url, "--user", "al", "security", "rotate-key"])
    assert agent.exit_code == 1 and "may not administer" in agent.output
    rotated = runner.invoke(build_cli(), ["--db", db_url, "security", "rotate-key", "--yes"])
    assert rotated.exit_code == 0 and "Re-sealed 0 customers" in rotated.output
