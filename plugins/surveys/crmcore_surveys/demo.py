"""``crm demo``: NPS, multi-dimension and B2B surveys over the demo customers, and the reports.

Deterministic from the seed: invitations to a stratified sample sent at the start
of the demo year, answers drawn from customer-specific satisfaction, response dates
spread over the year after their invitations; the B2B relationship assessment in
two waves, before and after its template's acceptance item was rewritten.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from crmcore import CRM
from crmcore_surveys import catalog, distribution, responses, scoring
from crmcore_surveys.distribution import Invitation
from crmcore_surveys.report_view import print_report
from crmcore_surveys.templates import TEMPLATE_VERSIONS, template

#: The demo's year: invitations are sent at its start, answers come during it.
DEMO_YEAR = timedelta(days=365)


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


def _b2b_answers(rng: random.Random, invitations: Sequence[Invitation]) -> Iterator[dict[str, Any]]:
    """Relationship assessments: information flow and project support drive the overall."""
    offsets = {
        "acceptance": 0.4,
        "participation": -0.3,
        "information": -0.6,
        "guidance": 0.2,
        "project_support": -0.2,
        "preference": 0.0,
    }
    for inv in invitations:
        if rng.random() < 0.3:
            continue
        base = rng.gauss(4.8, 0.9)
        dims = {q: base + shift + rng.gauss(0, 0.9) for q, shift in offsets.items()}
        overall = (
            0.3 * dims["information"]
            + 0.3 * dims["project_support"]
            + 0.15 * dims["acceptance"]
            + 0.1 * dims["preference"]
            + 0.15 * base
        )
        answers: dict[str, Any] = {q: max(1, min(7, round(v))) for q, v in dims.items()}
        answers["overall"] = max(1, min(7, round(overall + rng.gauss(0, 0.4))))
        yield {"token": inv.token, "answers": answers}


def _dated(
    rng: random.Random, items: Iterator[dict[str, Any]], since: datetime, until: datetime
) -> Iterator[dict[str, Any]]:
    """Answers dated in ``[since, until)``: after their invitation, sent at ``since``."""
    span = max(1, (until - since).days)
    for item in items:
        item["answered_at"] = until - timedelta(
            days=rng.randint(0, span - 1), minutes=rng.randint(0, 1439)
        )
        yield item


def _acceptance_text(crm: CRM, version: int) -> str:
    question = catalog.get_survey(crm, "b2b", version).definition.question("acceptance")
    return "" if question is None else question.text


def _run_b2b(crm: CRM, seed: int, rng: random.Random, console: Console) -> int:
    """Two waves of the B2B assessment: template version 1, then the current version 2."""
    start = crm.clock() - DEMO_YEAR
    middle = start + DEMO_YEAR / 2
    catalog.create_survey(crm, template("b2b", version=1), actor="demo")
    organisations = crm.customers.search(kind="organization", limit=1).total
    first = distribution.invite(
        crm,
        "b2b",
        filters={"kind": "organization"},
        sample=max(1, organisations // 2),
        seed=seed + 2,
        sent_at=start,
        actor="demo",
    )
    early = responses.record_responses(
        crm, _dated(rng, _b2b_answers(rng, first.invitations), start, middle), actor="demo"
    )
    current = catalog.update_survey(crm, template("b2b"), actor="demo")
    second = distribution.invite(
        crm, "b2b", filters={"kind": "organization"}, sent_at=middle, actor="demo"
    )
    late = responses.record_responses(
        crm,
        _dated(rng, _b2b_answers(rng, second.invitations), middle, crm.clock()),
        actor="demo",
    )
    console.print(
        f"[bold]surveys[/bold]: b2b relationship assessment: {len(first.invitations)} "
        f"organisations invited on {start.date()} to template b2b version 1, "
        f"{len(early)} answered; the survey then moved to template version "
        f"{TEMPLATE_VERSIONS['b2b']} (survey version {current.version}) and "
        f"{len(second.invitations)} more were invited on {middle.date()}, {len(late)} answered. "
        f"acceptance/recognition (the customer's recognition of our products and services) "
        f"now asks {_acceptance_text(crm, current.version)!r}; version 1 asked "
        f"{_acceptance_text(crm, 1)!r}, and its responses keep that wording."
    )
    return len(early) + len(late)


def run_demo(crm: CRM, seed: int, console: Console) -> None:
    """Create the NPS, satisfaction and B2B surveys, invite samples, record answers, report.

    Every invitation is sent at the start of the demo year (the B2B assessment's
    second wave half-way through), before the responses it receives, so that
    ``crm report`` over the demo year counts them with their responses.
    """
    rng = random.Random(seed * 7919 + 17)
    now = crm.clock()
    start = now - DEMO_YEAR
    catalog.create_survey(crm, template("nps"), actor="demo")
    catalog.create_survey(crm, template("satisfaction"), actor="demo")
    nps = distribution.invite(
        crm,
        "nps",
        sample=250,
        strata="stage",
        seed=seed,
        channel="email",
        sent_at=start,
        actor="demo",
    )
    sat = distribution.invite(
        crm,
        "satisfaction",
        filters={"kind": "person"},
        sample=150,
        seed=seed + 1,
        sent_at=start,
        actor="demo",
    )
    recorded = responses.record_responses(
        crm, _dated(rng, _nps_answers(rng, nps.invitations), start, now), actor="demo"
    )
    recorded += responses.record_responses(
        crm, _dated(rng, _satisfaction_answers(rng, sat.invitations), start, now), actor="demo"
    )
    alerts = sum(1 for r in recorded if r.alert is not None)
    console.print(
        f"[bold]surveys[/bold]: invited {len(nps.invitations)} to nps "
        f"({nps.skipped_no_consent} without survey consent skipped) and "
        f"{len(sat.invitations)} to satisfaction on {start.date()}; {len(recorded)} responses, "
        f"{alerts} low-score alerts fired."
    )
    print_report(scoring.survey_report(crm, "nps", trend="quarter", by="stage"), console)
    print_report(scoring.survey_report(crm, "satisfaction", trend="quarter"), console)
    _run_b2b(crm, seed, rng, console)
    print_report(scoring.survey_report(crm, "b2b", trend=None, by="version"), console)
