"""Campaign results over many recipients: the SQL aggregates against fetching rows into Python.

    .venv/bin/python benchmarks/bench_campaigns.py [--backend postgresql|sqlite]
        [--recipients 200000] [--postgres URL]

Generates, inside the database (PostgreSQL: ``generate_series``; SQLite: a
recursive CTE), ``--recipients`` customers (default 200,000) and about 0.6
purchases per customer spread over the 40 days after the launch (10 % of them
in USD), then launches a campaign over every customer with two variants, a
10 % control group and ``send=False`` (the assignment only: messaging's
per-message enqueue is not measured here). Then it times

* the launch (audience resolved, assignment, recipients stored),
* ``campaign_results`` (one SQL query of per-group aggregates, statistics in Python),
* each timed untraced, then run again under tracemalloc for its peak of Python
  allocations;
* the baseline measured in the same run: every recipient and every purchase of
  the window fetched into Python and aggregated there (plain dictionaries: members,
  conversions, revenue and the squared deviations the revenue interval needs),

and, with ``--send N`` (default 5,000), a second campaign over N customers
launched with ``send=True``: every treated member's step-1 message enqueued
through messaging (template rendered, consent and caps checked) into a folder
channel, timed as messages per second, then delivered with ``send_pending``.

It checks that both give the same members, conversions, revenue and squared deviations
per group, and
prints the times and the ratio baseline / SQL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import crmcore_campaigns.plugin
import crmcore_messaging.plugin
import sqlalchemy as sa
from crmcore_campaigns import campaigns, demo, launching, results
from scratch import open_scratch

from crmcore import CRM

T = TypeVar("T")
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
POSTGRES = os.environ.get(
    "CRM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _ts(pg: bool, seconds_after: str) -> str:
    if pg:
        return f"TIMESTAMPTZ '{NOW:%Y-%m-%d %H:%M:%S}+00' + ({seconds_after}) * interval '1 second'"
    return (
        f"strftime('%Y-%m-%d %H:%M:%S', '{NOW:%Y-%m-%d %H:%M:%S}', '+' || ({seconds_after}) || "
        "' seconds') || '.000000'"
    )


def generate(crm: CRM, n: int) -> None:
    """Customers and purchases, in the database (no Python loop per row)."""
    with crm.engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.execute(sa.text("SELECT setseed(0.42)"))
            seq = "generate_series(1, :c) AS x"
            rnd = "floor(random() * {n})::bigint"
        else:
            seq = (
                "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :c) "
                "SELECT x FROM s)"
            )
            rnd = "(abs(random()) % {n})"
        created = (
            f"TIMESTAMPTZ '{NOW:%Y-%m-%d %H:%M:%S}+00'"
            if pg
            else f"'{NOW:%Y-%m-%d %H:%M:%S}.000000'"
        )
        conn.execute(
            sa.text(
                f"""
                INSERT INTO crm_customers (id, kind, name, name_norm, email, email_norm, stage,
                  attributes, consent_marketing_email, consent_marketing_sms,
                  consent_marketing_phone, consent_surveys, consent_data_processing, created_at,
                  updated_at)
                SELECT x, 'person', 'C ' || x, 'c ' || x, 'c' || x || '@example.com',
                  'c' || x || '@example.com', 'active', '{{}}',
                  true, false, false, false, true, {created}, {created}
                FROM {seq}
                """
            ),
            {"c": n},
        )
        for part in range(3):  # about 0.6 purchases per customer: 3 passes of 20 %
            conn.execute(
                sa.text(
                    f"""
                    INSERT INTO crm_interactions (customer_id, kind, channel, direction,
                      occurred_at, amount, currency, items, payload)
                    SELECT x, 'purchase', 'web', 'inbound', {_ts(pg, rnd.format(n=40 * 86400))},
                      (1 + {rnd.format(n=50000)}) * 100,
                      CASE WHEN {rnd.format(n=10)} = 0 THEN 'USD' ELSE 'EUR' END, '[]', '{{}}'
                    FROM {seq} WHERE {rnd.format(n=5)} = {part}
                    """
                ),
                {"c": n},
            )
        if pg:
            conn.execute(sa.text("ANALYZE"))


def baseline(crm: CRM, campaign: dict[str, Any]) -> dict[str, tuple[int, int, Decimal, float]]:
    """Members, conversions, revenue and its squared deviations per group, in Python."""
    recipients = crm.metadata.tables["campaigns_recipients"]
    interactions = crm.metadata.tables["crm_interactions"]
    start = campaign["launched_at"]
    end = start + timedelta(days=int(campaign["attribution_days"]))
    with crm.reading() as uow:
        group = {
            int(r.customer_id): r.variant or "control"
            for r in uow.connection.execute(
                sa.select(recipients.c.customer_id, recipients.c.variant).where(
                    recipients.c.campaign_id == campaign["id"]
                )
            )
        }
        converted: set[int] = set()
        revenue: dict[int, Decimal] = defaultdict(Decimal)
        for r in uow.connection.execute(
            sa.select(
                interactions.c.customer_id, interactions.c.amount, interactions.c.currency
            ).where(
                interactions.c.kind == "purchase",
                interactions.c.occurred_at >= start,
                interactions.c.occurred_at < end,
            )
        ):
            if int(r.customer_id) in group:
                converted.add(int(r.customer_id))
                if r.currency == campaign["currency"]:
                    revenue[int(r.customer_id)] += r.amount
    out: dict[str, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0), []])
    for customer_id, name in group.items():
        row = out[name]
        row[0] += 1
        row[1] += customer_id in converted
        row[2] += revenue.get(customer_id, Decimal(0))
        row[3].append(float(revenue.get(customer_id, 0)))
    figures = {}
    for name, (n, conversions, total, values) in out.items():
        mean = sum(values) / n
        figures[name] = (n, conversions, total, sum((v - mean) ** 2 for v in values))
    return figures


def measured(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its seconds, and tracemalloc's peak (MiB) in a second, traced run.

    Timed untraced: tracing slows Python code and would flatter the SQL.
    """
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, seconds, peak / 2**20


