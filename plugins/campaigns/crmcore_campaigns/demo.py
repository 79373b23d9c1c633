"""The plugin's part of ``crm demo``: a win-back campaign with a control group, and its results.

The demo's database has no ``crm.toml`` behind it, so messaging has only its
default channel. The demo therefore opens a second CRM on the same engine and
plugins whose messaging section has one channel, ``demo``: a ``folder`` channel
writing each email as a file into ``<database>-outbox/`` next to the SQLite file
(a temporary directory for other databases). Its clock starts 40 days before
the demo's "now", so the whole attribution window (30 days) lies in the past:

* day 0: campaign ``Win back`` over the at-risk customers (``stage=at_risk``),
  variants A (``campaigns_winback_a``) and B (``campaigns_winback_b``), 20% held
  out, a reminder after 7 days, 1.00 EUR per message within a budget of 100;
  launched and sent to the folder;
* days 1-29: simulated responses, drawn from ``seed``: clicks on the tracked
  link (through messaging's ``tokens.resolve_click``, as the web endpoint
  would) and purchases, more likely for the treated than for the control group;
* day 7: the reminder step (``send_reminders``) and its delivery;
* day 40: the results are printed.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from rich.table import Table
from sqlalchemy import select

from crmcore import CRM
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.testing import FrozenClock
from crmcore_campaigns.sending import REF_TYPE, messaging_enabled

if TYPE_CHECKING:
    from rich.console import Console

LANDING = "https://shop.example.com/welcome-back"
#: Daily probabilities of the simulated responses, per group.
CLICK = {"A": 0.3, "B": 0.4}
BUY = {"A": 0.22, "B": 0.3, None: 0.1}

TEMPLATES = {
    "campaigns_winback_a": ("We miss you, {{ customer.name }}", "Come back and see what is new: "),
    "campaigns_winback_b": ("10% off for you, {{ customer.name }}", "Your 10% welcome back: "),
    "campaigns_winback_reminder": ("Still thinking, {{ customer.name }}?", "Last days: "),
}


@requires(Action.ADMINISTER)  # where the demo writes files
def outbox_of(crm: CRM) -> Path:
    """Where the demo's folder channel writes: ``<database>-outbox`` beside a SQLite file."""
    url = crm.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).with_name(Path(url.database).stem + "-outbox")
    return Path(tempfile.mkdtemp(prefix="crm-demo-outbox-"))


@requires(Action.ADMINISTER)  # a trusted CRM on the same database
def demo_view(crm: CRM, outbox: Path, clock: Callable[[], datetime]) -> CRM:
    """A CRM on ``crm``'s engine and plugins whose messaging has the ``demo`` folder channel."""
    section = {
        "channels": {"demo": {"type": "folder", "consent": "marketing_email", "path": str(outbox)}},
        "default_channel": "demo",
        "caps": [],
    }
    config = attrs.evolve(
        crm.config, plugin_sections={**crm.config.plugin_sections, "messaging": section}
    )
    plugins = [plugin for _, plugin in crm.pm.list_name_plugin()]
    return CRM.open(config, engine=crm.engine, plugins=plugins, discover=False, clock=clock)


def _messages(crm: CRM, campaign_id: int) -> list[Any]:
    table = crm.metadata.tables["messaging_messages"]
    with crm.reading() as uow:
        return list(
            uow.connection.execute(
                select(table.c.customer_id, table.c.token, table.c.state).where(
                    table.c.ref_type == REF_TYPE, table.c.ref_id == str(campaign_id)
                )
            )
        )


def _events(
    view: CRM, campaign: dict[str, Any], rng: random.Random
) -> list[tuple[datetime, str, Any]]:
    """Clicks (on sent step-1 messages) and purchases, drawn from ``rng``, in time order."""
    from crmcore_campaigns.campaigns import recipients

    start = campaign["launched_at"]
    tokens = {m.customer_id: m.token for m in _messages(view, campaign["id"]) if m.state == "sent"}
    events: list[tuple[datetime, str, Any]] = []
    for member in recipients(view, campaign["id"]):
        cid, variant = member["customer_id"], member["variant"]
        if variant is not None and cid in tokens and rng.random() < CLICK[variant]:
            at = start + timedelta(hours=rng.randint(2, 140))
            events.append((at, "click", tokens[cid]))
        if rng.random() < BUY[variant]:
            at = start + timedelta(hours=rng.randint(3, 29 * 24))
            amount = Decimal(rng.randint(2000, 25000)) / 100
            events.append((at, "purchase", (cid, amount)))
    events.append((start + timedelta(days=7), "remind", None))
    return sorted(events, key=lambda e: (e[0], e[1]))


