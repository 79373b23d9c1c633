"""Engines for the two supported backends, with the settings crmcore relies on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from crmcore.errors import ConfigError

#: The embedded default database.
DEFAULT_URL = "sqlite:///crm.db"


def normalise_url(url: str) -> str:
    """Accept a SQLAlchemy URL, a ``postgresql://`` URL or a bare SQLite file path.

    ``postgresql://`` and ``postgres://`` are routed to psycopg 3.
    """
    url = url.strip()
    if not url:
        raise ConfigError("database url is empty")
    if "://" not in url:
        return f"sqlite:///{url}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Overwrite deleted content: erased or re-encrypted personal data must not
        # linger in free pages of the file.
        cursor.execute("PRAGMA secure_delete=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a unit of work that reads
        # then writes never fails half-way with "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (SQLite: WAL and foreign keys on; PostgreSQL: psycopg 3)."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database url {url!r} is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"database url {url!r}: backend {backend!r} is not supported")
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        # psycopg prepares a statement after 5 runs and PostgreSQL may then reuse a
        # generic plan made while a table was small (a seq scan for IN (...) lookups),
        # which turns bulk loads quadratic. Plan every statement with its values.
        kwargs.setdefault("connect_args", {}).setdefault("prepare_threshold", None)
    engine = create_engine(parsed, **kwargs)
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def compact(engine: Engine, tables: tuple[str, ...] = ()) -> None:
    """Rewrite storage so that no old row versions remain on disk.

    SQLite: checkpoint and truncate the WAL, then VACUUM. PostgreSQL:
    ``VACUUM FULL`` of ``tables`` (all tables when empty). Runs outside any
    transaction; takes exclusive locks, so use it for rare operations such as
    key rotation.
    """
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            driver.execute("VACUUM")
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        targets = ", ".join(f'"{t}"' for t in tables)
        connection.exec_driver_sql(f"VACUUM FULL {targets}".strip())
