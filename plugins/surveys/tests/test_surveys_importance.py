"""Relative importance and the IPA grid against a plain-Python computation (issue 18 item 6).

The plain-Python side shares nothing with :mod:`crmcore_surveys.importance`: Pearson
correlations from :func:`statistics.correlation`, inverses by Gauss-Jordan elimination,
the matrix square root by the Denman-Beavers iteration, Shapley values as the mean
over every *ordering* of the predictors (not the subset weights), and the bootstrap
percentiles by hand. The SQL side (the per-response matrix) runs on SQLite and
PostgreSQL through the ``scrm`` fixture.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from crmcore_surveys import catalog, importance, responses, scoring
from crmcore_surveys.scorer import Scope, Scorer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, Period, ValidationError
from crmcore.cli import build_cli
from crmcore.cli.context import CLIState
from crmcore.reporting.report import build_report
from crmcore.reporting.report_html import render_html

Matrix = list[list[float]]


# --- plain-Python linear algebra --------------------------------------------------------


def inverse(a: Matrix) -> Matrix:
    """Gauss-Jordan with partial pivoting."""
    n = len(a)
    m = [row[:] + [float(i == j) for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(n):
            if r != col:
                f = m[r][col]
                m[r] = [v - f * w for v, w in zip(m[r], m[col], strict=True)]
    return [row[n:] for row in m]


def sqrtm(a: Matrix) -> Matrix:
    """Denman-Beavers: Y -> A^(1/2)."""
    n = len(a)
    y, z = [row[:] for row in a], [[float(i == j) for j in range(n)] for i in range(n)]
    for _ in range(60):
        yi, zi = inverse(y), inverse(z)
        y, z = (
            [
                [(p + q) / 2 for p, q in zip(r1, r2, strict=True)]
                for r1, r2 in zip(y, zi, strict=True)
            ],
            [
                [(p + q) / 2 for p, q in zip(r1, r2, strict=True)]
                for r1, r2 in zip(z, yi, strict=True)
            ],
        )
    return y


def plain_model(rows: list[list[float]]) -> dict[str, Any]:
    """beta, R^2, relative weights and Shapley values of y (last column) on the others."""
    k = len(rows[0]) - 1
    cols = [[r[j] for r in rows] for j in range(k + 1)]
    corr = [
        [1.0 if i == j else statistics.correlation(cols[i], cols[j]) for j in range(k + 1)]
        for i in range(k + 1)
    ]
    rxx = [row[:k] for row in corr[:k]]
    rxy = [corr[i][k] for i in range(k)]
    beta = [sum(v * r for v, r in zip(row, rxy, strict=True)) for row in inverse(rxx)]
    r2 = sum(b * r for b, r in zip(beta, rxy, strict=True))
    lam = sqrtm(rxx)
    b = [sum(v * r for v, r in zip(row, rxy, strict=True)) for row in inverse(lam)]
    raw = [sum(lam[j][m] ** 2 * b[m] ** 2 for m in range(k)) for j in range(k)]

    def r2_of(subset: tuple[int, ...]) -> float:
        if not subset:
            return 0.0
        sub = [[rxx[i][j] for j in subset] for i in subset]
        vec = [rxy[i] for i in subset]
        inv = inverse(sub)
        return sum(vec[i] * inv[i][j] * vec[j] for i in range(len(vec)) for j in range(len(vec)))

    shapley = [0.0] * k
    orders = list(itertools.permutations(range(k)))
    for order in orders:
        for position, j in enumerate(order):
            before = tuple(sorted(order[:position]))
            shapley[j] += (r2_of(tuple(sorted((*before, j)))) - r2_of(before)) / len(orders)
    return {"beta": beta, "r2": r2, "raw": raw, "shapley": shapley}


def percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile, by hand."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q / 100
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def close(a: float | None, b: float, tol: float = 1e-7) -> bool:
    """Close."""
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


# --- the pure functions ------------------------------------------------------------------

matrices = st.integers(3, 4).flatmap(
    lambda k: st.lists(
        st.lists(st.integers(1, 5), min_size=k + 1, max_size=k + 1), min_size=k + 4, max_size=30
    )
)


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_model_matches_plain_python(raw_rows: list[list[int]]) -> None:
    """beta, R^2, relative weights, Shapley: numpy equals the plain-Python model."""
    data = np.asarray(raw_rows, dtype=float)
    k = data.shape[1] - 1
    names = [f"d{j}" for j in range(k)]
    result = importance.relative_importance(data, names, resamples=0)
    cols = [[r[j] for r in raw_rows] for j in range(k + 1)]
    constant = [len(set(c)) == 1 for c in cols]
    if constant[-1] or all(constant[:-1]):
        assert result["r2"] is None
        return
    used = [j for j in range(k) if not constant[j]]
    rows = [[float(r[j]) for j in [*used, k]] for r in raw_rows]
    sub = np.asarray(rows)[:, :-1]
    if np.linalg.matrix_rank(sub - sub.mean(axis=0)) < len(used):
        return  # collinear: the plain model has no inverse (numpy shares the weight instead)
    plain = plain_model(rows)
    assert close(result["r2"], plain["r2"])
    assert close(sum(i["raw_weight"] or 0.0 for i in result["items"]), plain["r2"])
    for position, j in enumerate(used):
        item = result["items"][j]
        assert close(item["beta"], plain["beta"][position], 1e-6)
        assert close(item["raw_weight"], plain["raw"][position], 1e-6)
        if plain["r2"] > 1e-9:
            assert close(item["importance"], 100 * plain["raw"][position] / plain["r2"], 1e-5)
            assert close(item["shapley"], 100 * plain["shapley"][position] / plain["r2"], 1e-5)
    for j in range(k):
        if j not in used:
            assert result["items"][j]["beta"] is None and result["items"][j]["importance"] is None


def test_bootstrap_is_the_seeded_percentile_bootstrap() -> None:
    """The intervals are the 2.5/97.5 percentiles of refits on resamples drawn by the seed."""
    gen = np.random.default_rng(5)
    x = gen.normal(size=(40, 3))
    data = np.column_stack([x, x @ [0.6, 0.3, 0.1] + gen.normal(size=40)])
    result = importance.relative_importance(data, ["a", "b", "c"], resamples=50, seed=11)
    again = importance.relative_importance(data, ["a", "b", "c"], resamples=50, seed=11)
    other = importance.relative_importance(data, ["a", "b", "c"], resamples=50, seed=12)
    assert result == again and result != other
    rng = np.random.default_rng(11)
    fits = []
    for _ in range(50):
        picked = rng.integers(0, 40, size=40)
        fits.append(plain_model([list(map(float, data[i])) for i in picked]))
    for j, item in enumerate(result["items"]):
        betas = [f["beta"][j] for f in fits]
        shares = [100 * f["raw"][j] / f["r2"] for f in fits]
        shap = [100 * f["shapley"][j] / f["r2"] for f in fits]
        assert close(item["beta_ci_low"], percentile(betas, 2.5), 1e-6)
        assert close(item["beta_ci_high"], percentile(betas, 97.5), 1e-6)
        assert close(item["importance_ci_low"], percentile(shares, 2.5), 1e-5)
        assert close(item["shapley_ci_high"], percentile(shap, 97.5), 1e-5)
    assert close(result["r2_ci_low"], percentile([f["r2"] for f in fits], 2.5), 1e-6)


def test_ipa_grid_splits_at_the_means() -> None:
    """Quadrants by the mean importance and the mean performance; ties count as high."""
    grid = importance.ipa_grid(
        {"a": 40.0, "b": 30.0, "c": 20.0, "d": 10.0, "e": None},
        {"a": 50.0, "b": 80.0, "c": 40.0, "d": 70.0, "e": 99.0},
    )
    assert grid["importance_split"] == 25.0 and grid["performance_split"] == 60.0
    assert [(i["dimension"], i["quadrant"]) for i in grid["items"]] == [
        ("a", "concentrate here"),
        ("b", "keep up the good work"),
        ("c", "low priority"),
        ("d", "possible overkill"),
    ]
    tie = importance.ipa_grid({"a": 50.0, "b": 50.0}, {"a": 60.0, "b": 60.0})
    assert {i["quadrant"] for i in tie["items"]} == {"keep up the good work"}
    assert importance.ipa_grid({}, {})["items"] == []


# --- through the database (SQLite and PostgreSQL) -------------------------------------------


def _rating(qid: str, dimension: str | None = None, **extra: Any) -> dict[str, Any]:
    question = {"id": qid, "type": "rating", "text": qid, "scale": {"min": 1, "max": 5}}
    if dimension:
        question["dimension"] = dimension
    return {**question, "required": False, **extra}


SURVEY: dict[str, Any] = {
    "title": "Drivers",
    "questions": [
        _rating("overall", overall=True),
        _rating("a1", "alpha"),
        _rating("a2", "alpha"),
        _rating("b1", "beta"),
        _rating("g1", "gamma"),
    ],
}
answer_rows = st.lists(
    st.fixed_dictionaries({q: st.integers(0, 5) for q in ("overall", "a1", "a2", "b1", "g1")}).map(
        lambda a: {q: v for q, v in a.items() if v}  # 0: not answered
    ),
    min_size=8,
    max_size=40,
)
_keys = itertools.count()


def _norm(r: int) -> float:
    return 100.0 * (r - 1) / 4


def _complete(data: list[dict[str, int]]) -> list[list[float]]:
    rows = []
    for a in data:
        alpha = [_norm(a[q]) for q in ("a1", "a2") if q in a]
        if not alpha or "b1" not in a or "g1" not in a or "overall" not in a:
            continue
        rows.append([statistics.fmean(alpha), _norm(a["b1"]), _norm(a["g1"]), _norm(a["overall"])])
    return rows


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answer_rows)
def test_report_importance_matches_plain_python(scrm: CRM, data: list[dict[str, int]]) -> None:
    """The report's importance: complete responses from SQL, the plain-Python model, IPA."""
    key = f"drv{next(_keys)}"
    catalog.create_survey(scrm, {**SURVEY, "key": key})
    cid = scrm.customers.create({"name": f"C {key}"}).id
    responses.record_responses(
        scrm, ({"survey": key, "customer_id": cid, "answers": a} for a in data if a)
    )
    if not any(data):
        return
    report = scoring.survey_report(scrm, key, trend=None, bootstrap=0)
    found = report["importance"]
    if found is None:
        assert not report["dimensions"]
        return
    rows = _complete(data)
    assert found["n"] == len(rows)
    assert found["overall"] == ["overall"]
    dims = [d["dimension"] for d in report["dimensions"]]
    names = ["alpha", "beta", "gamma"]
    if dims != names or len(rows) < 5:
        return
    array = np.asarray(rows)
    with scrm.reading() as uow:
        scorer = Scorer(scrm, uow.connection, Scope(key))
        overall = {v.id: "overall" for v in scorer.versions()}
        assert np.allclose(importance.driver_matrix(scorer, overall, names), array)
    expected = importance.relative_importance(array, names, resamples=0)
    if expected["r2"] is None:
        assert found["r2"] is None
    else:
        assert close(found["r2"], expected["r2"])
    for item, wanted in zip(found["items"], expected["items"], strict=True):
        for field in ("beta", "importance", "shapley"):
            if wanted[field] is None:
                assert item[field] is None
            else:
                assert close(item[field], wanted[field], 1e-6)
    scores = {d["dimension"]: d["score"] for d in report["dimensions"]}
    shares = {i["dimension"]: i["importance"] for i in found["items"]}
    assert found["grid"] == importance.ipa_grid(shares, scores)


