"""``plan`` of the activities plugin over many customers and 50 rules, timed, with peak memory.

    .venv/bin/python benchmarks/bench_activities.py [--backend postgresql|sqlite]
        [--customers 1000000] [--postgres URL]

Generates, inside the database (PostgreSQL: ``generate_series``; SQLite: a
recursive CTE), ``--customers`` customers (default 1,000,000): persons and
organisations, stages spread over the lifecycle, 50 owners, 10 % tagged
``key_account``, consent flags, birth and founding dates, created over the
last 400 days, and one visit or call for half of them in the last 60 days.
Then 50 rules, all starting today: 20 cadences (tag, stage or owner targets,
7- to 60-day windows), 10 onboarding rules, 5 birthday, 5 anniversary,
5 holiday (CN, DE, US, FR, JP) and 5 win-back rules, and runs

* ``plan`` (the first run: creates the tasks),
* ``plan`` again (idempotent: creates nothing; the cost of a no-op cron run),
* ``plan --dry-run`` for tomorrow's day on a clock moved one day on.

Prints the time of each, the tasks created, the statements issued (one
``INSERT ... SELECT`` per rule and day: never per customer), tracemalloc's
peak of Python-side allocations during each run and the process's
``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import crmcore_activities.plugin
import sqlalchemy as sa
from crmcore_activities import planner, rules
from scratch import open_scratch

from crmcore import CRM

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
POSTGRES = os.environ.get(
    "CRM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
STAGES = ("prospect", "new", "active", "loyal", "at_risk", "churned")


class Clock:
    """A clock the benchmark moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _ts(pg: bool, days_back: str) -> str:
    if pg:
        return f"TIMESTAMPTZ '{NOW:%Y-%m-%d %H:%M:%S}+00' - ({days_back}) * interval '1 second'"
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', '{NOW:%Y-%m-%d %H:%M:%S}', '-' || ({days_back}) || "
        "' seconds') || '.000000'"
    )


