"""The campaigns part of ``crm demo``: a win-back campaign written to a folder, with results."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import crmcore_campaigns.plugin
import crmcore_messaging.plugin
from crmcore_campaigns import campaigns, demo, results
from rich.console import Console

from crmcore import CRM
from crmcore.io.demo import DEMO_NOW, load_demo
from crmcore.testing import FrozenClock


def test_demo_runs_a_win_back_campaign_with_a_control_group(
    crm_factory: Callable[..., CRM], clock: FrozenClock, db_url: str, tmp_path: Any
) -> None:
    clock.set(DEMO_NOW)
    crm = crm_factory(plugins=[crmcore_messaging.plugin, crmcore_campaigns.plugin])
    load_demo(crm, seed=3, customers=150)
    at_risk = crm.customers.search(stage="at_risk", limit=1).total
    out = io.StringIO()
    demo.run(crm, 3, Console(file=out, width=140))
    text = out.getvalue()
    assert "'Win back' results" in text and "uplift" in text
    [campaign] = campaigns.list_campaigns(crm)
    assert campaign["audience"] == {"filter": "stage=at_risk"}
    assert campaign["audience_size"] == at_risk
    found = results.campaign_results(crm, campaign["id"])
    assert found["control"]["n"] == (2000 * at_risk + 5000) // 10000
    assert found["treated"]["delivered"] > 0 and found["messages_sent"] > 0
    outbox = demo.outbox_of(crm) if db_url.startswith("sqlite") else None
    if outbox is not None:
        assert len(list(outbox.iterdir())) == found["messages_sent"]
    assert crm.clock() == DEMO_NOW  # the demo's own clock did not move the CRM's
