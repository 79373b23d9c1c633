"""Segmentation analytics in SQL against the analyst's pandas baseline, on the same data.

    .venv/bin/python benchmarks/bench_segmentation.py [--backend postgresql|sqlite]
        [--customers 1000000] [--purchases 10000000] [--postgres URL]

Generates the customers and purchases inside the database (PostgreSQL:
``generate_series``; SQLite: a recursive CTE), then, in the same run:

* **SQL** (the plugin's API): RFM scores and segments (segment counts), value
  tiers, churn scoring (``assess_churn``), all computed in the database;
* **pandas** (the baseline): the purchases loaded the way an analyst would
  (``pandas.read_sql``), then the same RFM (same window, day-based recency,
  rank-based quintiles, FM, segment table) computed in memory.

Prints both times, the ratio pandas/SQL for RFM, whether the segment counts
agree, and peak memory: tracemalloc's peak of Python-side allocations for
each phase (numpy reports its buffers to tracemalloc) and the process's
``ru_maxrss``. pandas is only needed here: ``pip install -e 'plugins/segmentation[bench]'``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import crmcore_segmentation.plugin
import sqlalchemy as sa
from crmcore_segmentation import churn, rfm, value
from crmcore_segmentation.settings import DEFAULT_SEGMENTS
from scratch import open_scratch

from crmcore import CRM

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_DAYS = 730
WINDOW_DAYS = 365
POSTGRES = os.environ.get(
    "CRM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any, int]:
    """Run ``fn``; return seconds, its result and tracemalloc's peak bytes meanwhile."""
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {label:<44} {seconds:9.2f} s   python peak {peak / 2**20:8.1f} MiB", flush=True)
    return seconds, result, peak


def generate(crm: CRM, customers: int, purchases: int) -> None:
    """Customers and purchases generated inside the database, with a skewed purchase share."""
    as_of = AS_OF.strftime("%Y-%m-%d %H:%M:%S")
    with crm.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    """
                    INSERT INTO crm_customers (id, kind, name, name_norm, stage, attributes,
                      consent_marketing_email, consent_marketing_sms, consent_marketing_phone,
                      consent_surveys, consent_data_processing, created_at, updated_at)
                    SELECT x, 'person', 'Customer ' || x, 'customer ' || x, 'active', '{}',
                      false, false, false, false, true,
                      TIMESTAMPTZ '2024-01-01 00:00:00+00', TIMESTAMPTZ '2024-01-01 00:00:00+00'
                    FROM generate_series(1, :n) AS x
                    """
                ),
                {"n": customers},
            )
            conn.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('crm_customers', 'id'), :n)"),
                {"n": customers},
            )
            conn.execute(sa.text("SELECT setseed(0.42)"))
            conn.execute(
                sa.text(
                    f"""
                    INSERT INTO crm_interactions (customer_id, kind, channel, direction,
                      occurred_at, amount, currency, items, payload)
                    SELECT 1 + floor(:n * power(random(), 1.6))::bigint, 'purchase', 'web',
                      'inbound',
                      TIMESTAMPTZ '{as_of}+00' - random() * interval '{HISTORY_DAYS} days',
                      (100 + floor(random() * 30000)::bigint) * 100, 'EUR', '[]', '{{}}'
                    FROM generate_series(1, :m)
                    """
                ),
                {"n": customers, "m": purchases},
            )
        else:
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
            conn.execute(
                sa.text(
                    f"""
                    INSERT INTO crm_interactions (customer_id, kind, channel, direction,
                      occurred_at, amount, currency, items, payload)
                    WITH RECURSIVE seq(x) AS (
                      SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :m),
                    draws AS (SELECT (abs(random()) % 1000000) / 1000000.0 AS u,
                                     abs(random()) % ({HISTORY_DAYS} * 86400) AS back,
                                     abs(random()) % 30000 AS cents FROM seq)
                    SELECT 1 + CAST(:n * (u * u * 0.9999) AS INTEGER),
                      'purchase', 'web', 'inbound',
                      strftime('%Y-%m-%d %H:%M:%S', '{as_of}', '-' || back || ' seconds')
                        || '.000000',
                      (100 + cents) * 100, 'EUR', '[]', '{{}}'
                    FROM draws
                    """
                ),
                {"n": customers, "m": purchases},
            )
    with crm.engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


def sql_rfm_segments(crm: CRM) -> dict[str, int]:
    """Segment counts of the plugin's RFM query (the full scoring runs in the database)."""
    scored = rfm.rfm_query(crm, as_of=AS_OF, window_days=WINDOW_DAYS).subquery("rfm")
    query = sa.select(scored.c.segment, sa.func.count()).group_by(scored.c.segment)
    with crm.reading() as uow:
        return {str(s): int(n) for s, n in uow.connection.execute(query)}


