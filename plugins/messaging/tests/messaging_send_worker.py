"""Sender processes of the concurrency tests, importable by spawned children (no test module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import crmcore_messaging.plugin
from crmcore_messaging import delivery

from crmcore import CRM, Config


def drain(url: str, section: Mapping[str, Any], worker: str, barrier: Any, results: Any) -> None:
    """Open a CRM of its own, wait for the others, send until nothing is due; report counts."""
    crm = CRM.open(
        Config(database_url=url, plugin_sections={"messaging": dict(section)}),
        plugins=[crmcore_messaging.plugin],
        discover=False,
    )
    try:
        barrier.wait(timeout=120)
        total: dict[str, int] = {}
        while True:
            report = delivery.send_pending(crm, worker=worker)
            for key, value in report.to_dict().items():
                if isinstance(value, int):
                    total[key] = total.get(key, 0) + value
            if not report.claimed:
                break
        results.put((worker, total))
    except BaseException as exc:  # the parent must hear of it, not wait forever
        results.put((worker, {"error": repr(exc)}))
        raise
    finally:
        crm.close()
