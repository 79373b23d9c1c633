"""Peak memory and time of the segmentation CLI on a large SQLite database, one fresh process each.

    .venv/bin/python benchmarks/bench_memory.py [--customers 200000]
        [--interactions 1000000] [--cache DIR] [--rebuild] [--skip-baseline]

Builds (once, then cached under ``--cache``, default ``$TMPDIR/crmcore-benchmarks``)
a SQLite database with every installed plugin's schema, ``--customers`` customers
and ``--interactions`` interactions (90 % purchases over two years, skewed so a few
customers buy most, the rest e-mails and calls), generated inside the database by
a recursive CTE. Each run works on a fresh copy of the cached file, so saving a
segment changes nothing for the next run.

Then runs each command as its own ``crm`` process and prints its peak resident
set size (``ru_maxrss`` of that child, from ``os.wait4``), its wall time and the
size of what it printed. Last, ``customer_values`` (what ``segments clv`` calls)
in a child process against the baseline measured in the same run: the query
shape before the fix (the RFM subquery joined as a plain subquery, which SQLite
re-ran once per customer), computing the same first rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HISTORY_DAYS = 730
LIMIT_RULE = {
    "any": [
        {"field": "rfm.r", "op": "ge", "value": 1},
        {"field": "customer.stage", "op": "eq", "value": "active"},
    ]
}


def build(path: Path, customers: int, interactions: int, as_of: datetime) -> None:
    """A fresh database at ``path``: schema of every plugin, then generated rows."""
    import sqlalchemy as sa

    from crmcore import CRM, Config

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    crm = CRM.open(Config(database_url=f"sqlite:///{path}"), upgrade=True)
    stamp = as_of.strftime("%Y-%m-%d %H:%M:%S")
    purchases = interactions * 9 // 10
    try:
        with crm.engine.begin() as conn:
            conn.execute(
                sa.text(
                    """
                    INSERT INTO crm_customers (id, kind, name, name_norm, stage, attributes,
                      consent_marketing_email, consent_marketing_sms, consent_marketing_phone,
                      consent_surveys, consent_data_processing, created_at, updated_at)
                    WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :n)
                    SELECT x, 'person', 'Customer ' || x, 'customer ' || x, 'active', '{}',
                      0, 0, 0, 0, 1, '2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000'
                    FROM seq
                    """
                ),
                {"n": customers},
            )
            # kind by draw: purchases first, then e-mails and calls
            conn.execute(
                sa.text(
                    f"""
                    INSERT INTO crm_interactions (customer_id, kind, channel, direction,
                      occurred_at, amount, currency, items, payload)
                    WITH RECURSIVE seq(x) AS (
                      SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :m),
                    draws AS (SELECT x, (abs(random()) % 1000000) / 1000000.0 AS u,
                                     abs(random()) % ({HISTORY_DAYS} * 86400) AS back,
                                     abs(random()) % 30000 AS cents FROM seq)
                    SELECT 1 + CAST(:n * (u * u * 0.9999) AS INTEGER),
                      CASE WHEN x <= :p THEN 'purchase' WHEN x % 2 = 0 THEN 'email' ELSE 'call' END,
                      'web', 'inbound',
                      strftime('%Y-%m-%d %H:%M:%S', '{stamp}', '-' || back || ' seconds')
                        || '.000000',
                      CASE WHEN x <= :p THEN (100 + cents) * 100 END,
                      CASE WHEN x <= :p THEN 'EUR' END, '[]', '{{}}'
                    FROM draws
                    """
                ),
                {"n": customers, "m": interactions, "p": purchases},
            )
        with crm.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    finally:
        crm.close()


def cached_database(args: argparse.Namespace) -> tuple[Path, datetime]:
    """The cached database for these sizes (built when missing) and its as-of date."""
    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"memory-{args.customers}-{args.interactions}.db"
    meta = path.with_suffix(".json")
    if args.rebuild or not path.exists() or not meta.exists():
        as_of = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = time.perf_counter()
        print(f"building {path} ({args.customers:,} customers, {args.interactions:,} ...)")
        build(path, args.customers, args.interactions, as_of)
        meta.write_text(json.dumps({"as_of": as_of.isoformat()}), encoding="utf-8")
        print(f"  built in {time.perf_counter() - start:.1f} s")
    as_of = datetime.fromisoformat(json.loads(meta.read_text(encoding="utf-8"))["as_of"])
    return path, as_of


def working_copy(cached: Path) -> Path:
    """A copy of the cached database (schema brought up to date) for one run."""
    from crmcore import CRM, Config

    target = cached.with_name(cached.stem + "-run.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(cached, target)
    CRM.open(Config(database_url=f"sqlite:///{target}"), upgrade=True).close()
    return target


def measure(label: str, argv: Sequence[str]) -> dict[str, Any]:
    """Run ``argv`` as a fresh child; its peak RSS (MB), seconds and output size."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        errors = child.stderr.read().decode() if child.stderr else ""
        size = out.tell()
        out.seek(0)
        head = out.read(2000).decode(errors="replace")
    # ru_maxrss is in KiB on Linux, bytes on macOS
    rss = usage.ru_maxrss / 2**20 if sys.platform == "darwin" else usage.ru_maxrss / 2**10
    ok = child.returncode == 0
    print(
        f"  {label:<46} {rss:8.1f} MB {seconds:9.2f} s  {size / 2**20:8.2f} MB out"
        + ("" if ok else f"  FAILED ({child.returncode}): {errors.strip()[-300:]}"),
        flush=True,
    )
    return {"label": label, "mb": rss, "seconds": seconds, "ok": ok, "head": head}


