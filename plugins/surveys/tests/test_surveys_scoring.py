"""Scores against straightforward Python computations on a fixed reference set."""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crmcore_surveys import catalog, responses
from crmcore_surveys.scoring import survey_report
from crmcore_surveys.statistics import Z95
from crmcore_surveys.trends import trend_buckets
from crmcore_surveys.weights import ahp

from crmcore import CRM, NotFoundError, Period, ValidationError

TOL = 1e-9


def rating(qid: str, lo: int, hi: int, **extra: Any) -> dict[str, Any]:
    """Rating."""
    return {
        "id": qid,
        "type": "rating",
        "text": qid,
        "scale": {"min": lo, "max": hi},
        "required": False,
        **extra,
    }


REFERENCE = {
    "key": "ref",
    "title": "Reference",
    "questions": [
        rating("nps", 0, 10, metric="nps"),
        rating("sat", 1, 5, metric="csat", overall=True),
        rating("effort", 1, 7, metric="ces"),
        rating("q1", 1, 5, dimension="alpha", weight=2),
        rating("q2", 1, 5, dimension="alpha", weight=1),
        rating("q3", 1, 7, dimension="beta", weight=1.5),
        rating("e1", 1, 7, dimension="gamma"),
        rating("p1", 1, 7, dimension="gamma", weight=0.5),
    ],
    "pairs": [{"expectation": "e1", "perception": "p1"}],
}
SCALES = {q["id"]: (q["scale"]["min"], q["scale"]["max"]) for q in REFERENCE["questions"]}
WEIGHTS = {"q1": 2.0, "q2": 1.0, "q3": 1.5, "p1": 0.5}
DIMS = {"q1": "alpha", "q2": "alpha", "q3": "beta", "p1": "gamma"}
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def norm(qid: str, r: int) -> float:
    """Norm."""
    lo, hi = SCALES[qid]
    return 100.0 * (r - lo) / (hi - lo)


def reference_answers(seed: int = 3, n: int = 60) -> list[dict[str, int]]:
    """Reference answers."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        answers = {}
        for qid, (lo, hi) in SCALES.items():
            if rng.random() < 0.85:
                answers[qid] = rng.randint(lo, hi)
        answers["nps"] = rng.randint(0, 10)
        out.append(answers)
    return out


@pytest.fixture
def loaded(scrm: CRM) -> tuple[CRM, list[dict[str, int]], list[int], list[datetime]]:
    """Loaded."""
    catalog.create_survey(scrm, REFERENCE)
    made = scrm.customers.create_many(
        {"name": f"C{i}", "attributes": {"region": "north" if i % 2 else "south"}} for i in range(6)
    )
    ids = [c.id for c in made if c.id is not None]
    data = reference_answers()
    owners = [ids[i % len(ids)] for i in range(len(data))]
    times = [T0 + timedelta(days=3 * i) for i in range(len(data))]
    responses.record_responses(
        scrm,
        (
            {"survey": "ref", "customer_id": c, "answers": a, "answered_at": t}
            for a, c, t in zip(data, owners, times, strict=True)
        ),
        batch_size=17,
    )
    return scrm, data, owners, times


def close(a: float | None, b: float | None) -> bool:
    """Close."""
    assert a is not None and b is not None
    return abs(a - b) <= TOL * max(1.0, abs(b))


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean ci."""
    m = statistics.fmean(values)
    half = Z95 * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


