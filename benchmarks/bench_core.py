"""Core write throughput: the batch API against raw executemany of the same rows.

    .venv/bin/python benchmarks/bench_core.py [--customers N] [--interactions M] [--postgres URL]

For each backend (SQLite file; PostgreSQL when reachable) it times
``crm.customers.create_many`` and ``crm.interactions.record_many`` (validation,
duplicate detection, lifecycle moves, hooks, one transaction) and, in the same
run, the floor: the same rows inserted with the driver's bare ``executemany``
into the same tables. Prints rows/s, the ratio API/floor and peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crmcore import CRM
from crmcore.storage.tables import customers, interactions

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def customer_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "name": f"Customer {i}",
            "email": f"c{i}@bench.example",
            "phone": f"+1555{i:07d}",
            "owner": f"owner{i % 7}",
            "tags": ["bench"] if i % 3 == 0 else [],
        }


def interaction_rows(m: int, ids: list[int]) -> Iterator[dict[str, Any]]:
    rng = random.Random(1)
    for j in range(m):
        purchase = j % 3 == 0
        row: dict[str, Any] = {
            "customer_id": ids[rng.randrange(len(ids))],
            "kind": "purchase" if purchase else "call",
            "channel": "web" if purchase else "phone",
            "occurred_at": (T0 + timedelta(minutes=j)).isoformat(),
        }
        if purchase:
            row.update(amount=f"{rng.randint(100, 99999) / 100:.2f}", currency="EUR")
        yield row


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def floor(url: str, n: int, m: int) -> tuple[float, float]:
    """Bare executemany of equivalent rows, through the raw DBAPI connection."""
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    cust = [
        (
            f"Customer {i}",
            f"customer {i}",
            f"c{i}@bench.example",
            f"c{i}@bench.example",
            f"+1555{i:07d}",
            f"+1555{i:07d}",
            "person",
            "prospect",
            "{}",
            False,
            False,
            False,
            False,
            False,
            now,
            now,
        )
        for i in range(n)
    ]
    cols = (
        "name, name_norm, email, email_norm, phone, phone_norm, kind, stage, attributes, "
        "consent_marketing_email, consent_marketing_sms, consent_marketing_phone, consent_surveys, "
        "consent_data_processing, created_at, updated_at"
    )
    marks = ", ".join(["?" if engine.dialect.name == "sqlite" else "%s"] * 16)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = time.perf_counter()
        cursor.executemany(f"INSERT INTO crm_customers ({cols}) VALUES ({marks})", cust)
        raw.commit()
        t_customers = time.perf_counter() - start
        cursor.execute("SELECT min(id), max(id) FROM crm_customers")
        lo, hi = cursor.fetchone()
        rng = random.Random(1)
        inter = [
            (
                rng.randint(lo, hi),
                "purchase" if j % 3 == 0 else "call",
                "web",
                "inbound",
                T0 + timedelta(minutes=j),
                12345 if j % 3 == 0 else None,
                "EUR" if j % 3 == 0 else None,
                "[]",
                "{}",
            )
            for j in range(m)
        ]
        marks = ", ".join(["?" if engine.dialect.name == "sqlite" else "%s"] * 9)
        start = time.perf_counter()
        cursor.executemany(
            "INSERT INTO crm_interactions (customer_id, kind, channel, direction, occurred_at, "
            f"amount, currency, items, payload) VALUES ({marks})",
            inter,
        )
        raw.commit()
        t_interactions = time.perf_counter() - start
    finally:
        raw.close()
        engine.dispose()
    return t_customers, t_interactions


def fresh_postgres(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for schema in ("bench_api", "bench_floor"):
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
        return None
    return url


def run_backend(name: str, api_url: str, floor_url: str, n: int, m: int) -> None:
    crm = CRM.open(api_url, discover=False, upgrade=True)
    t_c = timed(lambda: crm.customers.create_many(customer_rows(n), keep=False))
    ids = list(range(1, n + 1))
    if crm.engine.dialect.name == "postgresql":
        with crm.engine.connect() as conn:
            ids = list(conn.execute(sa.select(customers.c.id)).scalars())
    t_i = timed(lambda: crm.interactions.record_many(interaction_rows(m, ids), keep=False))
    with crm.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one() == m
    crm.close()
    CRM.open(floor_url, discover=False, upgrade=True).close()
    f_c, f_i = floor(floor_url, n, m)
    print(f"\n{name}")
    print(f"  {'':14}{'API rows/s':>12}{'floor rows/s':>14}{'API/floor':>11}")
    for label, rows, api, base in (("customers", n, t_c, f_c), ("interactions", m, t_i, f_i)):
        print(f"  {label:14}{rows / api:12,.0f}{rows / base:14,.0f}{base / api:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    n, m = args.customers, args.interactions
    print(f"crmcore core write benchmark: {n:,} customers, {m:,} interactions, no plugins")
    with tempfile.TemporaryDirectory() as tmp:
        run_backend(
            "SQLite",
            f"sqlite:///{Path(tmp) / 'api.db'}",
            f"sqlite:///{Path(tmp) / 'floor.db'}",
            n,
            m,
        )
    if fresh_postgres(args.postgres):
        sep = "&" if "?" in args.postgres else "?"
        run_backend(
            "PostgreSQL",
            f"{args.postgres}{sep}options=-csearch_path%3Dbench_api",
            f"{args.postgres}{sep}options=-csearch_path%3Dbench_floor",
            n,
            m,
        )
        fresh_postgres(args.postgres)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the whole run: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
