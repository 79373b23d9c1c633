"""A throw-away database for a benchmark: a SQLite file or a PostgreSQL schema, dropped after.

Benchmarks run as scripts (``python benchmarks/bench_x.py``), so they import
this module by its bare name.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from crmcore import CRM, Config


def open_scratch(
    backend: str,
    postgres_url: str,
    plugins: Sequence[object],
    clock: Callable[[], datetime],
    name: str,
) -> tuple[CRM, Callable[[], None]]:
    """A CRM on a fresh database with the plugins' schema, and how to drop it afterwards.

    ``backend`` is ``"sqlite"`` (a file in a new temporary folder) or
    ``"postgresql"`` (a new schema ``bench_<name>_<random>`` on ``postgres_url``).
    """
    if backend == "sqlite":
        path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) / "bench.db"
        crm = CRM.open(
            Config(database_url=f"sqlite:///{path}"),
            discover=False,
            plugins=list(plugins),
            upgrade=True,
            clock=clock,
        )

        def drop_sqlite() -> None:
            crm.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return crm, drop_sqlite
    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_url else "?"
    crm = CRM.open(
        Config(database_url=f"{postgres_url}{sep}options=-csearch_path%3D{schema}"),
        discover=False,
        plugins=list(plugins),
        upgrade=True,
        clock=clock,
    )

    def drop_postgres() -> None:
        crm.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return crm, drop_postgres


__all__ = ["open_scratch"]