def old_customer_values(url: str, as_of: datetime, limit: int) -> tuple[float, list[Any]]:
    """Seconds and first rows of ``customer_values`` with the query shape before the fix.

    The same columns and order as the plugin's lifetime query, but the RFM
    scores joined as a plain subquery, which SQLite's planner re-ran per customer.
    """
    from crmcore_segmentation.calendar_sql import day_number
    from crmcore_segmentation.purchases import counted_purchases, raw_sum
    from crmcore_segmentation.rfm import rfm_query
    from crmcore_segmentation.settings import settings_of
    from sqlalchemy import Float, Integer, case, cast, func, literal, select

    from crmcore import CRM, Config

    crm = CRM.open(Config(database_url=url), clock=lambda: as_of)
    try:
        settings = settings_of(crm)
        purchases = counted_purchases(crm, as_of, currency=settings.currency).subquery("lp")
        life = (
            select(
                purchases.c.customer_id,
                func.count().label("purchases"),
                raw_sum(purchases.c.net).label("revenue"),
                func.min(purchases.c.day).label("first_day"),
            )
            .group_by(purchases.c.customer_id)
            .subquery("life")
        )
        rfm = rfm_query(crm, as_of=as_of).subquery("rfm_now")
        joined = select(life, rfm.c.segment).select_from(
            life.outerjoin(rfm, rfm.c.customer_id == life.c.customer_id)
        )
        old = joined.subquery("old")
        tenure = literal(day_number(as_of), Integer) - old.c.first_day
        observed = case(
            (tenure > settings.min_tenure_days, tenure), else_=literal(settings.min_tenure_days)
        )
        query = (
            select(old)
            .order_by((cast(old.c.revenue, Float) / observed).desc(), old.c.customer_id)
            .limit(limit)
        )
        start = time.perf_counter()
        with crm.reading() as uow:
            rows = [tuple(r) for r in uow.connection.execute(query)]
        return time.perf_counter() - start, rows
    finally:
        crm.close()


def new_customer_values(url: str, as_of: datetime, limit: int) -> tuple[float, list[Any]]:
    """Seconds and first rows of ``customer_values`` through the plugin's API (the fix)."""
    from crmcore_segmentation.value import customer_values

    from crmcore import CRM, Config

    crm = CRM.open(Config(database_url=url), clock=lambda: as_of)
    try:
        start = time.perf_counter()
        rows = [
            (v.customer_id, v.purchases, int(v.revenue * 10000), v.segment)
            for v in customer_values(crm, as_of=as_of, limit=limit)
        ]
        return time.perf_counter() - start, rows
    finally:
        crm.close()


