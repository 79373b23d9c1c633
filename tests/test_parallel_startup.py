"""Any number of processes may open a fresh database with ``upgrade=True`` at once.

The migration transaction holds a lock (PostgreSQL: an advisory lock per
schema; SQLite: the write lock of ``BEGIN IMMEDIATE``), so the processes
migrate one after the other and each finds the schema current.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmcore import CRM

PROCESSES = 8

# Each child imports crmcore first, then waits at a gate so that every one of
# them reaches CRM.open(upgrade=True) together.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from crmcore import CRM
    gate = sys.argv[2]
    open(gate + "." + str(os.getpid()), "w").close()
    while not os.path.exists(gate):
        time.sleep(0.005)
    with CRM.open(sys.argv[1], discover=False, upgrade=True) as crm:
        assert crm.pending_migrations() == set(), crm.pending_migrations()
    print("ok")
    """
)


def _start_together(url: str, tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    gate = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(gate)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        for _ in range(PROCESSES)
    ]
    for _ in range(6000):  # every child is ready (or one died)
        ready = len(list(tmp_path.glob("go.*")))
        if ready == PROCESSES or any(c.poll() is not None for c in children):
            break
        time.sleep(0.01)
    gate.touch()
    results = []
    for child in children:
        out, err = child.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return results


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_processes_upgrading_one_fresh_database_all_succeed(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = str(request.getfixturevalue("postgres_url" if backend == "postgresql" else "sqlite_url"))
    results = _start_together(url, tmp_path)
    failures = [r.stderr.strip().splitlines()[-1:] for r in results if r.returncode != 0]
    assert failures == []
    assert [r.stdout.strip() for r in results] == ["ok"] * PROCESSES
    with CRM.open(url, discover=False) as crm:
        assert crm.pending_migrations() == set()
        with crm.engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            heads = sorted(versions.scalars())
        assert len(heads) == len(set(heads)) == 1  # core's head, recorded once