def generate(crm: CRM, customers: int) -> None:
    """Customers and interactions, in the database (no Python loop per row)."""
    with crm.engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.execute(sa.text("SELECT setseed(0.42)"))
            seq = "generate_series(1, :c) AS x"
            rnd = "floor(random() * {n})::int"
            flag = "(random() < {p})"
            day = "DATE '1960-01-01' + {n}"
        else:
            seq = (
                "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :c) "
                "SELECT x FROM s)"
            )
            rnd = "(abs(random()) % {n})"
            flag = "(abs(random()) % 1000 < {p} * 1000)"
            day = "date('1960-01-01', '+' || ({n}) || ' days')"
        stage = "CASE x % 6 " + " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STAGES))
        conn.execute(
            sa.text(
                f"""
                INSERT INTO crm_customers (id, kind, name, name_norm, owner, stage, birth_date,
                  founding_date, attributes, consent_marketing_email, consent_marketing_sms,
                  consent_marketing_phone, consent_surveys, consent_data_processing,
                  created_at, updated_at)
                SELECT x, CASE WHEN x % 5 = 0 THEN 'organization' ELSE 'person' END,
                  'C ' || x, 'c ' || x, 'owner' || (x % 50), {stage} END,
                  CASE WHEN x % 5 = 0 THEN NULL ELSE {day.format(n=rnd.format(n=18000))} END,
                  CASE WHEN x % 5 = 0 THEN {day.format(n=rnd.format(n=20000))} ELSE NULL END,
                  '{{}}', {flag.format(p=0.6)}, {flag.format(p=0.4)}, {flag.format(p=0.5)},
                  {flag.format(p=0.5)}, {flag.format(p=0.9)},
                  {_ts(pg, rnd.format(n=400 * 86400))}, {_ts(pg, "0")}
                FROM {seq}
                """
            ),
            {"c": customers},
        )
        conn.execute(
            sa.text(
                f"INSERT INTO crm_customer_tags (customer_id, tag) "
                f"SELECT x, 'key_account' FROM {seq} WHERE x % 10 = 0"
            ),
            {"c": customers},
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO crm_interactions (customer_id, kind, channel, direction, occurred_at,
                  items, payload)
                SELECT x, CASE WHEN x % 4 = 0 THEN 'visit' ELSE 'call' END, 'phone', 'outbound',
                  {_ts(pg, rnd.format(n=60 * 86400))}, '[]', '{{}}'
                FROM {seq} WHERE x % 2 = 0
                """
            ),
            {"c": customers},
        )
        if pg:
            conn.execute(sa.text("ANALYZE"))


def add_rules(crm: CRM) -> None:
    """The 50 rules, starting today."""
    today = NOW.date()
    defs: list[dict[str, Any]] = []
    for n in range(20):
        targets: dict[str, Any] = [
            {"tags": ["key_account"]},
            {"stages": [STAGES[n % 6]], "owners": [f"owner{n}", f"owner{n + 20}"]},
            {"stages": ["at_risk"], "owners": [f"owner{n}"]},
            {"tags": ["key_account"], "stages": [STAGES[n % 6]]},
        ][n % 4]
        defs.append(
            {
                "type": "cadence",
                "kind": "visit" if n % 2 else "call",
                "params": {"rrule": f"FREQ=DAILY;INTERVAL={7 + 3 * n}", "window_days": 7 + 3 * n},
                "targets": targets,
            }
        )
    defs += [
        {"type": "onboarding", "kind": "call", "params": {"offsets": [3 + n, 14 + n]}}
        for n in range(10)
    ]
    defs += [
        {"type": "birthday", "kind": "care", "targets": {"owners": [f"owner{n}"]}} for n in range(5)
    ]
    defs += [{"type": "anniversary", "kind": "care"} for _ in range(5)]
    defs += [
        {
            "type": "holiday",
            "kind": "message",
            "params": {"country": c},
            "targets": {"tags": ["key_account"]},
        }
        for c in ("CN", "DE", "US", "FR", "JP")
    ]
    defs += [{"type": "winback", "kind": "call", "params": {"days": n + 1}} for n in range(5)]
    assert len(defs) == 50
    for n, d in enumerate(defs):
        rules.add_rule(
            crm, {"name": f"rule_{n:02d}", "subject": f"Rule {n}", **d}, start_date=today
        )


def timed(label: str, fn: Callable[[], Any], crm: CRM) -> tuple[float, Any, int, int]:
    """Run ``fn``; seconds, result, tracemalloc peak, statements issued."""
    count = [0]

    def listen(*_: Any) -> None:
        count[0] += 1

    sa.event.listen(crm.engine, "before_cursor_execute", listen)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sa.event.remove(crm.engine, "before_cursor_execute", listen)
    print(
        f"  {label:<34} {seconds:9.2f} s  created {result['created']:>10,}  "
        f"statements {count[0]:>5}  python peak {peak / 2**20:7.1f} MiB"
    )
    return seconds, result, peak, count[0]


def main(argv: list[str] | None = None) -> int:
    """Generate, plan three times, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $CRM_BENCH_POSTGRES_URL)")
    args = parser.parse_args(argv)
    clock = Clock(NOW)
    crm, drop = open_scratch(
        args.backend, args.postgres or POSTGRES, [crmcore_activities.plugin], clock, "activities"
    )
    try:
        start = time.perf_counter()
        generate(crm, args.customers)
        add_rules(crm)
        print(
            f"activities benchmark: {args.customers:,} customers x 50 rules on {args.backend}, "
            f"today {NOW.date()}"
        )
        print(f"  {'generated in the database':<34} {time.perf_counter() - start:9.2f} s")
        first = timed("plan (first run)", lambda: planner.plan(crm), crm)
        timed("plan again (idempotent no-op)", lambda: planner.plan(crm), crm)
        clock.now = NOW + timedelta(days=1)
        timed("plan --dry-run (next day)", lambda: planner.plan(crm, dry_run=True), crm)
        with crm.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM activities_activities")).scalar()
        print(f"  tasks stored {stored:,} (first run reported {first[1]['created']:,})")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mib = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
        print(f"  process peak RSS (ru_maxrss) {rss_mib:.1f} MiB")
        return 0 if stored == first[1]["created"] else 1
    finally:
        drop()


if __name__ == "__main__":
    raise SystemExit(main())