def test_nps_csat_ces(loaded: tuple[CRM, list[dict[str, int]], list[int], list[datetime]]) -> None:
    """Nps csat ces."""
    crm, data, _, _ = loaded
    report = survey_report(crm, "ref")
    assert report["responses"] == len(data)
    scores = [a["nps"] for a in data]
    n = len(scores)
    pro, det = sum(s >= 9 for s in scores), sum(s <= 6 for s in scores)
    assert report["nps"]["n"] == n
    assert (report["nps"]["promoters"], report["nps"]["detractors"]) == (pro, det)
    assert close(report["nps"]["value"], 100 * (pro - det) / n)
    var = (pro / n + det / n - (pro / n - det / n) ** 2) / n
    assert close(report["nps"]["ci_high"], 100 * (pro - det) / n + Z95 * 100 * math.sqrt(var))

    sat = [a["sat"] for a in data if "sat" in a]
    top2 = sum(s >= 4 for s in sat)
    assert close(report["csat"]["value"], 100 * top2 / len(sat))
    p, z2, k = top2 / len(sat), Z95**2, len(sat)
    centre = (p + z2 / (2 * k)) / (1 + z2 / k)
    half = Z95 * math.sqrt(p * (1 - p) / k + z2 / (4 * k * k)) / (1 + z2 / k)
    assert close(report["csat"]["ci_low"], 100 * (centre - half))
    assert close(report["csat"]["mean"], statistics.fmean(sat))

    effort = [float(a["effort"]) for a in data if "effort" in a]
    m, lo, hi = mean_ci(effort)
    assert close(report["ces"]["value"], m)
    assert close(report["ces"]["ci_low"], lo) and close(report["ces"]["ci_high"], hi)


def test_dimension_means_index_gaps_drivers(
    loaded: tuple[CRM, list[dict[str, int]], list[int], list[datetime]],
) -> None:
    """Dimension means index gaps drivers."""
    crm, data, _, _ = loaded
    report = survey_report(crm, "ref")
    dims = {d["dimension"]: d for d in report["dimensions"]}
    assert set(dims) == {"alpha", "beta", "gamma"}
    for name in dims:
        raw = [float(a[q]) for a in data for q in DIMS if DIMS[q] == name and q in a]
        m, lo, hi = mean_ci(raw)
        assert dims[name]["n"] == len(raw)
        assert close(dims[name]["mean"], m) and close(dims[name]["ci_low"], lo)
        scaled = [norm(q, a[q]) for a in data for q in DIMS if DIMS[q] == name and q in a]
        assert close(dims[name]["score"], statistics.fmean(scaled))

    per_response = []
    for a in data:
        answered = [q for q in WEIGHTS if q in a]
        if answered:
            total = sum(WEIGHTS[q] for q in answered)
            per_response.append(sum(WEIGHTS[q] * norm(q, a[q]) for q in answered) / total)
    m, lo, hi = mean_ci(per_response)
    assert report["index"]["n"] == len(per_response)
    assert close(report["index"]["value"], m) and close(report["index"]["ci_high"], hi)

    diffs = [float(a["p1"] - a["e1"]) for a in data if "p1" in a and "e1" in a]
    [gap] = report["gaps"]
    m, lo, hi = mean_ci(diffs)
    assert gap["dimension"] == "gamma" and gap["n"] == len(diffs)
    assert close(gap["gap"], m) and close(gap["ci_low"], lo)
    pairs = [a for a in data if "p1" in a and "e1" in a]
    assert close(gap["expectation"], statistics.fmean(a["e1"] for a in pairs))
    assert close(gap["perception"], statistics.fmean(a["p1"] for a in pairs))

    drivers = {d["dimension"]: d for d in report["drivers"]["items"]}
    assert report["drivers"]["overall"] == ["sat"]
    for name in ("alpha", "beta"):
        xs, ys = [], []
        for a in data:
            qs = [q for q in DIMS if DIMS[q] == name and q in a]
            if qs and "sat" in a:
                xs.append(statistics.fmean(norm(q, a[q]) for q in qs))
                ys.append(norm("sat", a["sat"]))
        assert drivers[name]["n"] == len(xs)
        assert close(drivers[name]["r"], statistics.correlation(xs, ys))
    rs = [d["r"] for d in report["drivers"]["items"]]
    assert rs == sorted(rs, reverse=True)