def sent_campaign(crm: CRM, n: int) -> None:
    """Launch a campaign over ``n`` customers with send=True; print enqueue and delivery rates."""
    from crmcore_messaging import delivery
    from crmcore_messaging.templates import save_template

    save_template(
        crm,
        "bench",
        locale="en",
        text="Hello {{ customer.name }}: {{ link('https://x.example/') }}",
    )
    draft = campaigns.create_campaign(
        crm,
        {"name": "sent", "audience": {"customers": list(range(1, n + 1))}, "template": "bench"},
    )
    started = time.perf_counter()
    summary = launching.launch_campaign(crm, draft["id"])
    launch = time.perf_counter() - started
    queued = summary["messages"].get("queued", 0)
    started = time.perf_counter()
    report = delivery.send_pending(crm)
    send = time.perf_counter() - started
    print(
        f"  launch with send=True, {n:,} members: {launch:6.2f} s, {queued:,} messages enqueued "
        f"({queued / launch:,.0f}/s, rendering and rules included)"
    )
    print(f"  send_pending to a folder channel:   {send:6.2f} s, {report.sent:,} sent")


def main(argv: list[str] | None = None) -> int:
    """Generate, launch, time the results both ways, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $CRM_BENCH_POSTGRES_URL)")
    parser.add_argument("--send", type=int, default=5_000, help="audience of the sent campaign")
    args = parser.parse_args(argv)
    outbox = Path(tempfile.mkdtemp(prefix="bench-campaigns-outbox-"))
    crm, drop = open_scratch(
        args.backend,
        args.postgres or POSTGRES,
        [crmcore_messaging.plugin, crmcore_campaigns.plugin],
        lambda: NOW,
        "campaigns",
    )
    try:
        started = time.perf_counter()
        generate(crm, args.recipients)
        print(
            f"campaigns benchmark on {args.backend}: {args.recipients:,} customers generated "
            f"in {time.perf_counter() - started:.1f} s"
        )
        from crmcore_messaging.templates import save_template

        for name in ("a", "b"):
            save_template(crm, name, locale="en", text=f"Offer {name}")
        draft = campaigns.create_campaign(
            crm,
            {
                "name": "bench",
                "audience": {"filter": ""},
                "variants": [{"name": "A", "template": "a"}, {"name": "B", "template": "b"}],
                "seed": 1,
            },
        )
        started = time.perf_counter()
        launching.launch_campaign(crm, draft["id"], send=False)
        launch = time.perf_counter() - started
        campaign = campaigns.get_campaign(crm, draft["id"])
        found, in_sql, sql_peak = measured(lambda: results.campaign_results(crm, draft["id"]))
        python, in_python, python_peak = measured(lambda: baseline(crm, campaign))
        sql = {"control": found["control"]} | {v["variant"]: v for v in found["variants"]}
        for name, (n, conversions, revenue, _ss) in python.items():
            got = sql[name]
            assert (got["n"], got["conversions"]) == (n, conversions), name
            assert Decimal(got["revenue"]) == revenue, name
        with crm.reading() as uow:
            rows = results.group_aggregates(uow, campaign)
        for row in rows:
            expected = python[row["variant"] or "control"][3]
            assert abs(row["ss"] - expected) <= 1e-9 * max(1.0, expected), row
        up = found["uplift"]
        print(f"  launch (resolve, assign, store)   {launch:8.2f} s")
        print(
            f"  results, SQL aggregates           {in_sql:8.2f} s  python peak {sql_peak:8.1f} MiB"
        )
        print(
            f"  baseline, rows into Python        {in_python:8.2f} s  python peak "
            f"{python_peak:8.1f} MiB"
        )
        print(
            f"  ratio baseline / SQL              {in_python / in_sql:8.1f} x time, "
            f"{python_peak / max(sql_peak, 1e-9):.0f} x memory (same figures)"
        )
        print(
            f"  treated {found['treated']['n']:,}, control {found['control']['n']:,}, "
            f"uplift {up['estimate']:.4f} (95% CI {up['low']:.4f} to {up['high']:.4f})"
        )
        if args.send:
            view = demo.demo_view(crm, outbox, lambda: NOW)  # messaging with a folder channel
            try:
                sent_campaign(view, args.send)
            finally:
                view.close()
    finally:
        drop()
        shutil.rmtree(outbox, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