def pandas_rfm_segments(crm: CRM) -> dict[str, int]:
    """The analyst's way: read the purchases into a DataFrame, compute RFM with pandas."""
    import numpy as np
    import pandas as pd

    with crm.engine.connect() as conn:
        df = pd.read_sql(
            "SELECT customer_id, occurred_at, amount FROM crm_interactions WHERE kind = 'purchase'",
            conn,
        )
    occurred = pd.to_datetime(df["occurred_at"], utc=True)
    as_of = pd.Timestamp(AS_OF)
    keep = (occurred >= as_of - pd.Timedelta(days=WINDOW_DAYS)) & (occurred < as_of)
    df = df.loc[keep].assign(day=occurred[keep].dt.floor("D"), amount=df["amount"][keep])
    per = df.groupby("customer_id").agg(
        last=("day", "max"), frequency=("day", "size"), monetary=("amount", "sum")
    )
    per["recency"] = (as_of.floor("D") - per["last"]).dt.days
    n = len(per)

    def score(column: pd.Series, ascending: bool) -> pd.Series:
        below = column.rank(method="min", ascending=ascending).astype("int64") - 1
        return 5 * below // n + 1

    r = score(per["recency"], ascending=False)
    f = score(per["frequency"], ascending=True)
    m = score(per["monetary"], ascending=True)
    fm = (f + m + 1) // 2
    grid = np.empty((6, 6), dtype=object)
    for rs in range(1, 6):
        for fs in range(1, 6):
            grid[rs, fs] = next(s.name for s in DEFAULT_SEGMENTS if s.matches(rs, fs))
    segments = pd.Series(grid[r.to_numpy(), fm.to_numpy()], index=per.index)
    return {str(k): int(v) for k, v in segments.value_counts().items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $CRM_BENCH_POSTGRES_URL)")
    args = parser.parse_args(argv)
    import pandas  # noqa: F401  (imported before timing: its import is not the analysis)

    crm, drop = open_scratch(
        args.backend, args.postgres or POSTGRES, [crmcore_segmentation.plugin], lambda: AS_OF, "seg"
    )
    try:
        print(
            f"segmentation benchmark: {args.customers:,} customers, {args.purchases:,} "
            f"purchases on {args.backend}, as of {AS_OF:%Y-%m-%d}, window {WINDOW_DAYS} days"
        )
        start = time.perf_counter()
        generate(crm, args.customers, args.purchases)
        print(f"  {'generated in the database':<44} {time.perf_counter() - start:9.2f} s")
        print("SQL (crmcore-segmentation, in the database):")
        t_rfm, sql_segments, peak_sql = timed(
            "RFM scores + segments", lambda: sql_rfm_segments(crm)
        )
        t_tiers, tier_rows, _ = timed(
            "value tiers (monetary)",
            lambda: value.tiers(crm, "monetary", as_of=AS_OF, window_days=WINDOW_DAYS),
        )
        t_churn, flagged, _ = timed(
            "churn scoring (assess_churn)", lambda: churn.assess_churn(crm, as_of=AS_OF)
        )
        print("pandas (read_sql of the purchases, RFM in memory):")
        t_pandas, pandas_segments, peak_pandas = timed(
            "read_sql + RFM + segments", lambda: pandas_rfm_segments(crm)
        )
        agree = sql_segments == pandas_segments
        print("results:")
        print(f"  segments (SQL)     {dict(sorted(sql_segments.items()))}")
        print(f"  tiers              {[(t.tier, t.customers) for t in tier_rows]}")
        print(f"  churn flagged      {len(flagged):,}")
        print(f"  SQL and pandas segment counts agree: {agree}")
        print("summary:")
        print(f"  SQL RFM                 {t_rfm:9.2f} s")
        print(f"  SQL RFM + tiers + churn {t_rfm + t_tiers + t_churn:9.2f} s")
        print(f"  pandas RFM              {t_pandas:9.2f} s")
        print(f"  ratio pandas / SQL (RFM)  {t_pandas / t_rfm:6.2f}x")
        print(f"  python peak: SQL RFM {peak_sql / 2**20:.1f} MiB", end="")
        print(f", pandas {peak_pandas / 2**20:.1f} MiB")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mib = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
        print(f"  process peak RSS (ru_maxrss) {rss_mib:.1f} MiB")
        return 0 if agree else 1
    finally:
        drop()


if __name__ == "__main__":
    raise SystemExit(main())