def _play(view: CRM, clock: FrozenClock, events: list[tuple[datetime, str, Any]]) -> int:
    from crmcore_messaging import delivery, tokens

    from crmcore_campaigns.launching import send_reminders

    reminded = 0
    for at, kind, data in events:
        clock.set(at)
        if kind == "click":
            link = tokens.tracked_url(view, data, LANDING)
            tokens.resolve_click(view, link.rsplit("/c/", 1)[1])
        elif kind == "purchase":
            customer_id, amount = data
            view.interactions.record(
                {
                    "customer_id": customer_id,
                    "kind": "purchase",
                    "channel": "web",
                    "occurred_at": at,
                    "amount": amount,
                    "currency": "EUR",
                    "source": "campaigns-demo",
                },
                actor="demo",
            )
        else:
            reminded += sum(r["reminded"] for r in send_reminders(view, actor="demo"))
            delivery.send_pending(view)
    return reminded


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print(console: Console, found: dict[str, Any], outbox: Path, reminded: int) -> None:
    table = Table(title=f"campaigns: '{found['name']}' results (30-day window, EUR)")
    for column in ("group", "members", "delivered", "clicked", "converted", "rate", "revenue"):
        table.add_column(column)
    rows = [
        ("control", found["control"]),
        *((f"variant {v['variant']}", v) for v in found["variants"]),
        ("all treated", found["treated"]),
    ]
    for label, g in rows:
        table.add_row(
            label,
            str(g["n"]),
            str(g["delivered"]),
            str(g["clicked"]),
            str(g["conversions"]),
            _pct(g["conversion_rate"]),
            f"{g['revenue']:,.2f}",
        )
    console.print(table)
    up, rev = found["uplift"], found["incremental_revenue"]
    if up is not None:
        console.print(
            f"campaigns: uplift {_pct(up['estimate'])} "
            f"(95% CI {_pct(up['low'])} to {_pct(up['high'])})"
        )
    if rev is not None and rev["low"] is not None:
        console.print(
            f"campaigns: incremental revenue {rev['estimate']:,.2f} "
            f"(95% CI {rev['low']:,.2f} to {rev['high']:,.2f}); {found['messages_sent']} "
            f"messages cost {found['cost']}; ROI "
            + ("n/a" if found["roi"] is None else f"{found['roi']:.1f}")
        )
    test = found["variant_comparison"]
    if test["p_value"] is not None:
        console.print(f"campaigns: A vs B chi-square p = {test['p_value']:.3f}")
    console.print(
        f"campaigns: {reminded} reminders; messages written to {outbox} "
        f"(crm campaigns results {found['campaign_id']})"
    )


@requires(Action.ADMINISTER)  # opens a second, trusted CRM on the same database
def run(crm: CRM, seed: int, console: Console) -> None:
    """Run the win-back campaign of the module docstring and print its results."""
    if not messaging_enabled(crm):
        console.print("campaigns: demo skipped (install crmcore-messaging to send campaigns)")
        return
    from crmcore_messaging import delivery
    from crmcore_messaging.templates import save_template

    from crmcore_campaigns import campaigns, launching, results

    if crm.customers.search(stage="at_risk", limit=1).total == 0:
        console.print("campaigns: demo skipped (no at-risk customers)")
        return
    outbox = outbox_of(crm)
    clock = FrozenClock(crm.clock() - timedelta(days=40))
    view = demo_view(crm, outbox, clock)
    try:
        for name, (subject, text) in TEMPLATES.items():
            save_template(
                view,
                name,
                locale="en",
                subject=subject,
                text=text + "{{ link('" + LANDING + "') }}",
                actor="demo",
            )
        draft = campaigns.create_campaign(
            view,
            {
                "name": "Win back",
                "audience": {"filter": "stage=at_risk"},
                "variants": [
                    {
                        "name": name,
                        "template": f"campaigns_winback_{name.lower()}",
                        "reminder_template": "campaigns_winback_reminder",
                    }
                    for name in ("A", "B")
                ],
                "control_share": "0.2",
                "cost_per_message": "1.00",
                "budget": "100",
                "reminder_days": 7,
                "seed": seed,
            },
            actor="demo",
        )
        launching.launch_campaign(view, draft["id"], actor="demo")
        delivery.send_pending(view)
        campaign = campaigns.get_campaign(view, draft["id"])
        reminded = _play(view, clock, _events(view, campaign, random.Random(seed)))
        clock.set(crm.clock())
        _print(console, results.campaign_results(view, draft["id"]), outbox, reminded)
    finally:
        view.close()


enforce_declared(__name__)

__all__ = ["demo_view", "outbox_of", "run"]
