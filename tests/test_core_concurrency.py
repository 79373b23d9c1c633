"""Several processes writing at once on PostgreSQL lose nothing and create no duplicates."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from crmcore import CRM, ConflictError
from crmcore.storage.tables import customers, interactions, lifecycle_events

WORKERS = 4
EMAILS = 40  # every worker tries to register every email: only one may win each


def _worker(url: str, worker: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        _work(url, worker, results)
    except BaseException as exc:  # report, so the test fails at once with the reason
        results.put((worker, f"{type(exc).__name__}: {exc}", 0, 0))
        raise


def _work(url: str, worker: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    crm = CRM.open(url, discover=False)
    won: list[int] = []
    conflicts = 0
    recorded = 0
    try:
        for n in range(EMAILS):
            index = (n + worker * 7) % EMAILS  # different order per worker, same set
            try:
                customer = crm.customers.create(
                    {"name": f"w{worker}-{index}", "email": f"shared{index}@race.example"}
                )
            except ConflictError as exc:
                assert exc.existing_id is not None, str(exc)
                conflicts += 1
                continue
            assert customer.id is not None
            won.append(customer.id)
        # Everyone records a first purchase for the same customers at once.
        with crm.engine.connect() as conn:
            ids = sorted(conn.execute(select(customers.c.id)).scalars())
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=worker)
        batch = [
            {
                "customer_id": cid,
                "kind": "purchase",
                "amount": "1",
                "currency": "EUR",
                "occurred_at": at.isoformat(),
            }
            for cid in ids
        ]
        recorded = len(crm.interactions.record_many(batch, batch_size=7))
    finally:
        crm.close()
    results.put((worker, won, conflicts, recorded))


def test_concurrent_writers_lose_nothing_and_make_no_duplicates(postgres_url: str) -> None:
    CRM.open(postgres_url, discover=False, upgrade=True).close()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(postgres_url, w, results)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    failures = [won for _, won, _, _ in outcomes if isinstance(won, str)]
    assert not failures, failures
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [cid for _, won, _, _ in outcomes for cid in won]
    assert len(winners) == EMAILS == len(set(winners))
    assert sum(conflicts for *_, conflicts, _ in outcomes) == EMAILS * (WORKERS - 1)
    crm = CRM.open(postgres_url, discover=False)
    with crm.engine.connect() as conn:
        emails = conn.execute(select(customers.c.email_norm)).scalars().all()
        assert sorted(emails) == sorted(f"shared{i}@race.example" for i in range(EMAILS))
        stored = conn.execute(select(func.count()).select_from(interactions)).scalar_one()
        assert stored == sum(r for *_, r in outcomes) == WORKERS * EMAILS
        moves = conn.execute(
            select(func.count())
            .select_from(lifecycle_events)
            .where(lifecycle_events.c.reason == "first purchase")
        ).scalar_one()
    assert moves == EMAILS  # exactly one prospect -> new move per customer
    assert {c.stage.value for c in crm.customers.iter_all()} == {"new"}
    crm.close()
