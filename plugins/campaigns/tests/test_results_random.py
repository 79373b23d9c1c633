"""Results on a random history equal the docs' definitions computed in plain Python."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from crmcore_campaigns import campaigns, launching, results

from crmcore import CRM
from crmcore.testing import FrozenClock

Z = 1.959963984540054


@pytest.mark.parametrize("seed", [1, 2])
def test_random_history_matches_plain_arithmetic(
    ccrm: CRM,
    clock: FrozenClock,
    make_customers: Callable[..., list[int]],
    purchase: Callable[..., None],
    seed: int,
) -> None:
    rng = random.Random(seed)
    ids = make_customers(ccrm, 60)
    draft = campaigns.create_campaign(
        ccrm,
        {
            "name": "random",
            "audience": {"customers": ids},
            "variants": [{"name": "A", "template": "a"}, {"name": "B", "template": "b"}],
            "control_share": "0.25",
            "attribution_days": 10,
            "seed": seed,
        },
    )
    start = clock()
    launching.launch_campaign(ccrm, draft["id"], send=False)
    clock.advance(days=20)
    members = {
        m["customer_id"]: m["variant"] or "control" for m in campaigns.recipients(ccrm, draft["id"])
    }
    bought: dict[int, list[tuple[timedelta, Decimal, str]]] = {}
    for cid in ids:
        for _ in range(rng.choice([0, 0, 1, 2])):
            offset = timedelta(hours=rng.randint(-48, 14 * 24))
            amount = Decimal(rng.randint(100, 99999)) / 100
            currency = rng.choice(["EUR", "EUR", "EUR", "USD"])
            purchase(ccrm, cid, start + offset, str(amount), currency)
            bought.setdefault(cid, []).append((offset, amount, currency))
    in_window = {
        cid: [p for p in found if timedelta(0) <= p[0] < timedelta(days=10)]
        for cid, found in bought.items()
    }

    def group(names: set[str]) -> tuple[int, int, list[float]]:
        chosen = [c for c, g in members.items() if g in names]
        conv = sum(1 for c in chosen if in_window.get(c))
        rev = [
            float(sum((a for _, a, cur in in_window.get(c, []) if cur == "EUR"), Decimal(0)))
            for c in chosen
        ]
        return len(chosen), conv, rev

    found = results.campaign_results(ccrm, draft["id"])
    n_t, c_t, r_t = group({"A", "B"})
    n_c, c_c, r_c = group({"control"})
    assert (found["treated"]["n"], found["treated"]["conversions"]) == (n_t, c_t)
    assert (found["control"]["n"], found["control"]["conversions"]) == (n_c, c_c)
    p_t, p_c = c_t / n_t, c_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    assert found["uplift"]["estimate"] == pytest.approx(p_t - p_c, abs=1e-12)
    assert found["uplift"]["low"] == pytest.approx(p_t - p_c - Z * se, abs=1e-12)
    assert found["uplift"]["high"] == pytest.approx(p_t - p_c + Z * se, abs=1e-12)
    incremental = (sum(r_t) / n_t - sum(r_c) / n_c) * n_t
    w = math.sqrt(statistics.variance(r_t) / n_t + statistics.variance(r_c) / n_c) * n_t
    revenue = found["incremental_revenue"]
    assert revenue["estimate"] == pytest.approx(incremental, abs=1e-6)
    assert revenue["low"] == pytest.approx(incremental - Z * w, rel=1e-9)
    assert revenue["high"] == pytest.approx(incremental + Z * w, rel=1e-9)
    for variant in found["variants"]:
        n_v, c_v, _ = group({variant["variant"]})
        assert (variant["n"], variant["conversions"]) == (n_v, c_v)
        p_v = c_v / n_v
        se_v = math.sqrt(p_v * (1 - p_v) / n_v + p_c * (1 - p_c) / n_c)
        assert variant["uplift"]["low"] == pytest.approx(p_v - p_c - Z * se_v, abs=1e-12)
