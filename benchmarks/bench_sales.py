"""Sales analytics in SQL against a pandas baseline, on the same generated data.

    .venv/bin/python benchmarks/bench_sales.py [--backend postgresql|sqlite]
        [--deals 1000000] [--postgres URL]

Generates, inside the database (PostgreSQL: ``generate_series``; SQLite: a
recursive CTE), ``--deals`` deals (default 1,000,000) with 1 to 9 stage changes
each (about 5 per deal: 5,000,000 for the default size), 30 % won, 30 % lost;
each won deal gets a contract with four quarterly instalments and zero to four
payments. Then, in the same run:

* **SQL** (the plugin's API): the weighted pipeline by month for the next
  year (``forecast.weighted_pipeline``), the funnel over the last two years
  (``funnel.funnel``: reach per stage, median days in stage, win rate, cycle,
  velocity) and the receivables ageing (``receivables.ageing``);
* **pandas** (the baseline): the same rows read with ``pandas.read_sql``, the
  same figures computed in memory (month buckets, furthest stage per deal and
  ``groupby().median()`` of the stays, FIFO settlement with ``cumsum``).

Prints both times per figure, whether SQL and pandas agree, the ratio
pandas / SQL, and peak memory: tracemalloc's peak of Python-side allocations of
each phase and the process's ``ru_maxrss``. pandas comes from the plugin's
``bench`` extra: ``pip install -e 'plugins/sales[bench]'`` (``make bench-sales``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import crmcore_sales.plugin
import sqlalchemy as sa
from crmcore_sales import forecast, funnel, receivables
from crmcore_sales.receivables import BUCKETS
from scratch import open_scratch

from crmcore import CRM

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
TODAY = AS_OF.date()
FORECAST = (TODAY, date(2027, 11, 1))
FUNNEL = (TODAY - timedelta(days=730), TODAY)
STAGES = ("qualification", "needs_analysis", "proposal", "negotiation")
PROBABILITY = {"qualification": 10, "needs_analysis": 25, "proposal": 50, "negotiation": 75}
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


# The plan of each deal: steps (1-9), status, creation, gap between changes, amount, close.
_PLAN_PG = """
CREATE TEMP TABLE bench_plan AS
SELECT x,
  1 + floor(random() * 9)::int AS steps,
  CASE WHEN r < 0.3 THEN 'won' WHEN r < 0.6 THEN 'lost' ELSE 'open' END AS status,
  TIMESTAMPTZ '{as_of}+00' - interval '100 days' - random() * interval '630 days' AS created,
  interval '1 day' * (1 + floor(random() * 10)) AS gap,
  (100 + floor(random() * 100000)::bigint) * 10000 AS amount,
  DATE '{today}' + (floor(random() * 425)::int - 60) AS close
FROM (SELECT x, random() AS r FROM generate_series(1, :n) AS x) AS draws
"""
_PLAN_SQLITE = """
CREATE TEMP TABLE bench_plan AS
WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < :n),
draws AS (SELECT x, abs(random()) % 1000 AS r, abs(random()) % 9 AS s,
                 abs(random()) % (630 * 86400) AS back, abs(random()) % 10 AS g,
                 abs(random()) % 100000 AS a, abs(random()) % 425 AS c FROM seq)
SELECT x, 1 + s AS steps,
  CASE WHEN r < 300 THEN 'won' WHEN r < 600 THEN 'lost' ELSE 'open' END AS status,
  strftime('%Y-%m-%d %H:%M:%S', '{as_of}', '-100 days', '-' || back || ' seconds') AS created,
  1 + g AS gap, (100 + a) * 10000 AS amount,
  date('{today}', (c - 60) || ' days') AS close
