"""Concurrent redemptions against one balance: threads and processes, on PostgreSQL.

Several processes (spawned, each with its own CRM and connection pool) and
several threads redeem concurrently from one member, all of them reusing
the same idempotency keys. The ledger must never overdraw, apply each key
once, and stay equal to the sum of the lots.
"""

from __future__ import annotations

import multiprocessing
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import crmcore_loyalty.plugin
import sqlalchemy as sa
from crmcore_loyalty import service
from crmcore_loyalty.tables import ledger_table, lots_table

from crmcore import CRM, Config
from crmcore.testing import FrozenClock

sys.path.insert(0, str(Path(__file__).parent))  # spawned children import the worker module

import loyalty_stress_worker

from .conftest import PROGRAMME

PROCESSES = 3
THREADS = 3


def test_concurrent_redemptions_never_overdraw_nor_double_apply(
    postgres_url: str, clock: FrozenClock
) -> None:
    """Concurrent redemptions never overdraw nor double apply."""
    crm = CRM.open(
        Config(database_url=postgres_url, plugin_sections={"loyalty": PROGRAMME}),
        plugins=[crmcore_loyalty.plugin],
        discover=False,
        upgrade=True,
        clock=clock,
    )
    try:
        cid = crm.customers.create({"name": "Contended"}).id
        assert cid is not None
        service.enroll(crm, cid)
        for lot in range(10):  # ten lots of 6: FIFO crosses lot boundaries
            service.earn(crm, cid, 6, idempotency_key=f"seed-{lot}")
        initial = 60
        requests = [(f"r{i}", 1 + i % 9) for i in range(20)]  # 20 keys, 92 points wanted
        wanted = dict(requests)
        assert sum(wanted.values()) > initial  # some must be refused
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(PROCESSES) as pool:
            pending = pool.map_async(
                loyalty_stress_worker.process_worker,
                [(postgres_url, PROGRAMME, cid, requests, seed) for seed in range(PROCESSES)],
            )

            def thread_worker(seed: int) -> list[str]:
                shuffled = list(requests)
                random.Random(100 + seed).shuffle(shuffled)
                return loyalty_stress_worker.attempt_all(crm, cid, shuffled)

            with ThreadPoolExecutor(THREADS) as threads:
                thread_outcomes = list(threads.map(thread_worker, range(THREADS)))
            process_outcomes = pending.get(timeout=120)
        outcomes = [o for run in [*thread_outcomes, *process_outcomes] for o in run]
        assert len(outcomes) == len(requests) * (PROCESSES + THREADS)
        applied = [o.split(":")[0] for o in outcomes if o.endswith(":applied")]
        assert len(applied) == len(set(applied))  # each key applied by exactly one worker
        assert not [o for o in outcomes if o.endswith(":conflict")]

        ledger = ledger_table(crm.metadata)
        lots = lots_table(crm.metadata)
        with crm.reading() as uow:
            rows = uow.connection.execute(
                sa.select(ledger.c.idempotency_key, ledger.c.points).where(
                    ledger.c.kind == "redeem"
                )
            ).all()
            total = uow.connection.execute(
                sa.select(sa.func.sum(ledger.c.points)).where(ledger.c.customer_id == cid)
            ).scalar_one()
            remaining = uow.connection.execute(
                sa.select(sa.func.sum(lots.c.remaining)).where(lots.c.customer_id == cid)
            ).scalar_one()
            negative_lots = uow.connection.execute(
                sa.select(sa.func.count()).where(lots.c.remaining < 0)
            ).scalar_one()
        keys = [k for k, _ in rows]
        assert len(keys) == len(set(keys))
        assert sorted(keys) == sorted(applied)
        assert all(points == -wanted[key] for key, points in rows)
        redeemed = -sum(points for _, points in rows)
        assert total == initial - redeemed
        assert total >= 0
        assert remaining == total
        assert negative_lots == 0
        assert service.balance(crm, cid).points == total
        # A key applied once is replayed, never refused, by everyone else; a refused key
        # asked for more than what is left (the balance only went down).
        refused = {o.split(":")[0] for o in outcomes if o.endswith(":refused")}
        assert not refused & set(applied)
        assert refused and all(wanted[key] > total for key in refused)
        replays = sum(1 for o in outcomes if o.endswith(":replayed"))
        assert replays == len(applied) * (PROCESSES + THREADS - 1)
    finally:
        crm.close()
