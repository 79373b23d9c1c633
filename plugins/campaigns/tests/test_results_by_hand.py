"""A small campaign history whose results are computed by hand from the docs' definitions."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from crmcore_campaigns import campaigns, launching, results

from crmcore import CRM
from crmcore.testing import FrozenClock

Z = 1.959963984540054


def _sample_variance(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def test_conversions_uplift_and_intervals_match_hand_arithmetic(
    ccrm: CRM,
    clock: FrozenClock,
    make_customers: Callable[..., list[int]],
    purchase: Callable[..., None],
) -> None:
    ids = make_customers(ccrm, 10)
    draft = campaigns.create_campaign(
        ccrm,
        {
            "name": "hand",
            "audience": {"customers": ids},
            "template": "t",
            "control_share": "0.3",
            "seed": 11,
        },
    )
    launch = clock()
    summary = launching.launch_campaign(ccrm, draft["id"], send=False)
    # held out = (3000 * 10 + 5000) // 10000 = 3
    assert (summary["treated"], summary["control"]) == (7, 3)
    members = campaigns.recipients(ccrm, draft["id"])
    treated = sorted(m["customer_id"] for m in members if m["grp"] == "treatment")
    control = sorted(m["customer_id"] for m in members if m["grp"] == "control")
    assert len(treated) == 7 and len(control) == 3

    clock.advance(days=40)
    day = timedelta(days=1)
    purchase(ccrm, treated[0], launch + day, "100.00")
    purchase(ccrm, treated[1], launch + 5 * day, "50.00")
    purchase(ccrm, treated[1], launch + 30 * day - timedelta(seconds=1), "25.50")
    purchase(ccrm, treated[2], launch + 2 * day, "40.00", "USD")  # converts, no revenue
    purchase(ccrm, treated[3], launch + 30 * day, "80.00")  # window is half-open: out
    purchase(ccrm, treated[4], launch - timedelta(seconds=1), "60.00")  # before launch: out
    purchase(ccrm, control[0], launch + 3 * day, "30.00")

    found = results.campaign_results(ccrm, draft["id"])

    assert found["treated"]["n"] == 7 and found["treated"]["conversions"] == 3
    assert found["control"]["n"] == 3 and found["control"]["conversions"] == 1
    assert found["treated"]["revenue"] == Decimal("175.5")
    assert found["control"]["revenue"] == Decimal("30")

    p_t, p_c = 3 / 7, 1 / 3
    se = math.sqrt(p_t * (1 - p_t) / 7 + p_c * (1 - p_c) / 3)
    uplift = found["uplift"]
    assert math.isclose(uplift["estimate"], 2 / 21, rel_tol=1e-12)
    assert math.isclose(uplift["se"], se, rel_tol=1e-12)
    assert math.isclose(uplift["low"], 2 / 21 - Z * se, rel_tol=1e-12)
    assert math.isclose(uplift["high"], 2 / 21 + Z * se, rel_tol=1e-12)

    rev_t = [100.0, 75.5, 0, 0, 0, 0, 0]
    rev_c = [30.0, 0, 0]
    incremental = (sum(rev_t) / 7 - sum(rev_c) / 3) * 7
    assert math.isclose(incremental, 105.5)
    se_rev = math.sqrt(_sample_variance(rev_t) / 7 + _sample_variance(rev_c) / 3) * 7
    revenue = found["incremental_revenue"]
    assert math.isclose(revenue["estimate"], 105.5, rel_tol=1e-12)
    assert math.isclose(revenue["se"], se_rev, rel_tol=1e-9)
    assert math.isclose(revenue["low"], 105.5 - Z * se_rev, rel_tol=1e-9)
    assert math.isclose(revenue["high"], 105.5 + Z * se_rev, rel_tol=1e-9)

    # nothing was sent (send=False): no cost, no ROI
    assert found["messages_sent"] == 0 and found["cost"] == 0 and found["roi"] is None
    assert found["incremental_margin"] == 105.5  # margin 1.0 by default
    # one variant: no comparison
    assert found["variant_comparison"]["p_value"] is None


def test_empty_control_has_no_interval(ccrm: CRM, make_customers: Callable[..., list[int]]) -> None:
    ids = make_customers(ccrm, 4)
    draft = campaigns.create_campaign(
        ccrm,
        {"name": "all in", "audience": {"customers": ids}, "template": "t", "control_share": 0},
    )
    launching.launch_campaign(ccrm, draft["id"], send=False)
    found = results.campaign_results(ccrm, draft["id"])
    assert found["treated"]["n"] == 4 and found["control"]["n"] == 0
    assert found["uplift"] is None and found["incremental_revenue"] is None
