"""Engines for the two supported backends, with the settings crmcore relies on."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from crmcore.errors import ConfigError, StorageError


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


def _switch_to_wal(cursor: Any) -> None:
    # Switching a new file to WAL needs it to itself; processes opening it at the
    # same moment can get "database is locked" without the busy timeout applying.
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


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
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A reader takes no lock: its snapshot starts at its first SELECT and
            # writers commit around it (WAL), so neither waits for the other.
            connection.exec_driver_sql("BEGIN DEFERRED")
        else:
            # IMMEDIATE takes the write lock up front, so a unit of work that reads
            # then writes never fails half-way with "database is locked".
            connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Execution option of a connection that only reads: on SQLite its transaction
#: starts with ``BEGIN DEFERRED`` (no write lock) instead of ``BEGIN IMMEDIATE``.
READ_ONLY = "crm_read_only"

#: Execution option of the migration connection, which writes while other writes are refused.
MIGRATING = "crm_migrating"

_CONFIGURED = "crm_configured"


def configure_engine(engine: Engine) -> Engine:
    """Give an engine made elsewhere crmcore's connection settings (once per engine).

    SQLite: foreign keys, WAL, busy timeout, ``secure_delete``, and
    ``BEGIN IMMEDIATE`` for writing transactions (``BEGIN DEFERRED`` for
    connections with the :data:`READ_ONLY` option). Other backends are
    left as they are.
    """
    backend = engine.dialect.name
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"database engine: backend {backend!r} is not supported")
    if backend == "sqlite" and not getattr(engine, _CONFIGURED, False):
        _configure_sqlite(engine)
        setattr(engine, _CONFIGURED, True)
    return engine


class WriteGuard:
    """Refuses writing transactions on an engine while ``refusal`` is set (one line).

    Checked in the engine's ``begin`` event, so the cost per transaction is
    one attribute read; read-only (:data:`READ_ONLY`) and migration
    (:data:`MIGRATING`) connections pass.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.refusal: str | None = None
        event.listen(engine, "begin", self._on_begin, insert=True)

    def _on_begin(self, connection: Connection) -> None:
        if self.refusal is None:
            return
        options = connection.get_execution_options()
        if not options.get(READ_ONLY) and not options.get(MIGRATING):
            raise StorageError(self.refusal)

    def detach(self) -> None:
        """Stop watching the engine (when the CRM closes)."""
        if event.contains(self.engine, "begin", self._on_begin):
            event.remove(self.engine, "begin", self._on_begin)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (SQLite: WAL and foreign keys on; PostgreSQL: psycopg 3).

    ``kwargs`` go to :func:`sqlalchemy.create_engine` (``pool_size``,
    ``max_overflow``, ``pool_recycle``, ``echo`` ...).
    """
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
    try:
        engine = create_engine(parsed, **kwargs)
    except TypeError as exc:  # an option this backend's pool or dialect does not take
        raise ConfigError(f"database engine options: {exc}") from None
    return configure_engine(engine)


def _sqlite_checkpoint(engine: Engine, *, vacuum: bool) -> None:
    """Checkpoint and truncate the WAL; with ``vacuum`` rewrite the file, then again."""
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if vacuum:
            driver.execute("VACUUM")
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def compact(engine: Engine, tables: tuple[str, ...] = ()) -> None:
    """Rewrite storage so that no old row versions remain on disk.

    SQLite: checkpoint and truncate the WAL, then VACUUM. PostgreSQL:
    ``VACUUM FULL`` of ``tables`` (all tables when empty). Runs outside any
    transaction; takes exclusive locks, so use it for rare operations such as
    key rotation.
    """
    if engine.dialect.name == "sqlite":
        _sqlite_checkpoint(engine, vacuum=True)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        targets = ", ".join(f'"{t}"' for t in tables)
        connection.exec_driver_sql(f"VACUUM FULL {targets}".strip())


#: What :func:`purge_old_versions` may do: vacuum, rewrite everything, or nothing.
VACUUM_MODES = ("auto", "full", "none")


def purge_old_versions(engine: Engine, *, full: bool = False, wait: float = 10.0) -> bool:
    """Make the old versions of rows an erasure overwrote unreadable in the database files.

    SQLite (which runs with ``secure_delete``, so freed space is zeroed):
    checkpoint and truncate the write-ahead log, which still holds earlier
    page images; with ``full`` also ``VACUUM``. PostgreSQL: a row version
    can only be removed once no transaction that may still see it is
    running, so first wait (up to ``wait`` seconds) until every transaction
    of the database's other client sessions that started before this call
    has ended. Then ``VACUUM (INDEX_CLEANUP ON)`` every table of the current
    schema: dead row versions are pruned from table, TOAST and index pages
    (index cleanup forced: PostgreSQL skips it when few pages changed), so
    no query or page inspection can reach them, but their bytes may stay in
    the page's free space until PostgreSQL writes new rows over them. With
    ``full``, ``VACUUM FULL`` instead: every table and index is rewritten
    into new files under an exclusive lock (reads and writes wait), after
    which no old version is in any table file. Neither reaches copies
    outside the database files: PostgreSQL's WAL segments (recycled after
    later checkpoints), replicas and backups.

    Runs outside any transaction. Returns ``False`` when an older
    transaction was still running after ``wait`` seconds (the versions it
    may see stay until a later vacuum, such as autovacuum's), else ``True``.
    """
    if engine.dialect.name == "sqlite":
        _sqlite_checkpoint(engine, vacuum=full)
        return True
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        clear = _older_transactions_ended(connection, wait)
        names = (
            connection.exec_driver_sql(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()"
            )
            .scalars()
            .all()
        )
        if names:
            option = "FULL" if full else "(INDEX_CLEANUP ON)"
            connection.exec_driver_sql(f"VACUUM {option} {', '.join(names)}")
    return clear


def _older_transactions_ended(connection: Connection, wait: float) -> bool:
    """Wait until the transactions other sessions of this database had open now have ended."""
    started = connection.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
    deadline = time.monotonic() + wait
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
        "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) AND xact_start < :started"
    )
    while connection.execute(query, {"started": started}).scalar_one():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