FROM draws
"""


def _stage_of(dialect: str) -> str:
    # Row j (1..steps) of a deal: open stages cycle; the last row of a closed deal is its status.
    names = "ARRAY['qualification','needs_analysis','proposal','negotiation']"
    if dialect == "postgresql":
        cycle = f"({names})[1 + ((j - 1) % 4)]"
    else:
        cycle = (
            "CASE (j - 1) % 4 WHEN 0 THEN 'qualification' WHEN 1 THEN 'needs_analysis' "
            "WHEN 2 THEN 'proposal' ELSE 'negotiation' END"
        )
    return f"CASE WHEN j = p.steps AND p.status <> 'open' THEN p.status ELSE {cycle} END"


def generate(crm: CRM, deals: int) -> None:
    """Customers, deals, stage history, contracts, instalments and payments, in the database."""
    customers = max(1, deals // 10)
    as_of, today = AS_OF.strftime("%Y-%m-%d %H:%M:%S"), TODAY.isoformat()
    with crm.engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.execute(sa.text("SELECT setseed(0.42)"))
            seq = "generate_series(1, :c) AS x"
            at_row = "p.created + (j - 1) * p.gap"
            closed = "p.created + (p.steps - 1) * p.gap"
            numbers = "generate_series(1, 9) AS j"
            flags = "false, false, false, false, true"
            ts = "TIMESTAMPTZ '2024-01-01 00:00:00+00'"
        else:
            seq = (
                "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :c) "
                "SELECT x FROM s)"
            )
            shift = "strftime('%Y-%m-%d %H:%M:%S', p.created, '+' || ({n}) || ' days') || '.000000'"
            at_row = shift.format(n="(j - 1) * p.gap")
            closed = shift.format(n="(p.steps - 1) * p.gap")
            numbers = (
                "(WITH RECURSIVE n(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM n WHERE j < 9) "
                "SELECT j FROM n)"
            )
            flags = "0, 0, 0, 0, 1"
            ts = "'2024-01-01 00:00:00.000000'"
        conn.execute(
            sa.text(
                f"""
                INSERT INTO crm_customers (id, kind, name, name_norm, stage, attributes,
                  consent_marketing_email, consent_marketing_sms, consent_marketing_phone,
                  consent_surveys, consent_data_processing, created_at, updated_at)
                SELECT x, 'organization', 'Org ' || x, 'org ' || x, 'active', '{{}}', {flags},
                  {ts}, {ts}
                FROM {seq}
                """
            ),
            {"c": customers},
        )
        plan = _PLAN_PG if pg else _PLAN_SQLITE
        conn.execute(sa.text(plan.format(as_of=as_of, today=today)), {"n": deals})
        created = "p.created" if pg else "p.created || '.000000'"
        last_stage = (
            _stage_of(conn.dialect.name)
            .replace("j = p.steps", "p.steps = p.steps")
            .replace("(j - 1)", "(p.steps - 1)")
        )
        probability = (
            "CASE WHEN p.status = 'won' THEN 100 WHEN p.status = 'lost' THEN 0 ELSE "
            "CASE (p.steps - 1) % 4 WHEN 0 THEN 10 WHEN 1 THEN 25 WHEN 2 THEN 50 ELSE 75 END END"
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO sales_deals (id, customer_id, title, pipeline, stage, status,
                  probability, category, amount, currency, expected_close, owner, team,
                  created_at, updated_at, stage_changed_at, closed_at, reopen_count)
                SELECT p.x, 1 + (p.x % :c), 'Deal ' || p.x, 'new_business', {last_stage},
                  p.status, {probability}, 'pipeline', p.amount, 'EUR', p.close,
                  'owner' || (p.x % 50), 'team' || (p.x % 5), {created}, {closed}, {closed},
                  CASE WHEN p.status = 'open' THEN NULL ELSE {closed} END, 0
                FROM bench_plan AS p
                """
            ),
            {"c": customers},
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO sales_deal_history (deal_id, field, old, new, at, actor)
                SELECT p.x, 'stage', NULL, {_stage_of(conn.dialect.name)}, {at_row}, 'bench'
                FROM bench_plan AS p JOIN {numbers} ON j <= p.steps
                ORDER BY p.x, j
                """
            )
        )
        add_days = "(d.start + {n})" if pg else "date(d.start, '+' || ({n}) || ' days')"
        start = (
            "CAST(p.created + (p.steps - 1) * p.gap AS DATE)"
            if pg
            else ("date(p.created, '+' || ((p.steps - 1) * p.gap) || ' days')")
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO sales_contracts (id, deal_id, customer_id, value, currency,
                  start_date, end_date, renewal_date, payment_terms_days, owner, created_at)
                SELECT p.x, p.x, 1 + (p.x % :c), p.amount, 'EUR', {start},
                  {add_days.replace("d.start", start).format(n=365)},
                  {add_days.replace("d.start", start).format(n=365)}, 30,
                  'owner' || (p.x % 50), {closed}
                FROM bench_plan AS p WHERE p.status = 'won'
                """
            ),
            {"c": customers},
        )
        quarter = add_days.replace("d.start", "c.start_date")
        conn.execute(
            sa.text(
                f"""
                INSERT INTO sales_instalments (contract_id, customer_id, seq, due_date, amount)
                SELECT c.id, c.customer_id, q.j, {quarter.format(n="30 + 91 * (q.j - 1)")},
                  c.value / 4
                FROM sales_contracts AS c
                JOIN (SELECT j FROM {numbers}) AS q ON q.j <= 4
                """
            )
        )
        # 0 to 4 payments per contract (id % 5): its first instalments, each paid when due.
        conn.execute(
            sa.text(
                f"""
                INSERT INTO sales_payments (contract_id, customer_id, amount, currency,
                  received_on, reference, recorded_at)
                SELECT i.contract_id, i.customer_id, i.amount, 'EUR', i.due_date,
                  'bench-' || i.contract_id || '-' || i.seq, {ts}
                FROM sales_instalments AS i
                WHERE i.seq <= i.contract_id % 5 AND i.due_date <= :today
                """
            ),
            {"today": TODAY if pg else today},
        )
        conn.execute(sa.text("DROP TABLE bench_plan"))
    with crm.engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