def child_main(argv: list[str]) -> int:
    """``--child old|new URL AS_OF LIMIT``: one customer_values run, ids printed as JSON."""
    shape, url, as_of, limit = argv
    fn = old_customer_values if shape == "old" else new_customer_values
    seconds, rows = fn(url, datetime.fromisoformat(as_of), int(limit))
    print(json.dumps({"seconds": seconds, "rows": [[r[0], r[1], r[2], r[-1]] for r in rows]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the database, run every command in a fresh process, print figures."""
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--child"]:
        return child_main(raw[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "crmcore-benchmarks"),
        help="Folder of the cached database (built once per size).",
    )
    parser.add_argument("--rebuild", action="store_true", help="Rebuild the cached database.")
    parser.add_argument(
        "--skip-baseline", action="store_true", help="Do not run the old customer_values query."
    )
    parser.add_argument("--budget", type=float, default=150.0, help="Peak RSS budget in MB.")
    args = parser.parse_args(raw)
    cached, as_of = cached_database(args)
    path = working_copy(cached)
    url = f"sqlite:///{path}"
    crm = [str(Path(sys.executable).with_name("crm")), "--db", url, "segments"]
    day = as_of.date().isoformat()
    print(
        f"memory benchmark: {args.customers:,} customers, {args.interactions:,} interactions "
        f"(SQLite, {path}), as of {day}"
    )
    print(f"  {'command':<46} {'peak RSS':>11} {'time':>11}  {'output':>11}")
    bounded = [
        measure("crm --help (import baseline)", [*crm[:-1], "--help"]),
        measure("segments churn --json", [*crm, "churn", "--json", "--as-of", day]),
        measure(
            "segments define (every customer)",
            [*crm, "define", "bench_all", json.dumps(LIMIT_RULE)],
        ),
        measure("segments pareto --json", [*crm, "pareto", "--json", "--as-of", day]),
        measure("segments clv --limit 20", [*crm, "clv", "--limit", "20", "--as-of", day]),
    ]
    unlimited = [
        measure(
            "segments churn --json --limit 0",
            [*crm, "churn", "--json", "--limit", "0", "--as-of", day],
        ),
        measure(
            "segments pareto --json --limit 0",
            [*crm, "pareto", "--json", "--limit", "0", "--as-of", day],
        ),
        measure(
            "segments clv --json --limit 0", [*crm, "clv", "--json", "--limit", "0", "--as-of", day]
        ),
        measure(
            "segments rfm --json --limit 0", [*crm, "rfm", "--json", "--limit", "0", "--as-of", day]
        ),
        measure(
            "segments members bench_all --json --limit 0",
            [*crm, "members", "bench_all", "--json", "--limit", "0"],
        ),
        measure("segments refresh bench_all (no change)", [*crm, "refresh", "bench_all"]),
    ]
    print("customer_values, first 20 rows (fresh process each):")
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    new = measure("fixed query (UNION ALL + GROUP BY)", [*me, "new", url, as_of.isoformat(), "20"])
    old = None
    if not args.skip_baseline:
        old = measure(
            "baseline: query shape before the fix", [*me, "old", url, as_of.isoformat(), "20"]
        )
    print("summary:")
    for row in bounded[1:]:
        verdict = "within" if row["ok"] and row["mb"] < args.budget else "OVER"
        print(
            f"  {row['label']:<46} {row['mb']:8.1f} MB  {verdict} the {args.budget:.0f} MB budget"
        )
    worst = max(r["mb"] for r in bounded[1:] + unlimited)
    print(f"  largest peak of all commands (unlimited listings too): {worst:.1f} MB")
    if old is not None and old["ok"] and new["ok"]:
        before, after = json.loads(old["head"]), json.loads(new["head"])
        same = before["rows"] == after["rows"]
        print(
            f"  customer_values (process): {new['seconds']:.2f} s vs {old['seconds']:.2f} s "
            f"before, {old['seconds'] / new['seconds']:.1f}x faster; same rows: {same}"
        )
        print(
            f"  customer_values (the query): {after['seconds']:.2f} s vs "
            f"{before['seconds']:.2f} s before, {before['seconds'] / after['seconds']:.1f}x faster"
        )
    failed = [r["label"] for r in bounded + unlimited if not r["ok"]]
    over = [r["label"] for r in bounded[1:] + unlimited if r["mb"] >= args.budget]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return 1 if failed or over else 0


if __name__ == "__main__":
    raise SystemExit(main())
