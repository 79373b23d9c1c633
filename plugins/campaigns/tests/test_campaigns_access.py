"""Every campaigns service function obeys the principal (the access conformance matrix)."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from crmcore_campaigns import (
    audience,
    campaigns,
    demo,
    launching,
    privacy,
    resolvers,
    results,
    sending,
    settings,
    views,
)
from rich.console import Console

from crmcore import CRM, Period
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    ADMIN_ONLY,
    EVERYONE_ONLY,
    Case,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

MODULES: tuple[Any, ...] = (
    audience,
    campaigns,
    launching,
    results,
    sending,
    views,
    privacy,
    demo,
)
EXEMPT = {
    "settings.remember_settings": "reads the configuration once at start-up (crm_startup)",
    "settings.settings_of": "returns the configuration the CRM opened with",
    "resolvers.campaign_recipients": "a @requires resolver: core's check calls it",
}
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
STEPS = itertools.count(10)


def _draft(crm: CRM, customer_id: int) -> int:
    data = {"name": "kit", "audience": {"customers": [customer_id]}, "template": "winback"}
    return int(campaigns.create_campaign(crm, data)["id"])


def _launched(crm: CRM, s: Subjects) -> int:
    campaign_id = _draft(crm, s.visible)
    launching.launch_campaign(crm, campaign_id)
    return campaign_id


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    mine, theirs = _draft(crm, visible), _draft(crm, hidden)
    launching.launch_campaign(crm, mine)
    launching.launch_campaign(crm, theirs)
    return {
        "campaign": mine,
        "hidden_campaign": theirs,
        "loaded": campaigns.get_campaign(crm, mine),
        "customer": crm.customers.get(visible),
    }


def _lists(result: Any, customer_id: int, s: Subjects) -> bool:
    """Whether a result names the customer as an id (lists, keys, campaign audiences)."""
    if isinstance(result, dict):
        if customer_id in result or customer_id in result.get("audience", {}).get("customers", []):
            return True
        return any(_lists(v, customer_id, s) for v in result.values())
    if isinstance(result, list | tuple):
        return customer_id in result or any(_lists(v, customer_id, s) for v in result)
    return False


C, L = "campaign", "loaded"
CASES: list[Case] = [
    Case("audience.resolve", lambda c, s: audience.resolve(c, {"filter": ""}), reveals=_lists),
    Case(
        "audience.strata",
        lambda c, s: audience.strata(c, [s.visible, s.hidden], stratify=True),
        reveals=_lists,
    ),
    Case("audience.segmentation_enabled", lambda c, s: audience.segmentation_enabled(c)),
    Case("audience.not_writable", lambda c, s: audience.not_writable(c, [s.visible])),
    Case(
        "campaigns.audience_access",
        in_unit_of_work(
            lambda u, s: campaigns.audience_access(u.crm, {"customers": [s.visible]}, u)
        ),
        reveals=_lists,
    ),
    Case("campaigns.create_campaign", lambda c, s: _draft(c, s.visible)),
    Case(
        "campaigns.load", in_unit_of_work(lambda u, s: campaigns.load(u, s.data[C])), reveals=_lists
    ),
    Case(
        "campaigns.get_campaign", lambda c, s: campaigns.get_campaign(c, s.data[C]), reveals=_lists
    ),
    Case("campaigns.list_campaigns", lambda c, s: campaigns.list_campaigns(c), reveals=_lists),
    Case("campaigns.recipients", lambda c, s: campaigns.recipients(c, s.data[C])),
    Case(
        "launching.launch_campaign",
        lambda c, s: launching.launch_campaign(c, s.fresh),
        setup=lambda c, s: _draft(c, s.visible),
    ),
    Case(
        "launching.stop_campaign",
        lambda c, s: launching.stop_campaign(c, s.fresh),
        setup=_launched,
    ),
    Case("launching.send_reminders", lambda c, s: launching.send_reminders(c), EVERYONE_ONLY),
    Case(
        "launching.reminder_candidates",
        in_unit_of_work(lambda u, s: launching.reminder_candidates(u, s.data[L])),
        EVERYONE_ONLY,
    ),
    Case(
        "launching.committed_messages",
        in_unit_of_work(lambda u, s: launching.committed_messages(u, s.data[C])),
        EVERYONE_ONLY,
    ),
    Case(
        "results.campaign_results",
        lambda c, s: results.campaign_results(c, s.data[C]),
        EVERYONE_ONLY,
    ),
    Case(
        "results.group_aggregates",
        in_unit_of_work(lambda u, s: results.group_aggregates(u, s.data[L])),
        EVERYONE_ONLY,
    ),
    Case(
        "results.messages_sent",
        in_unit_of_work(lambda u, s: results.messages_sent(u, s.data[C])),
        EVERYONE_ONLY,
    ),
    Case("sending.messaging_enabled", lambda c, s: sending.messaging_enabled(c)),
    Case("sending.require_messaging", lambda c, s: sending.require_messaging(c)),
    Case("sending.messages_table", lambda c, s: str(sending.messages_table(c))),
    Case("sending.clicks_table", lambda c, s: str(sending.clicks_table(c))),
    Case(
        "sending.enqueue_step",
        in_unit_of_work(
            lambda u, s: sending.enqueue_step(
                u, s.data[L], next(STEPS), [s.visible], {s.visible: "winback"}, None
            )
        ),
    ),
    Case(
        "sending.cancel_pending",
        in_unit_of_work(lambda u, s: sending.cancel_pending(u, s.fresh)),
        setup=_launched,
    ),
    Case("views.profile_section", lambda c, s: views.profile_section(c, s.data["customer"])),
    Case(
        "views.template_variables",
        in_unit_of_work(
            lambda u, s: views.template_variables(
                u, s.data["customer"], "campaigns.campaign", str(s.data[C])
            )
        ),
    ),
    Case("views.metrics", lambda c, s: views.metrics(c, PERIOD), EVERYONE_ONLY),
    Case(
        "privacy.export", in_unit_of_work(lambda u, s: privacy.export(u, s.visible)), EVERYONE_ONLY
    ),
    Case(
        "privacy.erase",
        in_unit_of_work(lambda u, s: privacy.erase(u, s.fresh)),
        ADMIN_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "privacy.forget",
        in_unit_of_work(lambda u, s: privacy.forget(u, [s.fresh])),
        EVERYONE_ONLY,
        setup=fresh_customer,
    ),
    Case(
        "privacy.merge_rows",
        in_unit_of_work(lambda u, s: privacy.merge_rows(u, s.visible, s.fresh)),
        setup=fresh_customer,
    ),
    Case("demo.outbox_of", lambda c, s: str(demo.outbox_of(c)), ADMIN_ONLY),
    Case(
        "demo.demo_view",
        lambda c, s: demo.demo_view(c, Path("unused-outbox"), c.clock).close(),
        ADMIN_ONLY,
    ),
    Case("demo.run", lambda c, s: demo.run(c, 2, Console(file=io.StringIO())), ADMIN_ONLY),
]


def test_every_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []
    assert set(undeclared(settings, resolvers)) == set(EXEMPT)


def test_campaigns_conformance_matrix(mcrm: CRM) -> None:
    matrix = run_conformance(
        mcrm,
        "campaigns",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES, settings, resolvers),
        exempt=EXEMPT,
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("launching.launch_campaign", "foreign")] == "denied"
    assert outcome[("launching.launch_campaign", "granted")] == "allowed"
    assert outcome[("campaigns.create_campaign", "foreign")] == "denied"
    assert outcome[("results.campaign_results", "owner")] == "denied"


def test_an_agent_is_told_how_many_members_are_not_theirs(mcrm: CRM) -> None:
    mine = [
        int(c.id or 0)
        for c in mcrm.customers.create_many([{"name": f"m{i}", "owner": "ann"} for i in range(3)])
    ]
    other = [
        int(c.id or 0)
        for c in mcrm.customers.create_many([{"name": f"o{i}", "owner": "bob"} for i in range(2)])
    ]
    ann = mcrm.as_user(Principal("ann", Role.AGENT))
    data = {"name": "x", "audience": {"customers": mine + other}, "template": "winback"}
    with pytest.raises(AccessDeniedError, match="may not contact 2 of the 5 audience members"):
        campaigns.create_campaign(ann, data)
    created = campaigns.create_campaign(ann, {**data, "audience": {"customers": mine}})
    assert launching.launch_campaign(ann, created["id"])["audience"] == 3
    # a filter audience is resolved among the customers the agent may see
    every = campaigns.create_campaign(ann, {**data, "audience": {"filter": ""}})
    assert launching.launch_campaign(ann, every["id"])["audience"] == 3
    manager = mcrm.as_user(Principal("olga", Role.MANAGER))
    assert campaigns.get_campaign(manager, created["id"])["status"] == "launched"
    assert results.campaign_results(manager, created["id"])["treated"]["n"] == 3
    with pytest.raises(AccessDeniedError):
        results.campaign_results(ann, created["id"])
