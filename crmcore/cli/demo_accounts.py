"""The accounts part of ``crm demo``: a key account with its contacts, group, team and scores."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crmcore.cli.context import get_console
from crmcore.cli.output import safe_text

if TYPE_CHECKING:
    from crmcore.app import CRM


def show_accounts(crm: CRM, path: Path) -> None:
    """Relate demo customers as a B2B account and print its 360° view in one paragraph."""
    organisations = crm.customers.search(kind="organization", limit=2).items
    people = crm.customers.search(kind="person", limit=3).items
    if len(organisations) < 2 or len(people) < 3:
        return
    account, subsidiary = (o.id for o in organisations)
    assert account is not None and subsidiary is not None
    roles = ("decision_maker", "technical_evaluator", "user")
    for person, role in zip(people, roles, strict=True):
        assert person.id is not None
        at = subsidiary if role == "user" else account
        crm.accounts.add_contact(
            at, person.id, role=role, primary=role == "decision_maker", actor="demo"
        )
    crm.accounts.set_parent(subsidiary, account, actor="demo")
    crm.accounts.add_member(account, "alice", "account_manager", actor="demo")
    crm.accounts.add_member(account, "pete", "pre_sales", actor="demo")
    scores = {"information_flow": 70.0, "project_support": 65.0, "competitive_preference": 55.0}
    earlier = crm.clock() - timedelta(days=90)
    crm.accounts.record_scores(account, scores, measured_at=earlier, actor="demo")
    crm.accounts.record_scores(
        account, {**scores, "information_flow": 35.0}, source="review", actor="demo"
    )
    view = crm.accounts.view(account)
    rollup = view["rollup"]
    revenue = ", ".join(f"{amount} {currency}" for currency, amount in rollup["revenue"].items())
    signals = "; ".join(s["reason"] for s in view["signals"]) or "none"
    get_console().print(
        f"Accounts: {safe_text(view['account']['name'])} (customer {account}) with "
        f"{len(view['contacts'])} contacts, subsidiary {safe_text(organisations[1].name)} and "
        f"team alice (account manager), pete (pre-sales); roll-up over {rollup['members']} "
        f"members: {rollup['interaction_count']} interactions, revenue {revenue or 0}; "
        f"churn signals: {safe_text(signals)} (crm --db {path} accounts show {account})."
    )
