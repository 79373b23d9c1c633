"""Worker of the concurrency stress test, importable by spawned processes (no test module)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import crmcore_loyalty.plugin
from crmcore_loyalty import service

from crmcore import CRM, Config, ConflictError, ValidationError


def attempt_all(crm: CRM, customer_id: int, requests: Sequence[tuple[str, int]]) -> list[str]:
    """Try every ``(key, points)`` redemption; return what happened to each."""
    outcomes = []
    for key, points in requests:
        try:
            entry = service.redeem(crm, customer_id, points, idempotency_key=key)
        except ValidationError:
            outcomes.append(f"{key}:refused")
        except ConflictError:
            outcomes.append(f"{key}:conflict")
        else:
            outcomes.append(f"{key}:{'replayed' if entry.replayed else 'applied'}")
    return outcomes


def process_worker(args: tuple[str, dict[str, Any], int, list[tuple[str, int]], int]) -> list[str]:
    """Open a CRM of its own on ``url`` and redeem the requests in a seeded random order."""
    url, section, customer_id, requests, seed = args
    shuffled = list(requests)
    random.Random(seed).shuffle(shuffled)
    crm = CRM.open(
        Config(database_url=url, plugin_sections={"loyalty": section}),
        plugins=[crmcore_loyalty.plugin],
        discover=False,
    )
    try:
        return attempt_all(crm, customer_id, shuffled)
    finally:
        crm.close()
