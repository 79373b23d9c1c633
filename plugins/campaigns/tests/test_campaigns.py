"""Campaign definitions, audiences (filter, segment, RFM, ids), strata, privacy, views, KPIs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import crmcore_segmentation.plugin
import pytest
from crmcore_campaigns import audience, campaigns, launching, results, views

from crmcore import CRM, ConfigError, Period, ValidationError
from crmcore.testing import FrozenClock


def _create(crm: CRM, **data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "c", "audience": {"filter": ""}}
    if "variants" not in data:
        base["template"] = "t"
    return campaigns.create_campaign(crm, {**base, **data})


def test_defaults_come_from_the_settings(open_crm: Callable[..., CRM], make_customers: Any) -> None:
    crm = open_crm(
        {
            "control_share": 0.25,
            "attribution_days": 14,
            "margin": 0.4,
            "cost_per_message": "0.1",
            "currency": "CNY",
            "channel": "sms",
            "stratify": False,
        }
    )
    make_customers(crm, 2)
    found = _create(crm)
    assert (found["control_share"], found["attribution_days"], found["currency"]) == (
        pytest.approx(0.25),
        14,
        "CNY",
    )
    assert str(found["margin"]) == "0.4" and str(found["cost_per_message"]) == "0.1"
    assert found["channel"] == "sms" and found["stratify"] is False
    assert found["status"] == "draft" and found["seed"] == found["id"]
    assert found["variants"] == [
        {"name": "A", "template": "t", "weight": 1, "reminder_template": None}
    ]


def test_a_bad_setting_is_a_config_error(open_crm: Callable[..., CRM]) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.campaigns\.control_share"):
        open_crm({"control_share": 1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "name: is required"),
        ({"audience": {}}, "audience: give exactly one"),
        ({"audience": {"everyone": True}}, "'everyone' is not one of"),
        ({"audience": {"filter": "colour=red"}}, "unknown key 'colour'"),
        ({"audience": {"filter": "stage"}}, "'stage' is not key=value"),
        ({"audience": {"filter": "stage=new stage=active"}}, "'stage' is given twice"),
        ({"audience": {"filter": "created_before=yesterday"}}, "is not a date"),
        ({"audience": {"customers": [0]}}, "0 is not a customer id"),
        ({"control_share": "0.12345"}, "control_share"),
        ({"control_share": "1"}, "control_share"),
        ({"variants": []}, "variants: expected a non-empty list"),
        ({"template": None}, "template: is required"),
        (
            {"variants": [{"name": "A", "template": "x"}, {"name": "A", "template": "y"}]},
            "variants[1].name: 'A' is repeated",
        ),
        ({"variants": [{"name": "A b", "template": "x"}]}, "is not a variant name"),
        ({"variants": [{"template": "x", "weight": 0}]}, "variants[0].weight"),
        ({"budget": "-1"}, "budget"),
        ({"send_at": "2026-01-02T10:00"}, "send_at: expected a timestamp with a time zone"),
        ({"reminder_days": 0}, "reminder_days"),
        ({"colour": "red"}, "colour: is not a campaign field"),
        ({"currency": "euro"}, "currency"),
    ],
)
def test_bad_definitions_are_refused(
    ccrm: CRM, make_customers: Any, data: dict[str, Any], message: str
) -> None:
    make_customers(ccrm, 1)
    base: dict[str, Any] = {"name": "c", "audience": {"filter": ""}, "template": "t"}
    if "variants" in data:
        base.pop("template")
    given = {**base, **data}
    if given.get("template", "") is None:
        given.pop("template")
    with pytest.raises(ValidationError) as caught:
        campaigns.create_campaign(ccrm, given)
    assert message in str(caught.value)
    assert campaigns.list_campaigns(ccrm) == []


def test_an_empty_audience_is_refused(ccrm: CRM) -> None:
    with pytest.raises(ValidationError, match="no customer matches"):
        _create(ccrm)


def test_the_filter_language(ccrm: CRM, clock: FrozenClock) -> None:
    early = ccrm.customers.create(
        {"name": "early", "owner": "ann", "tags": ["vip"], "attributes": {"city": "Berlin"}}
    )
    clock.advance(days=10)
    late = ccrm.customers.create(
        {
            "name": "late",
            "owner": "bob",
            "kind": "organization",
            "source_channel": "web",
            "attributes": {"city": "New York"},
        }
    )
    assert late.id is not None and early.id is not None

    def ids(text: str) -> list[int]:
        return audience.resolve(ccrm, {"filter": text})

    assert ids("") == [early.id, late.id]
    assert ids("owner=ann") == [early.id]
    assert ids("owner=ann,bob kind=organization") == [late.id]
    assert ids("tag=vip,gold") == [early.id]
    assert ids("stage=prospect") == [early.id, late.id]
    assert ids("source=web") == [late.id]
    assert ids('"attr.city=New York"') == [late.id]
    assert ids("attr.city=Berlin,Paris") == [early.id]
    assert ids("created_after=2026-01-05") == [late.id]
    assert ids("created_before=2026-01-05") == [early.id]


def test_audience_is_frozen_at_launch(ccrm: CRM, make_customers: Any) -> None:
    make_customers(ccrm, 5, tags=["vip"])
    draft = _create(ccrm, audience={"filter": "tag=vip"}, control_share=0)
    make_customers(ccrm, 2, tags=["vip"])  # join before the launch: included
    launching.launch_campaign(ccrm, draft["id"], send=False)
    make_customers(ccrm, 3, tags=["vip"])  # join after: not
    assert len(campaigns.recipients(ccrm, draft["id"])) == 7
    assert campaigns.get_campaign(ccrm, draft["id"])["audience_size"] == 7


def test_same_seed_same_groups(ccrm: CRM, make_customers: Any) -> None:
    ids = make_customers(ccrm, 40)
    groups = []
    for _ in range(2):
        draft = _create(
            ccrm,
            audience={"customers": ids},
            seed=5,
            variants=[{"name": "A", "template": "a"}, {"name": "B", "template": "b", "weight": 2}],
        )
        launching.launch_campaign(ccrm, draft["id"], send=False)
        groups.append(
            [
                (m["customer_id"], m["grp"], m["variant"])
                for m in campaigns.recipients(ccrm, draft["id"])
            ]
        )
    assert groups[0] == groups[1]
    treated = [g for g in groups[0] if g[1] == "treatment"]
    assert len(treated) == 36
    assert sum(1 for g in treated if g[2] == "B") == 24  # weights 1:2


def test_segment_rfm_and_value_tier_strata(
    open_crm: Callable[..., CRM], clock: FrozenClock, purchase: Any, make_customers: Any
) -> None:
    crm = open_crm(extra=[crmcore_segmentation.plugin])
    ids = make_customers(crm, 30)
    for i, cid in enumerate(ids[:20]):
        purchase(crm, cid, clock() - timedelta(days=5 + i), str(10 * (i + 1)))
    from crmcore_segmentation.segments import define_segment

    define_segment(crm, "buyers", {"field": "rfm.frequency", "op": "ge", "value": 1})
    draft = _create(crm, audience={"segment": "buyers"}, control_share="0.2")
    summary = launching.launch_campaign(crm, draft["id"], send=False)
    assert summary["audience"] == 20
    members = campaigns.recipients(crm, draft["id"])
    strata = {m["stratum"] for m in members}
    assert strata <= {"high", "medium", "low"} and len(strata) > 1
    for stratum in strata:
        inside = [m for m in members if m["stratum"] == stratum]
        control = sum(1 for m in inside if m["grp"] == "control")
        assert control == (2000 * len(inside) + 5000) // 10000
    everyone = _create(crm, audience={"filter": ""}, stratify=True)
    launching.launch_campaign(crm, everyone["id"], send=False)
    unvalued = [m for m in campaigns.recipients(crm, everyone["id"]) if m["stratum"] == "unvalued"]
    assert len(unvalued) == 10
    rfm = audience.resolve(
        crm,
        {
            "rfm": [
                "champions",
                "loyal",
                "at_risk",
                "cant_lose",
                "lost",
                "hibernating",
                "about_to_sleep",
                "need_attention",
                "promising",
                "new",
                "potential_loyalists",
                "other",
            ]
        },
    )
    assert rfm == sorted(ids[:20])


def test_segment_audience_needs_segmentation(ccrm: CRM, make_customers: Any) -> None:
    make_customers(ccrm, 1)
    with pytest.raises(ValidationError, match="needs the segmentation plugin"):
        _create(ccrm, audience={"segment": "at-risk"})


def test_profile_export_erase_merge_and_delete(ccrm: CRM, make_customers: Any) -> None:
    a, b, c = make_customers(ccrm, 3)
    draft = _create(ccrm, audience={"customers": [a, b, c]}, control_share=0)
    launching.launch_campaign(ccrm, draft["id"], send=False)
    profile = ccrm.customers.profile(a)["plugins"]["campaigns"]
    assert profile["campaigns"][0]["campaign_id"] == draft["id"]
    assert profile["campaigns"][0]["group"] == "treatment"
    exported = ccrm.customers.export(a)["plugins"]["campaigns"]
    assert exported["recipients"][0]["campaign_id"] == draft["id"]
    ccrm.customers.erase(a)
    assert len(campaigns.recipients(ccrm, draft["id"])) == 3  # results stay reproducible
    second = _create(ccrm, audience={"customers": [c]}, control_share=0)
    launching.launch_campaign(ccrm, second["id"], send=False)
    ccrm.customers.merge(b, c)  # both in the first campaign: b's assignment stays
    first = {m["customer_id"] for m in campaigns.recipients(ccrm, draft["id"])}
    assert first == {a, b}
    assert [m["customer_id"] for m in campaigns.recipients(ccrm, second["id"])] == [b]
    ccrm.customers.delete(b)
    assert [m["customer_id"] for m in campaigns.recipients(ccrm, draft["id"])] == [a]


def test_metrics_of_a_period(
    ccrm: CRM, clock: FrozenClock, make_customers: Any, purchase: Any
) -> None:
    ids = make_customers(ccrm, 10)
    draft = _create(ccrm, audience={"customers": ids}, control_share="0.5")
    launched = clock()
    launching.launch_campaign(ccrm, draft["id"], send=False)
    clock.advance(days=2)
    members = campaigns.recipients(ccrm, draft["id"])
    treated = [m["customer_id"] for m in members if m["grp"] == "treatment"]
    control = [m["customer_id"] for m in members if m["grp"] == "control"]
    purchase(ccrm, treated[0], clock(), "10")
    purchase(ccrm, treated[1], clock(), "10")
    purchase(ccrm, control[0], clock(), "10")
    found = views.metrics(ccrm, Period(launched, launched + timedelta(days=1)))
    assert found["campaigns_launched"] == 1 and found["treated"] == 5 and found["control"] == 5
    assert (found["treated_conversions"], found["control_conversions"]) == (2, 1)
    assert found["uplift"] == pytest.approx(0.2)
    empty = views.metrics(ccrm, Period(launched - timedelta(days=9), launched))
    assert empty["campaigns_launched"] == 0 and empty["uplift"] == 0.0


def test_results_need_a_launch_and_list_filters(ccrm: CRM, make_customers: Any) -> None:
    make_customers(ccrm, 2)
    draft = _create(ccrm)
    with pytest.raises(ValidationError, match="has not been launched"):
        results.campaign_results(ccrm, draft["id"])
    assert [c["id"] for c in campaigns.list_campaigns(ccrm, status="draft")] == [draft["id"]]
    assert campaigns.list_campaigns(ccrm, status="launched") == []
    with pytest.raises(ValidationError, match="status"):
        campaigns.list_campaigns(ccrm, status="done")


def test_unknown_customers_are_named_to_who_sees_everyone(ccrm: CRM, make_customers: Any) -> None:
    [known] = make_customers(ccrm, 1)
    with pytest.raises(ValidationError, match=r"audience\.customers: 999 is not a customer"):
        _create(ccrm, audience={"customers": [known, 999]})
