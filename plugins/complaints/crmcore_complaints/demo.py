"""The plugin's part of ``crm demo``: complaints with realistic timings over the demo customers.

The demo CRM's clock stands at ``crmcore.io.demo.DEMO_NOW``; the history is
written through the service with ``at=`` / ``opened_at`` (the backfill path),
in time order, then swept at the clock's time.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from crmcore import CRM, Period
from crmcore_complaints.service import ComplaintService
from crmcore_complaints.settings import settings_of
from crmcore_complaints.workflow import Severity

AGENTS = ("ana", "ben", "chen", "dara")
_CATEGORY_WEIGHTS = {
    "delivery/late": 9,
    "delivery/damaged": 4,
    "product/defect": 6,
    "product/quality": 3,
    "billing/overcharge": 4,
    "service/waiting_time": 3,
    "service/staff": 2,
    "other": 1,
}
_ROOT_CAUSES = {
    "delivery": ["logistics", "supplier", "process"],
    "product": ["product", "supplier"],
    "billing": ["system", "process"],
    "service": ["people", "process", "communication"],
    "other": ["unknown", "communication"],
}
_SEVERITIES = [Severity.LOW] * 3 + [Severity.MEDIUM] * 5 + [Severity.HIGH] * 2 + [Severity.CRITICAL]


def load(crm: CRM, seed: int, now: datetime, share: float = 0.12) -> int:
    """Open and handle complaints for about ``share`` of the demo customers; return how many.

    Deterministic for a given ``seed`` and data set.
    """
    rng = random.Random(f"complaints-{seed}")
    customers = crm.metadata.tables["crm_customers"]
    with crm.reading() as uow:
        ids = list(
            uow.connection.execute(select(customers.c.id).order_by(customers.c.id)).scalars()
        )
    categories = [c for c in _CATEGORY_WEIGHTS if c in settings_of(crm).categories] or ["other"]
    weights = [_CATEGORY_WEIGHTS.get(c, 1) for c in categories]
    intake: list[dict[str, Any]] = []
    for cid in ids:
        if rng.random() >= share:
            continue
        for _ in range(1 if rng.random() < 0.8 else 2):
            opened = now - timedelta(days=rng.uniform(0, 200), minutes=rng.randint(0, 1440))
            intake.append(
                {
                    "customer_id": cid,
                    "category": rng.choices(categories, weights)[0],
                    "severity": rng.choice(_SEVERITIES).value,
                    "channel": rng.choice(["web", "phone", "email", "chat", "store"]),
                    "reference": f"ORD-{rng.randint(10000, 99999)}",
                    "description": "Demo complaint",
                    "assignee": rng.choice(AGENTS),
                    "opened_at": opened.replace(microsecond=0),
                }
            )
    intake.sort(key=lambda item: (item["opened_at"], item["customer_id"]))
    service = ComplaintService(crm)
    opened_cases = service.open_many(intake, actor="demo", source="import")
    for complaint in opened_cases:
        _handle(service, rng, complaint.id, complaint.opened_at, complaint.category, now)
    service.sweep(actor="demo")
    return len(opened_cases)


def _handle(
    service: ComplaintService,
    rng: random.Random,
    complaint_id: int,
    opened: datetime,
    category: str,
    now: datetime,
) -> None:
    """Play a plausible handling of one complaint, stopping at the demo's "now"."""
    at = opened + timedelta(minutes=rng.randint(10, 60 * 36))
    if at > now:
        return
    service.move(complaint_id, rng.choice(["acknowledged", "in_progress"]), actor="demo", at=at)
    if rng.random() < 0.3:
        at += timedelta(hours=rng.uniform(1, 30))
        if at > now:
            return
        service.move(complaint_id, "waiting_customer", actor="demo", at=at)
        at += timedelta(hours=rng.uniform(4, 96))
        if at > now:
            return
        service.move(complaint_id, "in_progress", actor="demo", at=at)
    at += timedelta(hours=rng.uniform(2, 200))
    if at > now:
        return
    top = category.split("/")[0]
    points = rng.choice([None, None, 100, 250])
    service.resolve(
        complaint_id,
        resolution="Resolved with the customer",
        root_cause=rng.choice(_ROOT_CAUSES.get(top, ["unknown"])),
        compensations=[{"kind": "points", "points": points}] if points else [],
        actor="demo",
        at=at,
    )
    if rng.random() < 0.1:
        at += timedelta(days=rng.uniform(1, 10))
        if at > now:
            return
        service.reopen(complaint_id, note="customer not satisfied", actor="demo", at=at)
        at += timedelta(hours=rng.uniform(2, 72))
        if at > now:
            return
        service.resolve(complaint_id, resolution="Resolved again", actor="demo", at=at)
    at += timedelta(days=rng.uniform(0.5, 5))
    if at > now:
        return
    service.rate(complaint_id, rng.choice([2, 3, 4, 4, 5, 5]), actor="demo", at=at)
    if rng.random() < 0.7:
        service.close(complaint_id, actor="demo", at=at)


def demo_period(now: datetime) -> Period:
    """The period the demo reports on: the 180 days before ``now``."""
    return Period(now - timedelta(days=180), now)
