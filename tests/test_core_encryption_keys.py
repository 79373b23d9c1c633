"""Encryption never loses a match: enabling it, rotating keys, killed rotations, old instances.

Each test runs on SQLite and PostgreSQL. ``open_crm`` sets the key
environment the way an operator would and opens a CRM on the test database.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import CRM, Config, ConflictError, StorageError, ValidationError
from crmcore.io.exports import export_customers
from crmcore.security.encryption import INDEX_KEY_ENV, KEY_ENV, OLD_KEYS_ENV, FieldCipher, new_key
from crmcore.services.key_rotation import RotationProgress, key_usage
from crmcore.storage.tables import customers

Opener = Callable[..., CRM]


class Stop(Exception):
    """Raised from ``on_batch`` to simulate a rotation killed between batches."""


@pytest.fixture
def open_crm(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Opener]:
    """``open_crm(key, old=[...], index=...)``: a CRM configured like an operator would."""
    opened: list[CRM] = []

    def opener(
        key: str | None, old: Sequence[str] = (), index: str | None = None, **config: Any
    ) -> CRM:
        for name, value in ((KEY_ENV, key), (OLD_KEYS_ENV, ",".join(old)), (INDEX_KEY_ENV, index)):
            if value:
                monkeypatch.setenv(name, value)
            else:
                monkeypatch.delenv(name, raising=False)
        crm = CRM.open(Config(database_url=db_url, **config), discover=False, upgrade=True)
        opened.append(crm)
        return crm

    yield opener
    for crm in opened:
        crm.close()


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"name": f"P{i}", "email": f"p{i}@x.org", "phone": f"+1 555 010 {i:04d}"}
        for i in range(start, start + n)
    ]


def assert_all_found(crm: CRM, ids_by_email: dict[str, int]) -> None:
    """Every customer is found by email and phone, and no duplicate of it can be created."""
    for email, cid in ids_by_email.items():
        page = crm.customers.search(email=email.upper())
        assert page.total == 1, email
        assert crm.customers.find_duplicate({"name": "dup", "email": f" {email} "}) == cid
        with pytest.raises(ConflictError) as info:
            crm.customers.create({"name": "dup", "email": email})
        assert info.value.existing_id == cid
        assert email in str(info.value)  # the plaintext, never a blind index


def test_enabling_encryption_on_an_existing_database(open_crm: Opener) -> None:
    plain = open_crm(None)
    stored = plain.customers.create_many(people(5))
    ids = {c.email: c.id for c in stored if c.email and c.id}
    key = new_key()
    crm = open_crm(key)  # encryption on, rotate-key not run yet
    assert_all_found(crm, ids)  # type: ignore[arg-type]
    assert crm.customers.search(phone="+1 555 010 0003").items[0].id == ids["p3@x.org"]
    # create_many / import path: refused, also with on_reject
    rejected: list[str] = []
    crm.customers.create_many(
        [{"name": "A", "email": "P1@x.org"}, {"name": "B", "email": "new@x.org"}],
        on_reject=lambda pos, item, exc: rejected.append(str(exc)),
    )
    assert len(rejected) == 1 and "p1@x.org" in rejected[0]
    with pytest.raises(ConflictError, match="already belongs to customer"):
        crm.customers.update(ids["p2@x.org"], {"email": "p4@x.org"})
    newer = crm.customers.search(email="new@x.org").items[0]
    with pytest.raises(ConflictError):
        crm.customers.update(ids["p0@x.org"], {"email": "NEW@x.org"})
    assert crm.customers.rotate_encryption(batch_size=2) == 5
    assert_all_found(crm, {**ids, "new@x.org": newer.id})  # type: ignore[dict-item]
    assert crm.customers.rotate_encryption() == 0  # idempotent: nothing left to do


@pytest.mark.parametrize("with_index_key", [True, False])
def test_killed_rotation_leaves_every_customer_findable(
    open_crm: Opener, with_index_key: bool
) -> None:
    first, second = new_key(), new_key()
    index = new_key() if with_index_key else None
    crm = open_crm(first, index=index)
    ids = {c.email: c.id for c in crm.customers.create_many(people(7))}
    rotating = open_crm(second, [first], index=index)

    def stop_after_two(progress: RotationProgress) -> None:
        if progress.last_id >= ids["p3@x.org"]:  # type: ignore[operator]
            raise Stop

    with pytest.raises(Stop):
        rotating.customers.rotate_encryption(batch_size=2, on_batch=stop_after_two)
    sealed = key_usage(rotating)["sealed_by_key"]
    assert len(sealed) == 2 and sum(sealed.values()) == 7  # half rotated
    assert_all_found(rotating, ids)  # type: ignore[arg-type]
    assert rotating.customers.rotate_encryption(batch_size=2) == 3  # resumes
    assert_all_found(rotating, ids)  # type: ignore[arg-type]
    done = open_crm(second, index=index)  # old key dropped
    assert_all_found(done, ids)  # type: ignore[arg-type]
    assert [c.email for c in done.customers.iter_all()] == [f"p{i}@x.org" for i in range(7)]


@pytest.mark.parametrize("old_keys", ["none", "older"])
def test_instance_on_the_previous_key_still_finds_and_refuses_duplicates(
    open_crm: Opener, old_keys: str, caplog: pytest.LogCaptureFixture
) -> None:
    older, previous, current, index = new_key(), new_key(), new_key(), new_key()
    crm = open_crm(previous, index=index)
    ids = {c.email: c.id for c in crm.customers.create_many(people(4))}
    assert open_crm(current, [previous], index=index).customers.rotate_encryption() == 4
    # An application instance not yet redeployed: it knows only the previous key.
    stale = open_crm(previous, [older] if old_keys == "older" else [], index=index)
    with caplog.at_level(logging.WARNING, "crmcore.security.encryption"):
        assert_all_found(stale, ids)  # type: ignore[arg-type]
        page = stale.customers.search(email="p1@x.org")
    assert page.total == 1 and page.items == []  # found, but cannot be opened here
    assert stale.customers.unreadable.count >= 1 and "unknown key" in caplog.text
    # what the stale instance writes is found by the new one and vice versa
    made = stale.customers.create({"name": "Late", "email": "late@x.org"})
    fresh = open_crm(current, [previous], index=index)
    assert_all_found(fresh, {**ids, "late@x.org": made.id})  # type: ignore[dict-item]
    assert fresh.customers.rotate_encryption() == 1
    assert_all_found(stale, {**ids, "late@x.org": made.id})  # type: ignore[dict-item]


def test_without_an_index_key_every_configured_key_is_searched(open_crm: Opener) -> None:
    previous, current = new_key(), new_key()
    ids = {c.email: c.id for c in open_crm(previous).customers.create_many(people(3))}
    # Roll-out without CRM_INDEX_KEY: instances learn the new key (as an old key) first.
    open_crm(current, [previous]).customers.rotate_encryption()
    assert_all_found(open_crm(previous, [current]), ids)  # type: ignore[arg-type]
    assert_all_found(open_crm(current), ids)  # type: ignore[arg-type]


def test_turning_on_the_index_key_reindexes(open_crm: Opener) -> None:
    key, index = new_key(), new_key()
    ids = {c.email: c.id for c in open_crm(key).customers.create_many(people(3))}
    crm = open_crm(key, index=index)
    assert_all_found(crm, ids)  # type: ignore[arg-type]
    assert crm.customers.rotate_encryption() == 3  # same data key, new index scheme
    assert key_usage(crm)["identity_keys"] == {"index-key index": 6}
    assert_all_found(crm, ids)  # type: ignore[arg-type]


def _forge(crm: CRM, customer_id: int, values: dict[str, Any], cipher: FieldCipher) -> None:
    """Write a row as an older crmcore could have (duplicates under another key form)."""
    with crm.engine.begin() as conn:
        conn.execute(
            sa.update(customers)
            .where(customers.c.id == customer_id)
            .values(
                email=None,
                sealed=cipher.seal(customer_id, values),
                email_norm=cipher.blind_index("email", values["email"]),
            )
        )


def test_rotation_names_customers_whose_keys_collide(open_crm: Opener) -> None:
    plain = open_crm(None)
    ada = plain.customers.create({"name": "Ada", "email": "ada@x.org"})
    key = new_key()
    crm = open_crm(key)
    twin = crm.customers.create({"name": "Ada twin", "email": "twin@x.org"})
    others = crm.customers.create_many(people(3))
    assert crm.cipher is not None and ada.id and twin.id
    _forge(crm, twin.id, {"email": "ada@x.org"}, crm.cipher)  # what the old bug allowed
    with pytest.raises(ConflictError) as info:
        crm.customers.rotate_encryption(batch_size=2)
    message = str(info.value)
    assert f"customers {ada.id} and {twin.id} share email 'ada@x.org'" in message
    assert "UNIQUE" not in message and "rotate-key` again" in message
    assert all(crm.customers.get(c.id).email == c.email for c in others)  # type: ignore[arg-type]
    crm.customers.update(twin.id, {"email": "twin@x.org"})
    assert crm.customers.rotate_encryption() == 1  # ada; the rest is already current
    assert key_usage(crm)["identity_keys"] == {"data-key index": 5 + 3}


def test_an_unreadable_row_is_skipped_with_a_warning_or_fails(
    open_crm: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    crm = open_crm(key)
    stored = crm.customers.create_many(people(4))
    lost, copied = stored[1].id, stored[2].id
    stranger = FieldCipher(_raw(new_key()))
    with crm.engine.begin() as conn:
        conn.execute(
            sa.update(customers)
            .where(customers.c.id == lost)
            .values(sealed=stranger.seal(lost, {"email": "p1@x.org"}))  # type: ignore[arg-type]
        )
        other = conn.execute(
            sa.select(customers.c.sealed).where(customers.c.id == stored[0].id)
        ).scalar()
        conn.execute(sa.update(customers).where(customers.c.id == copied).values(sealed=other))
    with caplog.at_level(logging.WARNING, "crmcore.security.encryption"):
        listed = [c.id for c in crm.customers.iter_all(batch_size=2)]
    assert listed == [stored[0].id, stored[3].id]
    assert crm.customers.unreadable.count == 2 and crm.customers.unreadable.ids == [lost, copied]
    assert "unknown key" in caplog.text and "fail authentication" in caplog.text
    page = crm.customers.search()
    assert page.total == 4 and len(page.items) == 2 and page.skipped == 2
    first = crm.customers.search(limit=2)  # a page of [ok, lost]: the next starts after both
    assert [c.id for c in first.items] == [stored[0].id] and first.next_offset == 2
    out = io.StringIO()
    assert export_customers(crm, out, format="jsonl") == 2
    summary = crm.customers.unreadable.summary()
    assert summary is not None and f"customers {lost}, {copied}" in summary
    with pytest.raises(StorageError, match=f"customer {lost}: sealed with unknown key"):
        list(crm.customers.iter_all(unreadable="fail"))
    strict = open_crm(key, unreadable="fail")
    with pytest.raises(StorageError, match=f"customer {lost}: sealed with unknown key"):
        strict.customers.search()
    with pytest.raises(StorageError, match=f"customer {lost}"):
        export_customers(strict, io.StringIO())
    with pytest.raises(ValidationError, match="unreadable: 'maybe' is not one of"):
        crm.customers.search(unreadable="maybe")
    # rotation leaves them as they are and reports them; the rest is rotated
    new = new_key()
    rotating = open_crm(new, [key])
    assert rotating.customers.rotate_encryption() == 2
    assert rotating.customers.unreadable.ids == [lost, copied]
    assert key_usage(rotating)["sealed_by_key"][FieldCipher.key_id(_raw(new))] == 2


def _raw(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text)


def test_unreadable_config_is_validated(tmp_path: Path) -> None:
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match=r"security\.unreadable"):
        Config.from_mapping({"security": {"unreadable": "ignore"}})
    assert Config.from_mapping({"security": {"unreadable": "fail"}}).unreadable == "fail"


def test_stored_forms_is_public_and_validates(open_crm: Opener) -> None:
    assert open_crm(None).customers.stored_forms("email", " A@X.org ") == ("a@x.org",)
    crm = open_crm(new_key(), [new_key()], index=new_key())
    forms = crm.customers.stored_forms("email", "a@x.org")
    assert len(forms) == 4 and forms[0].startswith("b2:") and forms[-1] == "a@x.org"
    with pytest.raises(ValidationError, match="phone: not a valid phone number"):
        crm.customers.stored_forms("phone", "abc")
    with pytest.raises(ValidationError, match="field: 'name' is not one of"):
        crm.customers.stored_forms("name", "x")


def test_interactions_import_by_customer_email_with_encryption(
    open_crm: Opener, tmp_path: Path
) -> None:
    from crmcore.io.imports import import_interactions

    ada = open_crm(None).customers.create({"name": "Ada", "email": "ada@x.org"})  # plaintext
    old, key = new_key(), new_key()
    bob = open_crm(old).customers.create({"name": "Bob", "email": "bob@x.org"})  # old key
    crm = open_crm(key, [old], index=new_key())
    cy = crm.customers.create({"name": "Cy", "email": "cy@x.org"})  # current scheme
    source = tmp_path / "interactions.csv"
    source.write_text(
        "customer_email,kind,occurred_at\n"
        "ADA@x.org,call,2026-01-01T10:00:00+00:00\n"
        "bob@x.org,call,2026-01-01T10:00:00+00:00\n"
        " cy@X.org ,call,2026-01-01T10:00:00+00:00\n",
        encoding="utf-8",
    )
    assert import_interactions(crm, source).imported == 3
    for customer in (ada, bob, cy):
        assert crm.interactions.timeline(customer.id).total == 1  # type: ignore[arg-type]


def test_cli_reports_key_usage_rotation_and_skipped_rows(open_crm: Opener, db_url: str) -> None:
    import json

    from click.testing import CliRunner

    from crmcore.cli import build_cli

    old, key = new_key(), new_key()
    stored = open_crm(old).customers.create_many(people(3))
    crm = open_crm(key, [old])  # sets the environment the CLI runs in
    runner = CliRunner()

    def run(*args: str) -> Any:
        # Only core is migrated here: installed plugins with pending migrations would refuse writes.
        argv = ["--db", db_url, "--plugins", "", *args]
        return runner.invoke(build_cli(argv), argv)

    status = json.loads(run("security", "status", "--json").output)
    assert status["sealed_by_key"] == {FieldCipher.key_id(_raw(old)): 3}
    assert status["index_key_id"] is None
    assert "Blind indexes: derived from the current key" in run("security", "status").output
    rotated = run("security", "rotate-key", "--yes", "--batch-size", "2")
    assert rotated.exit_code == 0, rotated.output
    assert "Re-sealed 3 customers" in rotated.output and "(0 already current)" in rotated.output
    again = run("security", "rotate-key", "--yes")
    assert "Re-sealed 0 customers" in again.output and "(3 already current)" in again.output
    stranger = FieldCipher(_raw(new_key()))
    lost = stored[1].id
    with crm.engine.begin() as conn:
        conn.execute(
            sa.update(customers)
            .where(customers.c.id == lost)
            .values(sealed=stranger.seal(lost, {"email": "p1@x.org"}))  # type: ignore[arg-type]
        )
    listed = run("customers", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert "Warning: 1 customer row(s) skipped" in listed.stderr
    assert f"customers {lost};" in listed.stderr
    body = json.loads(listed.stdout)
    items = body["items"] if isinstance(body, dict) else body
    assert [c["id"] for c in items] == [stored[0].id, stored[2].id]
    rotating = run("security", "rotate-key", "--yes")
    assert rotating.exit_code == 0 and f"customers {lost})" in rotating.stderr
    assert "row(s) skipped" not in rotating.stderr  # reported once
    assert "can now be emptied" not in rotating.output


def test_organisation_names_with_company_name_encrypted(open_crm: Opener) -> None:
    fields = ("email", "phone", "address", "birth_date", "company_name")
    acme = open_crm(None).customers.create(
        {"kind": "organization", "name": "Acme", "company_name": "Acme Inc."}
    )
    old, key = new_key(), new_key()
    crm = open_crm(old, encrypted_fields=fields)
    org = {"kind": "organization", "name": "x", "company_name": "ACME"}
    assert crm.customers.find_duplicate(org) == acme.id
    globex = crm.customers.create(
        {"kind": "organization", "name": "Globex", "company_name": "Globex"}
    )
    rotating = open_crm(key, [old], index=new_key(), encrypted_fields=fields)
    with pytest.raises(ConflictError, match="organisation name 'globex' already belongs"):
        rotating.customers.create({"kind": "organization", "name": "Globex Ltd"})
    assert rotating.customers.rotate_encryption() == 2
    assert key_usage(rotating)["identity_keys"] == {"index-key index": 2}
    assert rotating.customers.find_duplicate(org) == acme.id
    assert rotating.customers.get(globex.id).company_name == "Globex"  # type: ignore[arg-type]


def test_a_rotation_killed_by_a_signal_resumes(open_crm: Opener, db_url: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    ids = {c.email: c.id for c in open_crm(None).customers.create_many(people(120))}
    key = new_key()
    crm = open_crm(key)  # the environment the child process inherits
    script = (
        "import sys, time\n"
        "from crmcore import CRM\n"
        "crm = CRM.open(sys.argv[1], discover=False)\n"
        "crm.customers.rotate_encryption(batch_size=3, on_batch=lambda p: time.sleep(0.05))\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, db_url], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if key_usage(crm)["sealed_by_key"]:
                break
            time.sleep(0.02)
        time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    sealed = sum(key_usage(crm)["sealed_by_key"].values())
    assert 0 < sealed < 120  # killed half-way
    assert_all_found(crm, dict(list(ids.items())[::7]))  # type: ignore[arg-type]
    assert crm.customers.rotate_encryption(batch_size=50) == 120 - sealed
    assert_all_found(open_crm(key), dict(list(ids.items())[::7]))  # type: ignore[arg-type]


def test_a_lost_race_never_shows_a_blind_index(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmcore.hooks import hookimpl

    monkeypatch.setenv(KEY_ENV, new_key())
    monkeypatch.setenv(INDEX_KEY_ENV, new_key())
    rival = CRM.open(postgres_url, discover=False, upgrade=True)

    class Racer:
        """Registers the same email from another connection between pre-check and write."""

        @hookimpl
        def crm_validate_customers(self, ctx: Any, customers: Any) -> None:
            rival.customers.create({"name": "Winner", "email": "race@x.org"})

    crm = CRM.open(postgres_url, plugins=[Racer()], discover=False)
    try:
        with pytest.raises(ConflictError) as info:
            crm.customers.create({"name": "Loser", "email": "race@x.org"})
        winner = rival.customers.search(email="race@x.org").items[0]
        assert str(info.value) == (
            f"duplicate customer: email (encrypted) already belongs to customer {winner.id} "
            "(registered concurrently)"
        )
    finally:
        crm.close()
        rival.close()
