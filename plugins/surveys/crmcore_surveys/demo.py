"""``crm demo``: an NPS and a multi-dimension survey over the demo customers, and the report.

Deterministic from the seed: invitations to a stratified sample, answers drawn
from customer-specific satisfaction, response dates spread over the demo year.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from rich.console import Console

from crmcore import CRM
from crmcore_surveys import catalog, distribution, responses, scoring
from crmcore_surveys.distribution import Invitation
from crmcore_surveys.report_view import print_report
from crmcore_surveys.templates import template


def _nps_answers(rng: random.Random, invitations: Sequence[Invitation]) -> Iterator[dict[str, Any]]:
    for inv in invitations:
        if rng.random() < 0.35:
            continue  # no answer
        mood = rng.gauss(7.4, 2.2)
        score = max(0, min(10, round(mood)))
        yield {
            "token": inv.token,
            "answers": {
                "recommend": score,
                "reason": rng.choice(["price", "service", "delivery", "quality", None]),
            },
        }


def _satisfaction_answers(
    rng: random.Random, invitations: Sequence[Invitation]
) -> Iterator[dict[str, Any]]:
    for inv in invitations:
        if rng.random() < 0.4:
            continue
        base = rng.gauss(3.7, 0.8)
        dims = {
            "product_quality": base + rng.gauss(0.3, 0.5),
            "service": base + rng.gauss(0.0, 0.6),
            "communication": base + rng.gauss(-0.2, 0.6),
            "response_speed": base + rng.gauss(-0.4, 0.7),
            "price": base + rng.gauss(-0.3, 0.8),
        }
        answers: dict[str, Any] = {k: max(1, min(5, round(v))) for k, v in dims.items()}
        overall = 0.35 * dims["product_quality"] + 0.3 * dims["service"] + 0.35 * base
        answers["overall"] = max(1, min(5, round(overall + rng.gauss(0, 0.3))))
        answers["channel"] = rng.choice(["web", "store", "app", "phone"])
        answers["improve"] = rng.sample(
            ["delivery", "support", "prices", "website"], k=rng.randint(0, 2)
        )
        yield {"token": inv.token, "answers": answers}


def _dated(
    rng: random.Random, items: Iterator[dict[str, Any]], crm: CRM
) -> Iterator[dict[str, Any]]:
    now = crm.clock()
    for item in items:
        item["answered_at"] = now - timedelta(
            days=rng.randint(0, 364), minutes=rng.randint(0, 1439)
        )
        yield item


def run_demo(crm: CRM, seed: int, console: Console) -> None:
    """Create the NPS and the satisfaction survey, invite samples, record answers, report."""
    rng = random.Random(seed * 7919 + 17)
    catalog.create_survey(crm, template("nps"), actor="demo")
    catalog.create_survey(crm, template("satisfaction"), actor="demo")
    nps = distribution.invite(
        crm, "nps", sample=250, strata="stage", seed=seed, channel="email", actor="demo"
    )
    sat = distribution.invite(
        crm, "satisfaction", filters={"kind": "person"}, sample=150, seed=seed + 1, actor="demo"
    )
    recorded = responses.record_responses(
        crm, _dated(rng, _nps_answers(rng, nps.invitations), crm), actor="demo"
    )
    recorded += responses.record_responses(
        crm, _dated(rng, _satisfaction_answers(rng, sat.invitations), crm), actor="demo"
    )
    alerts = sum(1 for r in recorded if r.alert is not None)
    console.print(
        f"[bold]surveys[/bold]: invited {len(nps.invitations)} to nps "
        f"({nps.skipped_no_consent} without survey consent skipped) and "
        f"{len(sat.invitations)} to satisfaction; {len(recorded)} responses, "
        f"{alerts} low-score alerts fired."
    )
    print_report(scoring.survey_report(crm, "nps", trend="quarter", by="stage"), console)
    print_report(scoring.survey_report(crm, "satisfaction", trend="quarter"), console)
