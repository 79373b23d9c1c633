"""No message is sent twice, nor to a customer without consent, with concurrent senders.

* Four spawned processes (each with its own CRM and connection pool) drain
  one queue of 300 messages to the aiosmtpd server at once, on SQLite (a
  file) and PostgreSQL: the SMTP handler receives every Message-ID exactly
  once and every row ends ``sent``, claimed by one worker.
* A hypothesis property: consent flags flip at random between enqueue and
  rounds of concurrent senders (threads); no message reaches a customer whose
  consent was off when it was claimed, none arrives twice, and nothing is
  left pending once the consent allows it.
"""

from __future__ import annotations

import multiprocessing
import queue as queues
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crmcore_messaging import delivery, queue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM

from .conftest import SMTPServer, add_customer, stored_messages

sys.path.insert(0, str(Path(__file__).parent))  # spawned children import the worker module

import messaging_send_worker

PROCESSES = 4
MESSAGES = 300


def test_processes_send_each_message_exactly_once(
    db_url: str, open_dcrm: Callable[..., CRM], smtp_server: SMTPServer
) -> None:
    crm = open_dcrm(batch_size=7)
    customers = crm.customers.create_many(
        [
            {"name": f"C{n}", "email": f"c{n}@example.com", "consent": {"marketing_email": True}}
            for n in range(MESSAGES // 2)
        ]
    )
    with crm.unit_of_work() as uow:
        for n in range(MESSAGES):
            customer = customers[n % len(customers)]
            assert customer.id is not None
            queue.enqueue(uow, customer_id=customer.id, subject=f"#{n}", text=f"message {n}")
    section = crm.plugin_config("messaging")
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    workers = [
        spawn.Process(
            target=messaging_send_worker.drain,
            args=(db_url, section, f"proc-{i}", barrier, results),
        )
        for i in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    reports = {}
    try:
        for _ in workers:
            worker, report = results.get(timeout=240)
            reports[worker] = report
    except queues.Empty:
        raise AssertionError(f"a sender did not finish; reports: {reports}") from None
    finally:
        for process in workers:
            process.join(timeout=60)
    assert all("error" not in r for r in reports.values()), reports
    assert all(p.exitcode == 0 for p in workers)
    received = Counter(smtp_server.sink.ids())
    rows = stored_messages(crm)
    assert len(rows) == MESSAGES
    assert {r.state for r in rows} == {"sent"}
    assert received == Counter(f"<{r.token}@example.com>" for r in rows)  # each exactly once
    assert max(received.values()) == 1
    assert sum(r["sent"] for r in reports.values()) == MESSAGES
    by_worker = Counter(r.claimed_by for r in rows)
    assert sum(by_worker.values()) == MESSAGES
    assert len(by_worker) >= 2, by_worker  # they did drain concurrently
    interactions = crm.interactions.list(limit=1000).items
    assert sorted(i.external_id for i in interactions) == sorted(r.token for r in rows)


FLAGS = st.lists(st.booleans(), min_size=4, max_size=4)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    initial=FLAGS,
    flips=st.lists(FLAGS, min_size=1, max_size=3),
    per_customer=st.integers(min_value=1, max_value=4),
)
def test_property_no_message_without_consent_and_none_twice(
    dcrm: CRM,
    smtp_server: SMTPServer,
    initial: list[bool],
    flips: list[list[bool]],
    per_customer: int,
) -> None:
    run = len(stored_messages(dcrm))  # earlier examples' rows stay: only this example's are checked
    ids = [
        add_customer(
            dcrm, f"P{run}x{n}", consent={"marketing_email": flag, "data_processing": True}
        )
        for n, flag in enumerate(initial)
    ]
    seen_sent: set[int] = set()
    consent_then = dict(zip(ids, initial, strict=True))
    for flags in flips:
        with dcrm.unit_of_work() as uow:  # queued under the consent of the moment ...
            queued = [
                (customer_id, queue.enqueue(uow, customer_id=customer_id, text=f"m{n}"))
                for customer_id in ids
                for n in range(per_customer)
            ]
        for customer_id, flag in zip(ids, flags, strict=True):  # ... which then changes
            dcrm.customers.update(customer_id, {"consent": {"marketing_email": flag}})
        consent_now = dict(zip(ids, flags, strict=True))
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda i: delivery.send_pending(dcrm, worker=f"t{i}"), range(3)))
        rows = {r.id: r for r in stored_messages(dcrm) if r.customer_id in ids}
        newly = [r for r in rows.values() if r.state == "sent" and r.id not in seen_sent]
        assert all(consent_now[r.customer_id] for r in newly)  # consent at claim time was on
        for customer_id, answer in queued:  # exactly: sent when consent was on at both times
            allowed = consent_then[customer_id] and consent_now[customer_id]
            outcome = ("sent", None) if allowed else ("refused", "no_consent")
            assert (rows[answer.message_id].state, rows[answer.message_id].reason) == outcome
        assert [r for r in rows.values() if r.state not in ("sent", "refused")] == []
        seen_sent |= {r.id for r in newly}
        consent_then = consent_now
    received = Counter(smtp_server.sink.ids())
    assert max(received.values(), default=1) == 1
    tokens = {f"<{r.token}@example.com>" for r in stored_messages(dcrm) if r.id in seen_sent}
    assert tokens <= set(received)  # what the database calls sent did arrive
