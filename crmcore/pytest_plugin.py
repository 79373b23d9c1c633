"""pytest fixtures for crmcore and its plugins: every database test runs on SQLite and PostgreSQL.

Use them in a plugin's test suite with ``pytest_plugins = ["crmcore.pytest_plugin"]``
in the root ``conftest.py``. A test taking ``db_url``, ``crm`` or ``crm_factory``
runs twice, once per backend.

PostgreSQL: ``CRM_TEST_POSTGRES_URL`` (default the local server, database
``test``). Each test gets a schema of its own, dropped afterwards. When the
server is unreachable the PostgreSQL runs are skipped, except under
``CI=true`` where they fail: CI must prove both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import CRM
from crmcore.config import Config
from crmcore.testing import FrozenClock

POSTGRES_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

_pg_state: dict[str, object] = {}


def _postgres_engine() -> sa.Engine:
    if "engine" not in _pg_state:
        engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
        except Exception as exc:
            _pg_state["error"] = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}"
        _pg_state["engine"] = engine
    if "error" in _pg_state:
        if IN_CI:
            pytest.fail(str(_pg_state["error"]) + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(str(_pg_state["error"]))
    return _pg_state["engine"]  # type: ignore[return-value]


def _schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh, empty PostgreSQL schema."""
    engine = _postgres_engine()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield _schema_url(schema)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'crm.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at 2026-01-01 12:00 UTC."""
    return FrozenClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def crm(db_url: str, clock: FrozenClock) -> Iterator[CRM]:
    """An initialised CRM without installed plugins, on each backend."""
    instance = CRM.open(db_url, discover=False, upgrade=True, clock=clock)
    try:
        yield instance
    finally:
        instance.close()


CRMFactory = Callable[..., CRM]


@pytest.fixture
def crm_factory(db_url: str, clock: FrozenClock) -> Iterator[CRMFactory]:
    """Open initialised CRMs on the test's database with the plugins you give.

    ``crm_factory(plugins=[my_plugin], plugin_sections={"mine": {...}})``;
    keyword arguments other than ``plugins`` and ``discover`` build the
    :class:`~crmcore.config.Config`. Every CRM opened is closed after the test.
    """
    opened: list[CRM] = []

    def factory(plugins: Sequence[object] = (), discover: bool = False, **config: Any) -> CRM:
        instance = CRM.open(
            Config(database_url=db_url, **config),
            plugins=plugins,
            discover=discover,
            upgrade=True,
            clock=clock,
        )
        opened.append(instance)
        return instance

    yield factory
    for instance in opened:
        instance.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every access conformance matrix the tests ran (and write them to a file).

    ``CRM_ACCESS_MATRIX=path`` also writes the matrices to that file.
    """
    from crmcore.testing.conformance import recorded_matrices

    matrices = recorded_matrices()
    if not matrices:
        return
    text = "\n\n".join(m.format() for m in matrices)
    terminalreporter.section("crmcore access conformance")
    terminalreporter.write_line(text)
    leaks = sum(len(m.failures) for m in matrices)
    cells = sum(len(m.cells) for m in matrices)
    terminalreporter.write_line(f"{len(matrices)} matrices, {cells} cells, {leaks} failures")
    target = os.environ.get("CRM_ACCESS_MATRIX")
    if target:
        Path(target).write_text(text + "\n", encoding="utf-8")