# --- SQL: the plugin's API -------------------------------------------------------------


def sql_forecast(crm: CRM) -> dict[str, int]:
    """Weighted pipeline by month (in ten-thousandths x percent / 100, exact)."""
    rows = forecast.weighted_pipeline(crm, start=FORECAST[0], end=FORECAST[1])
    return {r["period"]: int(r["weighted"] * 10000) for r in rows}


def sql_funnel(crm: CRM) -> dict[str, Any]:
    """Reach and median days per stage, win rate."""
    report = funnel.funnel(crm, start=FUNNEL[0], end=FUNNEL[1])
    return {
        "reached": [s["reached"] for s in report["stages"]] + [report["won_from_cohort"]],
        "median": [s["median_days_in_stage"] for s in report["stages"]],
        "win_rate": report["win_rate"],
        "median_cycle": report["median_cycle_days"],
    }


def sql_ageing(crm: CRM) -> dict[str, int]:
    """Outstanding per bucket (ten-thousandths)."""
    figures = receivables.ageing(crm, as_of=TODAY)["currencies"].get("EUR", {})
    return {b: int(Decimal(figures.get(b, 0)) * 10000) for b in BUCKETS}


# --- pandas: the same figures from the same rows ---------------------------------------


def pandas_forecast(crm: CRM) -> dict[str, int]:
    """Open EUR deals closing in the year ahead, by month: sum(amount x probability) / 100."""
    import pandas as pd

    with crm.engine.connect() as conn:
        df = pd.read_sql(
            "SELECT status, currency, amount, probability, expected_close FROM sales_deals", conn
        )
    close = pd.to_datetime(df["expected_close"])
    keep = (
        (df["status"] == "open")
        & (df["currency"] == "EUR")
        & (close >= pd.Timestamp(FORECAST[0]))
        & (close < pd.Timestamp(FORECAST[1]))
    )
    part = df.loc[keep]
    month = close[keep].dt.strftime("%Y-%m")
    weighted = (
        (part["amount"].astype("int64") * part["probability"].astype("int64")).groupby(month).sum()
    )
    return {str(k): int(v) // 100 for k, v in weighted.items()}


def pandas_funnel(crm: CRM) -> dict[str, Any]:
    """Furthest stage per cohort deal, median of the ended stays per stage, win rate."""
    import pandas as pd

    lo = pd.Timestamp(FUNNEL[0], tz="UTC")
    hi = pd.Timestamp(FUNNEL[1], tz="UTC")
    with crm.engine.connect() as conn:
        deals = pd.read_sql(
            "SELECT id, status, created_at, closed_at FROM sales_deals WHERE pipeline = "
            "'new_business'",
            conn,
        )
        history = pd.read_sql(
            "SELECT id, deal_id, new, at FROM sales_deal_history WHERE field = 'stage'", conn
        )
    created = pd.to_datetime(deals["created_at"], utc=True)
    cohort = deals.loc[(created >= lo) & (created < hi), "id"]
    stays = history.loc[history["deal_id"].isin(cohort)].sort_values(["deal_id", "id"])
    order = {s: n for n, s in enumerate(STAGES)} | {"won": len(STAGES), "lost": -1}
    top = stays["new"].map(order).groupby(stays["deal_id"]).max()
    reached = [int((top >= n).sum()) for n in range(len(STAGES) + 1)]
    at = pd.to_datetime(stays["at"], utc=True)
    left = at.groupby(stays["deal_id"]).shift(-1)
    days = (left - at).dt.total_seconds() / 86400
    ended = stays.assign(days=days).dropna(subset=["days"])
    medians = ended.loc[ended["new"].isin(STAGES)].groupby("new")["days"].median()
    closed_at = pd.to_datetime(deals["closed_at"], utc=True)
    closed = deals.loc[(closed_at >= lo) & (closed_at < hi)]
    won, lost = int((closed["status"] == "won").sum()), int((closed["status"] == "lost").sum())
    won_rows = (closed_at >= lo) & (closed_at < hi) & (deals["status"] == "won")
    cycle = ((closed_at - created)[won_rows].dt.total_seconds() / 86400).median()
    return {
        "reached": reached,
        "median": [None if s not in medians else round(float(medians[s]), 6) for s in STAGES],
        "win_rate": None if won + lost == 0 else round(won / (won + lost), 4),
        "median_cycle": None if pd.isna(cycle) else round(float(cycle), 6),
    }


def pandas_ageing(crm: CRM) -> dict[str, int]:
    """FIFO settlement per contract with cumsum, then the buckets by days past due."""
    import pandas as pd

    with crm.engine.connect() as conn:
        due = pd.read_sql("SELECT contract_id, seq, due_date, amount FROM sales_instalments", conn)
        day = TODAY if conn.dialect.name == "postgresql" else TODAY.isoformat()
        paid = pd.read_sql(
            sa.text("SELECT contract_id, amount FROM sales_payments WHERE received_on <= :d"),
            conn,
            params={"d": day},
        )
    due["due_date"] = pd.to_datetime(due["due_date"])
    due = due.sort_values(["contract_id", "due_date", "seq"])
    due["cumulative"] = due.groupby("contract_id")["amount"].cumsum()
    totals = paid.groupby("contract_id")["amount"].sum()
    due["paid"] = due["contract_id"].map(totals).fillna(0).astype("int64")
    outstanding = (due["cumulative"] - due["paid"]).clip(lower=0)
    due["outstanding"] = outstanding.where(outstanding < due["amount"], due["amount"])
    late = (pd.Timestamp(TODAY) - due["due_date"]).dt.days
    bucket = pd.cut(late, bins=[-(10**9), 0, 30, 60, 90, 10**9], labels=list(BUCKETS), right=True)
    sums = due.loc[due["outstanding"] > 0].groupby(bucket, observed=False)["outstanding"].sum()
    return {b: int(sums.get(b, 0)) for b in BUCKETS}


def main(argv: list[str] | None = None) -> int:
    """Generate, compute in SQL and in pandas, compare and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $CRM_BENCH_POSTGRES_URL)")
    args = parser.parse_args(argv)
    import pandas  # noqa: F401  (imported before timing: its import is not the analysis)

    crm, drop = open_scratch(
        args.backend, args.postgres or POSTGRES, [crmcore_sales.plugin], lambda: AS_OF, "sales"
    )
    try:
        start = time.perf_counter()
        generate(crm, args.deals)
        with crm.engine.connect() as conn:
            changes = conn.execute(sa.text("SELECT count(*) FROM sales_deal_history")).scalar()
            instalments = conn.execute(sa.text("SELECT count(*) FROM sales_instalments")).scalar()
        print(
            f"sales benchmark: {args.deals:,} deals, {changes:,} stage changes, "
            f"{instalments:,} instalments on {args.backend}, as of {TODAY}"
        )
        print(f"  {'generated in the database':<44} {time.perf_counter() - start:9.2f} s")
        print("SQL (crmcore-sales, in the database):")
        results: dict[str, tuple[float, Any, int, float, Any, int]] = {}
        sql = {"forecast": sql_forecast, "funnel": sql_funnel, "ageing": sql_ageing}
        frames = {"forecast": pandas_forecast, "funnel": pandas_funnel, "ageing": pandas_ageing}
        measured = {name: timed(name, lambda f=f: f(crm)) for name, f in sql.items()}
        print("pandas (read_sql of the rows, the same figures in memory):")
        for name, f in frames.items():
            t_pd, r_pd, p_pd = timed(name, lambda f=f: f(crm))
            results[name] = (*measured[name], t_pd, r_pd, p_pd)
        print("summary:")
        agree_all = True
        for name, (t_sql, r_sql, p_sql, t_pd, r_pd, p_pd) in results.items():
            agree = r_sql == r_pd
            agree_all &= agree
            print(
                f"  {name:<9} SQL {t_sql:8.2f} s  pandas {t_pd:8.2f} s  ratio pandas/SQL "
                f"{t_pd / t_sql:6.2f}x  agree {agree}  python peak SQL {p_sql / 2**20:.1f} MiB, "
                f"pandas {p_pd / 2**20:.1f} MiB"
            )
            if not agree:
                print(f"    SQL    {r_sql}\n    pandas {r_pd}")
        total_sql = sum(r[0] for r in results.values())
        total_pd = sum(r[3] for r in results.values())
        ratio = total_pd / total_sql
        print(f"  all three SQL {total_sql:.2f} s, pandas {total_pd:.2f} s, ratio {ratio:.2f}x")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mib = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
        print(f"  process peak RSS (ru_maxrss) {rss_mib:.1f} MiB")
        return 0 if agree_all else 1
    finally:
        drop()


if __name__ == "__main__":
    raise SystemExit(main())
