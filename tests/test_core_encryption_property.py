"""Property: enabling encryption and killing rotations at random points never loses a match.

Each example starts from an empty customers table, stores some customers in
plaintext, turns encryption on, creates more, then rotates to new keys while
a rotation is killed after a random number of batches (the batch in flight
rolls back; earlier batches stay committed). After every step each customer
must be found by email and phone, and creating any of them again must fail.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, Config, ConflictError
from crmcore.security.encryption import INDEX_KEY_ENV, KEY_ENV, OLD_KEYS_ENV, new_key
from crmcore.services.key_rotation import RotationProgress
from crmcore.storage.tables import customers


class Killed(Exception):
    """The rotation process 'died' after a committed batch."""


@pytest.fixture
def environment() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (KEY_ENV, OLD_KEYS_ENV, INDEX_KEY_ENV)}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _open(url: str, key: str | None, old: list[str], index: str | None) -> CRM:
    for name, value in ((KEY_ENV, key), (OLD_KEYS_ENV, ",".join(old)), (INDEX_KEY_ENV, index)):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    return CRM.open(Config(database_url=url), discover=False, upgrade=True)


def _check(crm: CRM, stored: dict[int, tuple[str, str]]) -> None:
    for cid, (email, phone) in stored.items():
        assert crm.customers.find_duplicate({"name": "x", "email": email.upper()}) == cid
        assert crm.customers.search(phone=phone).total == 1
        with pytest.raises(ConflictError):
            crm.customers.create({"name": "again", "email": email})
        with pytest.raises(ConflictError):
            crm.customers.create_many([{"name": "again", "phone": phone}])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=st.integers(0, 6),
    after=st.integers(0, 4),
    batch=st.integers(1, 4),
    kills=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    index_key=st.booleans(),
    keep_old=st.booleans(),
)
def test_rotations_killed_at_random_points_lose_nothing(
    db_url: str,
    environment: None,
    before: int,
    after: int,
    batch: int,
    kills: list[int],
    index_key: bool,
    keep_old: bool,
) -> None:
    setup = CRM.open(Config(database_url=db_url), discover=False, upgrade=True)
    with setup.engine.begin() as conn:
        conn.execute(sa.delete(customers))
    setup.close()
    index = new_key() if index_key else None
    stored: dict[int, tuple[str, str]] = {}

    def create(crm: CRM, start: int, n: int) -> None:
        for c in crm.customers.create_many(
            {"name": f"C{i}", "email": f"c{i}@x.org", "phone": f"+44 20 7946 {i:04d}"}
            for i in range(start, start + n)
        ):
            assert c.id is not None and c.email and c.phone
            stored[c.id] = (c.email, c.phone)

    crm = _open(db_url, None, [], index)
    create(crm, 0, before)
    crm.close()
    keys = [new_key()]
    crm = _open(db_url, keys[0], [], index)
    create(crm, before, after)
    _check(crm, stored)
    crm.close()
    for round_, kill_after in enumerate(kills):
        keys.append(new_key())
        crm = _open(db_url, keys[-1], keys[:-1], index)

        def die(progress: RotationProgress, limit: int = kill_after) -> None:
            if progress.rewritten + progress.unchanged >= limit * batch:
                raise Killed

        with contextlib.suppress(Killed):
            crm.customers.rotate_encryption(batch_size=batch, on_batch=die)
        _check(crm, stored)
        create(crm, 100 + 10 * round_, 1)  # a write in the middle of a rotation
        _check(crm, stored)
        crm.close()
    crm = _open(db_url, keys[-1], keys[:-1], index)
    crm.customers.rotate_encryption(batch_size=batch)
    crm.close()
    final = _open(db_url, keys[-1], keys[:-1] if keep_old else [], index)
    _check(final, stored)
    assert sorted(c.id for c in final.customers.iter_all()) == sorted(stored)
    assert final.customers.unreadable.count == 0
    final.close()