def test_report_cli_chart_and_html(scrm: CRM) -> None:
    """`crm surveys drivers`, the report's tables, the IPA chart in `crm report --html`."""
    catalog.create_survey(scrm, {**SURVEY, "key": "drv"})
    cid = scrm.customers.create({"name": "C"}).id
    gen = np.random.default_rng(3)
    rows = []
    for _ in range(60):
        a, b, g = (int(v) for v in gen.integers(1, 6, size=3))
        overall = max(1, min(5, round(0.6 * a + 0.3 * b + 0.1 * g + gen.normal(0, 0.5))))
        rows.append({"a1": a, "a2": a, "b1": b, "g1": g, "overall": overall})
    responses.record_responses(
        scrm, ({"survey": "drv", "customer_id": cid, "answers": a} for a in rows)
    )
    drivers = scoring.survey_drivers(scrm, "drv", bootstrap=200, seed=1)
    found = drivers["importance"]
    assert found["n"] == 60 and found["resamples"] == 200 and found["seed"] == 1
    top = max(found["items"], key=lambda i: i["importance"])
    assert top["dimension"] == "alpha"
    assert top["importance_ci_low"] < top["importance"] < top["importance_ci_high"]
    assert sum(i["importance"] for i in found["items"]) == pytest.approx(100.0)
    assert sum(i["shapley"] for i in found["items"]) == pytest.approx(100.0)

    runner = CliRunner()
    shown = runner.invoke(
        build_cli(), ["surveys", "drivers", "drv", "--bootstrap", "50"], obj=CLIState(crm=scrm)
    )
    assert shown.exit_code == 0, shown.output
    assert "relative importance" in shown.output and "importance-performance grid" in shown.output
    as_json = runner.invoke(
        build_cli(),
        ["surveys", "report", "drv", "--bootstrap", "0", "--json"],
        obj=CLIState(crm=scrm),
    )
    data = json.loads(as_json.output)
    assert (
        data["importance"]["resamples"] == 0
        and data["importance"]["items"][0]["beta_ci_low"] is None
    )
    bad = runner.invoke(
        build_cli(), ["surveys", "drivers", "drv", "--bootstrap", "-1"], obj=CLIState(crm=scrm)
    )
    assert bad.exit_code != 0
    with pytest.raises(ValidationError, match=r"^bootstrap: "):
        scoring.survey_report(scrm, "drv", bootstrap=-3)

    period = Period(scrm.clock() - timedelta(days=1), scrm.clock() + timedelta(seconds=1))
    report = build_report(scrm, period)
    [chart] = [c for c in report["charts"] if c["source"] == "surveys"]
    assert chart["kind"] == "scatter" and {p[0] for p in chart["points"]} == {
        "alpha",
        "beta",
        "gamma",
    }
    grid = scoring.survey_drivers(scrm, "drv", period=period, bootstrap=0)["importance"]["grid"]
    assert chart["guides"] == [grid["performance_split"], grid["importance_split"]]
    page = render_html(report)
    assert "Importance-performance grid: drv" in page and "<circle" in page