def test_entropy_and_ahp_weights(
    loaded: tuple[CRM, list[dict[str, int]], list[int], list[datetime]],
) -> None:
    """Entropy and ahp weights."""
    crm, data, _, _ = loaded
    report = survey_report(crm, "ref", weighting="entropy")
    names = ["alpha", "beta", "gamma"]
    matrix = []
    for a in data:
        row = []
        for name in names:
            qs = [q for q in DIMS if DIMS[q] == name and q in a]
            row.append(statistics.fmean(norm(q, a[q]) for q in qs) if qs else None)
        if None not in row:
            matrix.append(row)
    m = len(matrix)
    d = []
    for j in range(3):
        col = [r[j] for r in matrix]
        lo, hi = min(col), max(col)
        y = [(v - lo) / (hi - lo) for v in col]
        e = -sum((v / sum(y)) * math.log(v / sum(y)) for v in y if v > 0) / math.log(m)
        d.append(1 - e)
    expected = {name: d[j] / sum(d) for j, name in enumerate(names)}
    got = report["index"]["weights"]
    assert report["index"]["complete_responses"] == m
    assert all(close(got[k], expected[k]) for k in names)

    pairwise = [[1, 3, 5], [1 / 3, 1, 2], [1 / 5, 1 / 2, 1]]
    report = survey_report(crm, "ref", weighting="ahp", ahp_matrix=pairwise)
    result = ahp(pairwise)
    assert close(report["index"]["ahp"]["consistency_ratio"], result.consistency_ratio)
    w = dict(zip(["alpha", "beta", "gamma"], result.weights, strict=True))
    dim_w = {"alpha": 3.0, "beta": 1.5, "gamma": 0.5}  # declared sums per dimension
    per_response = []
    for a in data:
        answered = [q for q in WEIGHTS if q in a]
        v = {q: w[DIMS[q]] * WEIGHTS[q] / dim_w[DIMS[q]] for q in answered}
        if answered:
            per_response.append(sum(v[q] * norm(q, a[q]) for q in answered) / sum(v.values()))
    assert close(report["index"]["value"], statistics.fmean(per_response))
    with pytest.raises(ValidationError, match="ahp_matrix: consistency ratio"):
        survey_report(
            crm, "ref", weighting="ahp", ahp_matrix=[[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]
        )


def test_breakdown_trend_and_period(
    loaded: tuple[CRM, list[dict[str, int]], list[int], list[datetime]],
) -> None:
    """Breakdown trend and period."""
    crm, data, owners, times = loaded
    regions = {}
    for c in set(owners):
        regions[c] = crm.customers.get(c).attributes["region"]
    report = survey_report(crm, "ref", by="attributes.region", trend="month")
    groups = {g["group"]: g for g in report["breakdown"]["groups"]}
    for region in ("north", "south"):
        scores = [a["nps"] for a, c in zip(data, owners, strict=True) if regions[c] == region]
        n = len(scores)
        expected = 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / n
        assert groups[region]["responses"] == n
        assert close(groups[region]["nps"]["value"], expected)
    months: dict[str, int] = {}
    for t in times:
        months[t.strftime("%Y-%m")] = months.get(t.strftime("%Y-%m"), 0) + 1
    assert {r["group"]: r["responses"] for r in report["trend"] if r["responses"]} == months

    period = Period(times[10], times[20])
    scoped = survey_report(crm, "ref", period=period, trend=None)
    scores = [a["nps"] for a, t in zip(data, times, strict=True) if times[10] <= t < times[20]]
    assert scoped["responses"] == 10
    assert close(
        scoped["nps"]["value"],
        100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores),
    )
    with pytest.raises(ValidationError, match="by: 'colour' is not one of"):
        survey_report(crm, "ref", by="colour")
    with pytest.raises(NotFoundError):
        survey_report(crm, "nope")


def test_trend_buckets() -> None:
    """Trend buckets."""
    start = datetime(2026, 1, 30, 15, tzinfo=UTC)
    buckets = trend_buckets(start, datetime(2026, 4, 2, tzinfo=UTC), "month")
    assert [b[0] for b in buckets] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert [b[0] for b in trend_buckets(start, start + timedelta(days=1), "quarter")] == ["2026-Q1"]
    with pytest.raises(ValidationError, match="trend: 'year' is not one of"):
        trend_buckets(start, start, "year")


def test_empty_survey_report(scrm: CRM) -> None:
    """Empty survey report."""
    catalog.create_survey(scrm, REFERENCE)
    report = survey_report(scrm, "ref")
    assert report["responses"] == 0 and report["nps"] is None and report["index"] is None
