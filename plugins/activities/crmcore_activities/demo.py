"""``crm demo``: cadence rules, a month of planned and completed activities, a workbench."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

from rich.console import Console
from sqlalchemy import select

from crmcore import CRM
from crmcore.access import Action
from crmcore.cli.output import safe_text
from crmcore.scoping import enforce_declared, requires
from crmcore_activities import activities as act
from crmcore_activities import planner, rules, workbench
from crmcore_activities.settings import settings_of
from crmcore_activities.tables import activities_table

#: The demo's rules: a key-account cadence, onboarding calls and birthday greetings.
DEMO_RULES: tuple[dict[str, Any], ...] = (
    {
        "name": "demo_regular_visit",
        "type": "cadence",
        "kind": "visit",
        "subject": "Regular visit",
        "params": {"rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "window_days": 14},
        "targets": {"stages": ["active", "loyal"]},
    },
    {
        "name": "demo_follow_up_prospects",
        "type": "cadence",
        "kind": "call",
        "subject": "Follow-up call",
        "params": {"rrule": "FREQ=WEEKLY;INTERVAL=4;BYDAY=TU", "window_days": 28},
        "targets": {"stages": ["prospect", "new"]},
    },
    {
        "name": "demo_retention_call",
        "type": "cadence",
        "kind": "call",
        "subject": "Retention call",
        "priority": 1,
        "params": {"rrule": "FREQ=WEEKLY;INTERVAL=2", "window_days": 14},
        "targets": {"stages": ["at_risk"]},
    },
    {
        "name": "demo_welcome",
        "type": "onboarding",
        "kind": "call",
        "subject": "Welcome call",
        "params": {"offsets": [3, 14]},
    },
    {
        "name": "demo_birthday",
        "type": "birthday",
        "kind": "care",
        "subject": "Birthday greetings",
        "params": {"consent": "none"},
    },
)


@requires(Action.REPORT)
def load(crm: CRM, seed: int, *, complete: int = 250) -> dict[str, int]:
    """Add the demo rules from 30 days ago, plan, and complete up to ``complete`` past tasks."""
    rng = random.Random(seed)
    today = crm.clock().astimezone(settings_of(crm).zone_of(None)).date()
    known = {r["name"] for r in rules.list_rules(crm)}
    for rule in DEMO_RULES:
        if rule["name"] not in known:
            rules.add_rule(crm, rule, start_date=today - timedelta(days=30))
    created = planner.plan(crm)["created"]
    table = activities_table(crm.metadata)
    with crm.reading() as uow:
        past = [
            int(i)
            for (i,) in uow.connection.execute(
                select(table.c.id)
                .where(table.c.status == "planned", table.c.due_at < uow.now - timedelta(hours=6))
                .order_by(table.c.id)
            )
        ]
    done = 0
    for activity_id in rng.sample(past, min(complete, int(len(past) * 0.8))):
        found = act.get_activity(crm, activity_id)
        at = found["due_at"] + timedelta(hours=rng.choice((-2, 0, 1, 3, 26, 50)))
        act.complete_activity(crm, activity_id, outcome="demo", at=min(at, crm.clock()))
        done += 1
    return {"planned": created, "done": done}


@requires(Action.REPORT)
def run(crm: CRM, seed: int, console: Console) -> None:
    """Load the demo part and print one salesperson's workbench."""
    counts = load(crm, seed)
    table = activities_table(crm.metadata)
    with crm.reading() as uow:
        owners = Counter(
            a
            for (a,) in uow.connection.execute(
                select(table.c.assignee).where(table.c.status == "planned")
            )
            if a
        )
    console.print(
        f"[bold]Activities[/bold]: {counts['planned']} tasks planned by the rules over the last "
        f"month, {counts['done']} completed"
    )
    if not owners:
        return
    user = owners.most_common(1)[0][0]
    overdue = workbench.workbench(crm, "overdue", user=user)
    week = workbench.workbench(crm, "week", user=user)
    console.print(f"Workbench of {safe_text(user)}: {len(overdue)} overdue, {len(week)} this week")
    for item in (overdue + week)[:8]:
        flag = "[red]overdue[/red] " if item["overdue"] else ""
        console.print(
            f"  {flag}{safe_text(item['due_local'][:16])}  {safe_text(item['kind'])}  "
            f"{safe_text(item['customer_name'])}: {safe_text(item['subject'])}"
        )


enforce_declared(__name__)
