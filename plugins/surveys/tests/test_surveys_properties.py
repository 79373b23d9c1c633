"""Property tests: SQL scores equal a straightforward Python computation on random responses."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

from crmcore_surveys import catalog, responses
from crmcore_surveys.scoring import survey_report
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM

DEFINITION: dict[str, Any] = {
    "title": "P",
    "questions": [
        {"id": "n", "type": "rating", "text": "n", "scale": {"min": 0, "max": 10}, "metric": "nps"},
        {
            "id": "c",
            "type": "rating",
            "text": "c",
            "scale": {"min": 1, "max": 7},
            "metric": "csat",
            "required": False,
        },
        {
            "id": "e",
            "type": "rating",
            "text": "e",
            "scale": {"min": 1, "max": 5},
            "dimension": "d",
            "required": False,
        },
        {
            "id": "p",
            "type": "rating",
            "text": "p",
            "scale": {"min": 1, "max": 5},
            "dimension": "d",
            "required": False,
        },
    ],
    "pairs": [{"expectation": "e", "perception": "p"}],
}

answer_sets = st.lists(
    st.fixed_dictionaries(
        {"n": st.integers(0, 10)},
        optional={"c": st.integers(1, 7), "e": st.integers(1, 5), "p": st.integers(1, 5)},
    ),
    min_size=1,
    max_size=40,
)

_keys = itertools.count()


def close(a: float | None, b: float) -> bool:
    """Close."""
    return a is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answer_sets)
def test_scores_match_python(scrm: CRM, data: list[dict[str, int]]) -> None:
    """Scores match python."""
    key = f"p{next(_keys)}"  # a fresh survey per example: no state to reset
    catalog.create_survey(scrm, {**DEFINITION, "key": key})
    cid = scrm.customers.create({"name": f"C {key}"}).id
    responses.record_responses(
        scrm, ({"survey": key, "customer_id": cid, "answers": a} for a in data)
    )
    report = survey_report(scrm, key, trend=None)

    nps = [a["n"] for a in data]
    expected = 100 * (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)) / len(nps)
    assert close(report["nps"]["value"], expected)
    assert report["nps"]["passives"] == sum(7 <= s <= 8 for s in nps)

    csat = [a["c"] for a in data if "c" in a]
    if csat:
        assert close(report["csat"]["value"], 100 * sum(s >= 6 for s in csat) / len(csat))
        assert close(report["csat"]["mean"], statistics.fmean(csat))
    else:
        assert report["csat"] is None

    perceived = [float(a["p"]) for a in data if "p" in a]
    dims = report["dimensions"]
    if perceived:
        assert close(dims[0]["mean"], statistics.fmean(perceived))
        if len(perceived) > 1:
            half = 1.959963984540054 * statistics.stdev(perceived) / math.sqrt(len(perceived))
            assert close(dims[0]["ci_high"], statistics.fmean(perceived) + half)
    else:
        assert dims == []

    diffs = [float(a["p"] - a["e"]) for a in data if "p" in a and "e" in a]
    if diffs:
        assert close(report["gaps"][0]["gap"], statistics.fmean(diffs))
    else:
        assert report["gaps"] == []
