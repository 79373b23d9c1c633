"""Bulk ingest with every plugin enabled, against the driver's floor, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_ingest.py [--customers 1000000] [--interactions 5000000]
        [--backends sqlite,postgresql] [--postgres URL] [--members 0.1] [--core-only]

For each backend, in the same run, on fresh databases migrated with every
installed plugin (surveys, loyalty, complaints, segmentation ...):

* floor: the same customer and interaction rows written straight into the
  core tables with ``sqlite3.executemany`` / psycopg ``COPY``;
* api: ``crm.customers.create_many`` and ``crm.interactions.record_many``
  (validation, duplicate detection, lifecycle moves, audit log, every
  plugin's hooks, one transaction), input streamed from generators;
* csv: ``crm customers import`` / ``crm interactions import`` of CSV files.

A share of the customers (``--members``) is enrolled in the loyalty programme
before the interactions, so purchases earn points. Each phase runs in its own
process, so its peak RSS is its own; the ratio column is floor time / phase
time (1.0 = as fast as the floor). ``--core-only`` runs the same phases with
no plugin installed, to show how much of the time the plugins take.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any

import sqlalchemy as sa

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def customer_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "name": f"Customer {i}",
            "email": f"c{i}@bench.example",
            "phone": f"+1555{i:07d}",
            "owner": f"owner{i % 7}",
            "tags": "bench" if i % 3 == 0 else "",
        }


def interaction_rows(m: int, n: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(1)
    for j in range(m):
        purchase = j % 3 == 0
        row: dict[str, Any] = {
            "customer_id": rng.randint(1, n),
            "kind": "purchase" if purchase else "call",
            "channel": "web" if purchase else "phone",
            "occurred_at": (T0 + timedelta(seconds=30 * j)).isoformat(),
            "amount": f"{rng.randint(100, 99999) / 100:.2f}" if purchase else "",
            "currency": "EUR" if purchase else "",
        }
        yield row


def _api_rows(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        clean = {k: v for k, v in row.items() if v != ""}
        if "tags" in clean:
            clean["tags"] = [clean["tags"]]
        yield clean


def write_csv(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        first = next(rows)
        writer = csv.DictWriter(out, fieldnames=list(first))
        writer.writeheader()
        writer.writerow(first)
        writer.writerows(rows)


#: Installed plugins left out: the example plugin is documentation, not a CRM strategy.
NOT_BENCHMARKED = ("example",)


def open_crm(url: str, core_only: bool = False) -> Any:
    from crmcore import CRM, Config

    if core_only:
        return CRM.open(Config(database_url=url), plugins=[], discover=False, upgrade=True)
    return CRM.open(Config(database_url=url, disabled_plugins=NOT_BENCHMARKED), upgrade=True)


def enroll_members(crm: Any, n: int, share: float) -> int:
    if "loyalty" not in {p.name for p in crm.plugins()}:
        return 0
    from crmcore_loyalty import service as loyalty

    step = max(1, round(1 / share)) if share > 0 else 0
    if not step:
        return 0
    ids = list(range(1, n + 1, step))
    for start in range(0, len(ids), 5000):
        loyalty.enroll_many(
            crm,
            [
                {"customer_id": c, "joined_at": T0 - timedelta(days=1)}
                for c in ids[start : start + 5000]
            ],
        )
    return len(ids)


def phase_floor(url: str, n: int, m: int, core_only: bool) -> dict[str, float]:
    open_crm(url, core_only).close()
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    raw = engine.raw_connection()
    driver: Any = raw.driver_connection
    sqlite = engine.dialect.name == "sqlite"
    cols = (
        "id, kind, name, name_norm, email, email_norm, phone, phone_norm, owner, stage, "
        "attributes, consent_marketing_email, consent_marketing_sms, consent_marketing_phone, "
        "consent_surveys, consent_data_processing, created_at, updated_at"
    )

    def customer_tuples() -> Iterator[tuple[Any, ...]]:
        for i, r in enumerate(customer_rows(n)):
            yield (
                i + 1,
                "person",
                r["name"],
                r["name"].lower(),
                r["email"],
                r["email"],
                r["phone"],
                r["phone"],
                r["owner"],
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

    def interaction_tuples() -> Iterator[tuple[Any, ...]]:
        for j, r in enumerate(interaction_rows(m, n)):
            amount = round(float(r["amount"]) * 10000) if r["amount"] else None
            yield (
                j + 1,
                r["customer_id"],
                r["kind"],
                r["channel"],
                "inbound",
                datetime.fromisoformat(r["occurred_at"]),
                amount,
                r["currency"] or None,
                "[]",
                "{}",
            )

    icols = (
        "id, customer_id, kind, channel, direction, occurred_at, amount, currency, items, payload"
    )
    start = time.perf_counter()
    if sqlite:
        driver.executemany(
            f"INSERT INTO crm_customers ({cols}) VALUES ({', '.join('?' * 18)})", customer_tuples()
        )
        driver.commit()
        t_c = time.perf_counter() - start
        start = time.perf_counter()
        driver.executemany(
            f"INSERT INTO crm_interactions ({icols}) VALUES ({', '.join('?' * 10)})",
            interaction_tuples(),
        )
        driver.commit()
    else:
        with driver.cursor() as cur, cur.copy(f"COPY crm_customers ({cols}) FROM STDIN") as copy:
            for row in customer_tuples():
                copy.write_row(row)
        driver.commit()
        t_c = time.perf_counter() - start
        start = time.perf_counter()
        with (
            driver.cursor() as cur,
            cur.copy(f"COPY crm_interactions ({icols}) FROM STDIN") as copy,
        ):
            for row in interaction_tuples():
                copy.write_row(row)
        driver.commit()
    t_i = time.perf_counter() - start
    raw.close()
    engine.dispose()
    return {"customers": t_c, "interactions": t_i}


def phase_api(url: str, n: int, m: int, members: float, core_only: bool) -> dict[str, float]:
    crm = open_crm(url, core_only)
    start = time.perf_counter()
    crm.customers.create_many(_api_rows(customer_rows(n)), keep=False, batch_size=1000)
    t_c = time.perf_counter() - start
    enrolled = enroll_members(crm, n, members)
    start = time.perf_counter()
    crm.interactions.record_many(_api_rows(interaction_rows(m, n)), keep=False, batch_size=2000)
    t_i = time.perf_counter() - start
    crm.close()
    return {"customers": t_c, "interactions": t_i, "members": enrolled}


def phase_csv(
    url: str, n: int, m: int, members: float, folder: str, core_only: bool
) -> dict[str, float]:
    from crmcore.io.imports import import_customers, import_interactions

    crm = open_crm(url, core_only)
    start = time.perf_counter()
    result = import_customers(crm, Path(folder) / "customers.csv", batch_size=1000)
    t_c = time.perf_counter() - start
    assert result.imported == n, result
    enrolled = enroll_members(crm, n, members)
    start = time.perf_counter()
    result = import_interactions(crm, Path(folder) / "interactions.csv", batch_size=2000)
    t_i = time.perf_counter() - start
    assert result.imported == m, result
    crm.close()
    return {"customers": t_c, "interactions": t_i, "members": enrolled}


def _child(target: Any, args: tuple[Any, ...], queue: Any) -> None:
    result = target(*args)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def run_phase(target: Any, *args: Any) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{target.__name__} failed (exit code {proc.exitcode})") from None
    proc.join()
    return result  # type: ignore[no-any-return]


def postgres_schema(url: str, name: str) -> str:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--members", type=float, default=0.1, help="share enrolled in loyalty")
    parser.add_argument(
        "--core-only", action="store_true", help="no plugins (shows what the plugins cost)"
    )
    args = parser.parse_args()
    n, m = args.customers, args.interactions

    probe = open_crm("sqlite://", args.core_only)
    plugins = ", ".join(p.name for p in probe.plugins()) or "none"
    probe.close()
    print(f"crmcore bulk ingest: {n:,} customers, {m:,} interactions; plugins: {plugins}")
    with tempfile.TemporaryDirectory() as folder:
        write_csv(Path(folder) / "customers.csv", customer_rows(n))
        write_csv(Path(folder) / "interactions.csv", interaction_rows(m, n))
        for backend in args.backends.split(","):
            urls = {}
            for phase in ("floor", "api", "csv"):
                if backend == "sqlite":
                    urls[phase] = f"sqlite:///{folder}/{phase}.db"
                else:
                    urls[phase] = postgres_schema(args.postgres, f"bench_ingest_{phase}")
            core = args.core_only
            floor = run_phase(phase_floor, urls["floor"], n, m, core)
            api = run_phase(phase_api, urls["api"], n, m, args.members, core)
            imported = run_phase(phase_csv, urls["csv"], n, m, args.members, folder, core)
            label = "COPY" if backend == "postgresql" else "executemany"
            print(f"\n{backend} (floor: raw {label}; {int(api['members']):,} loyalty members)")
            print(f"  {'phase':22}{'rows/s':>12}{'vs floor':>10}{'peak MB':>10}")
            for what, rows in (("customers", n), ("interactions", m)):
                base = floor[what]
                for name, result in (("floor", floor), ("api", api), ("csv", imported)):
                    t = result[what]
                    label = f"{what} {name}"
                    peak = result["peak_mb"]
                    print(f"  {label:22}{rows / t:12,.0f}{base / t:10.2f}{peak:10,.0f}")
            if backend == "postgresql":
                engine = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    for phase in ("floor", "api", "csv"):
                        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS bench_ingest_{phase} CASCADE"))
                engine.dispose()


if __name__ == "__main__":
    main()
