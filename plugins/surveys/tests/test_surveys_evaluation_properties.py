"""Issue 18: the evaluation arithmetic against plain-Python loops, and the docs example."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from crmcore_surveys.evaluation import acsi, fuzzy, grey, pca, pls
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import ValidationError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "surveys-evaluation.md"

#: The worked example of the docs: (overall, quality, service, price) answers on 1-5.
EXAMPLE = [
    (5, 5, 4, 4),
    (4, 4, 4, 3),
    (4, 5, 3, 4),
    (3, 3, 3, 2),
    (2, 2, 3, 1),
    (4, 4, 5, 3),
    (5, 4, 5, 5),
    (3, 3, 2, 3),
    (2, 3, 2, 2),
    (4, 4, 4, 4),
]
EXAMPLE_WEIGHTS = np.array([0.5, 0.3, 0.2])


def positions() -> np.ndarray:
    return (np.array(EXAMPLE, dtype=float) - 1) * 25


def example_membership() -> np.ndarray:
    counts = np.zeros((3, 5))
    for row in EXAMPLE:
        for i, rating in enumerate(row[1:]):
            counts[i, rating - 1] += 1
    return fuzzy.membership_from_counts(counts)


def vec(values: np.ndarray | tuple[float, ...], digits: int = 4) -> str:
    return "(" + ", ".join(f"{v:.{digits}f}" for v in values) + ")"


def doc_text() -> str:
    return DOCS.read_text(encoding="utf-8")


def assert_in_docs(*snippets: str) -> None:
    text = re.sub(r"\s+", " ", doc_text())
    for snippet in snippets:
        assert re.sub(r"\s+", " ", snippet) in text, snippet


# --- the docs' worked example -------------------------------------------------------------


def test_docs_worked_example_fuzzy() -> None:
    r = example_membership()
    values = fuzzy.grade_values_of_scale(5)
    weighted = fuzzy.evaluate(EXAMPLE_WEIGHTS, r, values, "weighted")
    maxmin = fuzzy.evaluate(EXAMPLE_WEIGHTS, r, values, "maxmin")
    two = fuzzy.evaluate_two_level(
        EXAMPLE_WEIGHTS, r, values, "weighted", [[0, 2], [1]], np.array([0.6, 0.4])
    )
    assert_in_docs(
        *(f"r_{name} = {vec(r[i], 1)}" for i, name in enumerate(("quality", "service", "price"))),
        f"B = {vec(weighted.vector, 2)}",
        f"S = {weighted.score:.2f}",
        f"raw = {vec(maxmin.raw, 1)}",
        f"B = {vec(maxmin.vector)}",
        f"S = {maxmin.score:.4f}",
        f"B_product = {vec(two.criteria[0].vector)}",
        f"B = {vec(two.total.vector)}",
        f"S = {two.total.score:.4f}",
    )
    assert weighted.grade == maxmin.grade == two.total.grade == 3  # grade "4"


def test_docs_worked_example_grey() -> None:
    normalised = grey.normalise(positions(), "minmax")
    out = grey.relational(normalised[:, 0], normalised[:, 1:], 0.5)
    assert_in_docs(
        f"Dmax = {out.delta_max:.4f}",
        f"xi(1) = {vec(out.coefficients[0])}",
        f"g = {vec(out.grades)}",
    )
    assert grey.ranks(out.grades) == [1, 2, 3]


def test_docs_worked_example_pca() -> None:
    out = pca.pca(positions()[:, 1:])
    assert_in_docs(
        f"l = {vec(out.eigenvalues)}",
        f"u_1 = {vec(out.vectors[:, 0])}",
        f"a_1 = {vec(out.loadings[:, 0])}",
        f"w = {vec(out.weights)}",
        f"S_1 = {out.scores[0]:.4f}",
        f"F_1 = {out.composite[0]:.4f}",
    )
    assert out.retained == 1


def test_docs_worked_example_acsi_index() -> None:
    v = acsi.rescaled_weights(np.array([0.40, 0.35, 0.33]), np.array([1.8, 2.0, 2.2]))
    index = acsi.index(v, np.array([7.6, 7.1, 6.8]), np.ones(3), np.full(3, 10.0))
    assert_in_docs(f"v = {vec(v)}", f"index = {float(index):.2f}")


# --- fuzzy ---------------------------------------------------------------------------------

counts_matrix = st.integers(1, 6).flatmap(
    lambda m: st.integers(2, 7).flatmap(
        lambda g: st.lists(
            st.lists(st.integers(0, 20), min_size=g, max_size=g).filter(lambda r: sum(r) > 0),
            min_size=m,
            max_size=m,
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(counts_matrix, st.data())
def test_fuzzy_composition_matches_plain_loops(
    counts: list[list[int]], data: st.DataObject
) -> None:
    m, g = len(counts), len(counts[0])
    raw_w = data.draw(st.lists(st.floats(0.01, 10), min_size=m, max_size=m))
    w = [x / math.fsum(raw_w) for x in raw_w]
    r = [[c / sum(row) for c in row] for row in counts]
    values = [100 * j / (g - 1) for j in range(g)]
    matrix = fuzzy.membership_from_counts(np.array(counts, dtype=float))
    assert np.allclose(matrix, r, atol=1e-12)
    weighted = fuzzy.evaluate(np.array(raw_w), matrix, np.array(values), "weighted")
    b = [math.fsum(w[i] * r[i][j] for i in range(m)) for j in range(g)]
    assert np.allclose(weighted.vector, b, atol=1e-12)
    assert abs(weighted.score - math.fsum(bj * vj for bj, vj in zip(b, values, strict=True))) < 1e-9
    assert weighted.grade == b.index(max(b)) or math.isclose(b[weighted.grade], max(b))
    maxmin = fuzzy.evaluate(np.array(raw_w), matrix, np.array(values), "maxmin")
    raw = [max(min(w[i], r[i][j]) for i in range(m)) for j in range(g)]
    assert np.allclose(maxmin.raw, raw, atol=1e-12)
    assert np.allclose(maxmin.vector, [x / math.fsum(raw) for x in raw], atol=1e-12)
    assert abs(float(maxmin.vector.sum()) - 1) < 1e-12


@settings(max_examples=40, deadline=None)
@given(counts_matrix, st.data())
def test_two_level_weighted_with_default_criterion_weights_is_single_level(
    counts: list[list[int]], data: st.DataObject
) -> None:
    m = len(counts)
    w = np.array(data.draw(st.lists(st.floats(0.01, 10), min_size=m, max_size=m)))
    labels = data.draw(st.lists(st.integers(0, 2), min_size=m, max_size=m))
    criteria = [[i for i in range(m) if labels[i] == k] for k in range(3)]
    criteria = [c for c in criteria if c]
    r = fuzzy.membership_from_counts(np.array(counts, dtype=float))
    values = fuzzy.grade_values_of_scale(r.shape[1])
    two = fuzzy.evaluate_two_level(w, r, values, "weighted", criteria)
    one = fuzzy.evaluate(w, r, values, "weighted")
    assert np.allclose(two.total.vector, one.vector, atol=1e-12)
    for members, part in zip(criteria, two.criteria, strict=True):
        within = [w[i] / sum(w[k] for k in members) for i in members]
        expected = [
            sum(wi * r[i][j] for wi, i in zip(within, members, strict=True))
            for j in range(r.shape[1])
        ]
        assert np.allclose(part.vector, expected, atol=1e-12)


def plain_membership(points: tuple[float, ...], x: float) -> float:
    a, b, c, d = (points[0], points[1], points[1], points[2]) if len(points) == 3 else points
    if b <= x <= c:
        return 1.0
    if a < x < b:
        return (x - a) / (b - a)
    if c < x < d:
        return (d - x) / (d - c)
    return 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 100), min_size=3, max_size=4).map(lambda p: tuple(sorted(p))),
    st.lists(st.floats(-10, 110), min_size=1, max_size=30),
)
def test_membership_functions_match_plain_piecewise(
    points: tuple[float, ...], xs: list[float]
) -> None:
    f = fuzzy.MembershipFunction.checked(list(points))
    got = f(np.array(xs))
    assert np.allclose(got, [plain_membership(points, x) for x in xs], atol=1e-12)


def test_membership_from_functions_normalises_each_answer() -> None:
    functions = [
        fuzzy.MembershipFunction.checked([0, 0, 50]),
        fuzzy.MembershipFunction.checked([0, 50, 100]),
        fuzzy.MembershipFunction.checked([50, 100, 100]),
    ]
    positions = np.array([0.0, 25.0, 75.0, 100.0])
    r = fuzzy.membership_from_functions(
        positions, np.array([[1, 1, 0, 2], [0, 0, 4, 0]]), functions
    )
    assert np.allclose(r[0], [(1 + 0.5) / 4, 0.5 / 4, 2 / 4])
    assert np.allclose(r[1], [0, 0.5, 0.5])
    with pytest.raises(ValidationError, match="belongs to no grade"):
        fuzzy.answer_memberships(np.array([60.0]), functions[:1])
    with pytest.raises(ValidationError, match="must not decrease"):
        fuzzy.MembershipFunction.checked([10, 5, 20])


# --- grey ----------------------------------------------------------------------------------

grey_matrix = st.integers(2, 12).flatmap(
    lambda n: st.integers(2, 5).flatmap(
        lambda m: st.lists(
            st.lists(st.integers(0, 10), min_size=m, max_size=m), min_size=n, max_size=n
        )
    )
)


@settings(max_examples=60, deadline=None)
@given(grey_matrix, st.floats(0.05, 1.0))
def test_grey_coefficients_match_plain_loops(rows: list[list[int]], rho: float) -> None:
    m = len(rows[0])
    columns = [[float(r[j]) for r in rows] for j in range(m)]
    if any(max(c) == min(c) for c in columns):
        with pytest.raises(ValidationError, match="no variation"):
            grey.normalise(np.array(rows, dtype=float), "minmax")
        return
    norm = [[(x - min(c)) / (max(c) - min(c)) for x in c] for c in columns]
    deltas = [[abs(norm[0][k] - norm[i][k]) for k in range(len(rows))] for i in range(1, m)]
    dmin = min(min(d) for d in deltas)
    dmax = max(max(d) for d in deltas)
    xi = [
        [1.0 if dmax == 0 else (dmin + rho * dmax) / (d + rho * dmax) for d in row]
        for row in deltas
    ]
    grades = [math.fsum(row) / len(row) for row in xi]
    normalised = grey.normalise(np.array(rows, dtype=float), "minmax")
    out = grey.relational(normalised[:, 0], normalised[:, 1:], rho)
    assert np.allclose(out.coefficients.T, xi, atol=1e-12)
    assert np.allclose(out.grades, grades, atol=1e-12)
    mean_norm = grey.normalise(np.array(rows, dtype=float) + 1, "mean")
    assert np.allclose(
        mean_norm[:, 0], [(x + 1) / (math.fsum(columns[0]) / len(rows) + 1) for x in columns[0]]
    )


def test_bad_rho_and_normalisation() -> None:
    for bad in (0, -0.1, 1.5, "x", True, float("nan")):
        with pytest.raises(ValidationError, match="rho"):
            grey.check_rho(bad)
    with pytest.raises(ValidationError, match="normalisation"):
        grey.normalise(np.ones((3, 2)), "initial")
    with pytest.raises(ValidationError, match="mean 0"):
        grey.normalise(np.zeros((3, 2)), "mean")
    assert grey.ranks(np.array([0.5, 0.7, 0.5])) == [2, 1, 3]


# --- pca -----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 30), st.integers(2, 5))
def test_pca_against_plain_formulas(seed: int, n: int, p: int) -> None:
    rng = np.random.default_rng(seed)
    # survey-like: a common factor with positive loadings, plus noise
    common = rng.normal(size=(n, 1)) * rng.uniform(0.3, 2.0, size=p)
    x = common + rng.normal(size=(n, p)) * rng.uniform(0.5, 1.5, size=p) + rng.uniform(0, 9, size=p)
    try:
        out = pca.pca(x)
    except ValidationError as exc:  # only when two dimensions correlate negatively
        assert "sum to 0" in str(exc) and p == 2 and np.corrcoef(x.T)[0, 1] < 0
        return
    rows = x.tolist()
    means = [math.fsum(r[i] for r in rows) / n for i in range(p)]
    sds = [math.sqrt(math.fsum((r[i] - means[i]) ** 2 for r in rows) / (n - 1)) for i in range(p)]
    z = [[(r[i] - means[i]) / sds[i] for i in range(p)] for r in rows]
    corr = [[math.fsum(zr[i] * zr[j] for zr in z) / (n - 1) for j in range(p)] for i in range(p)]
    assert np.allclose(out.correlation, corr, atol=1e-10)
    for j in range(p):
        u = out.vectors[:, j]
        ru = [math.fsum(corr[i][k] * u[k] for k in range(p)) for i in range(p)]
        assert np.allclose(ru, out.eigenvalues[j] * u, atol=1e-8)
        assert u.sum() > 0 or (abs(u.sum()) <= 1e-12 and u[np.argmax(np.abs(u))] > 0)
    assert list(out.eigenvalues) == sorted(out.eigenvalues, reverse=True)
    m = out.retained
    assert m == max(1, sum(1 for v in out.eigenvalues if v > 1))
    total = math.fsum(out.eigenvalues[:m])
    c = [
        math.fsum(out.eigenvalues[j] / total * out.vectors[i, j] for j in range(m))
        for i in range(p)
    ]
    assert np.allclose(out.coefficients, c, atol=1e-12)
    assert np.allclose(out.weights, [ci / math.fsum(c) for ci in c], atol=1e-10)
    composite = [math.fsum(ci * zi for ci, zi in zip(c, zr, strict=True)) for zr in z]
    assert np.allclose(out.composite, composite, atol=1e-9)
    assert np.allclose(
        out.scores, [math.fsum(w * v for w, v in zip(out.weights, r, strict=True)) for r in rows]
    )


def test_pca_retain_by_share_and_bad_inputs() -> None:
    out = pca.pca(positions()[:, 1:], 0.9)
    assert out.retained == 2 and out.cumulative[1] >= 0.9 > out.cumulative[0]
    assert pca.pca(positions()[:, 1:], 1.0).retained == 3
    with pytest.raises(ValidationError, match="no variation"):
        pca.pca(np.column_stack([np.arange(5.0), np.ones(5)]))
    with pytest.raises(ValidationError, match="at least 3 respondents"):
        pca.pca(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValidationError, match="two dimensions"):
        pca.pca(np.ones((5, 1)))
    # two negatively correlated dimensions: u_1 = (1, -1) / sqrt 2, so sum c = 0
    with pytest.raises(ValidationError, match="coefficients sum to 0"):
        pca.pca(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [2.5, 1.0]]))
    for bad in ("most", 0, 1.5, True):
        with pytest.raises(ValidationError, match="retain"):
            pca.check_retain(bad)


# --- pls -----------------------------------------------------------------------------------


def plain_corr(a: list[float], b: list[float]) -> float:
    n = len(a)
    ma, mb = math.fsum(a) / n, math.fsum(b) / n
    sab = math.fsum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    saa = math.fsum((x - ma) ** 2 for x in a)
    sbb = math.fsum((y - mb) ** 2 for y in b)
    return sab / math.sqrt(saa * sbb)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(pls.SCHEMES))
def test_pls_single_indicators_give_the_correlation(seed: int, scheme: str) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=40)
    b = 0.6 * a + rng.normal(size=40)
    model = pls.PathModel.build(["a", "b"], [[0], [1]], [("a", "b")])
    out = pls.estimate(np.column_stack([a, b]), model, scheme)
    r = plain_corr(a.tolist(), b.tolist())
    assert abs(out.paths[1, 0] - r) < 1e-9 and abs(out.r2[1] - r * r) < 1e-9
    assert np.allclose(out.loadings, [1, 1])


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(pls.SCHEMES))
def test_pls_fixed_point_and_regressions_match_plain_loops(seed: int, scheme: str) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    f1 = rng.normal(size=n)
    f2 = 0.5 * f1 + rng.normal(size=n)
    f3 = 0.4 * f1 + 0.4 * f2 + rng.normal(size=n)
    cols = [f + rng.normal(scale=0.6, size=n) for f in (f1, f1, f2, f2, f2, f3, f3)]
    x = np.column_stack(cols)
    model = pls.PathModel.build(
        ["f1", "f2", "f3"], [[0, 1], [2, 3, 4], [5, 6]], [("f1", "f2"), ("f1", "f3"), ("f2", "f3")]
    )
    out = pls.estimate(x, model, scheme)
    z = [[(x[r, h] - x[:, h].mean()) / x[:, h].std() for h in range(x.shape[1])] for r in range(n)]
    y = out.scores
    for j, block in enumerate(model.blocks):
        score = [math.fsum(out.weights[h] * z[r][h] for h in block) for r in range(n)]
        assert np.allclose(score, y[:, j], atol=1e-9)
        for h in block:
            assert abs(out.loadings[h] - plain_corr([zr[h] for zr in z], score)) < 1e-9
    # the path coefficients: least squares of f3 on (f1, f2) by the normal equations
    s11 = math.fsum(y[r, 0] ** 2 for r in range(n))
    s22 = math.fsum(y[r, 1] ** 2 for r in range(n))
    s12 = math.fsum(y[r, 0] * y[r, 1] for r in range(n))
    s13 = math.fsum(y[r, 0] * y[r, 2] for r in range(n))
    s23 = math.fsum(y[r, 1] * y[r, 2] for r in range(n))
    det = s11 * s22 - s12 * s12
    b1, b2 = (s22 * s13 - s12 * s23) / det, (s11 * s23 - s12 * s13) / det
    assert abs(out.paths[2, 0] - b1) < 1e-9 and abs(out.paths[2, 1] - b2) < 1e-9
    assert abs(out.total_effects[2, 0] - (b1 + out.paths[1, 0] * b2)) < 1e-9
    # the fixed point: one more round of mode A leaves the weights where they are
    inner = pls.inner_weights(model, y, scheme)
    proxy = y @ inner
    for j, block in enumerate(model.blocks):
        fresh = [math.fsum(z[r][h] * proxy[r, j] for r in range(n)) / n for h in block]
        ratio = [f / out.weights[h] for f, h in zip(fresh, block, strict=True)]
        assert max(ratio) - min(ratio) < 1e-7 * max(abs(v) for v in ratio)


def test_pls_model_and_data_checks() -> None:
    with pytest.raises(ValidationError, match="cycle"):
        pls.PathModel.build(["a", "b"], [[0], [1]], [("a", "b"), ("b", "a")])
    with pytest.raises(ValidationError, match="no path"):
        pls.PathModel.build(["a", "b", "c"], [[0], [1], [2]], [("a", "b")])
    with pytest.raises(ValidationError, match="two blocks"):
        pls.PathModel.build(["a", "b"], [[0], [0]], [("a", "b")])
    model = pls.PathModel.build(["a", "b"], [[0], [1]], [("a", "b")])
    with pytest.raises(ValidationError, match="indicator 'q2' has no variation"):
        pls.estimate(np.column_stack([np.arange(5.0), np.ones(5)]), model, names=["q1", "q2"])
    with pytest.raises(ValidationError, match="scheme"):
        pls.estimate(np.random.default_rng(1).normal(size=(9, 2)), model, "mode b")


def test_bootstrap_is_seeded_and_percentile() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=50)
    x = np.column_stack([a, 0.5 * a + rng.normal(size=50)])
    model = pls.PathModel.build(["a", "b"], [[0], [1]], [("a", "b")])

    def stat(sample: np.ndarray, fit: pls.PLSOutcome) -> np.ndarray:
        return np.array([fit.paths[1, 0]])

    one = pls.bootstrap(x, model, stat, 200, np.random.default_rng(7))
    two = pls.bootstrap(x, model, stat, 200, np.random.default_rng(7))
    assert np.array_equal(one.samples, two.samples) and one.failed == 0
    low, high = one.interval(0.95)
    ordered = sorted(one.samples[:, 0])
    assert abs(low[0] - float(np.percentile(ordered, 2.5))) < 1e-12
    assert low[0] < 0.5 * math.sqrt(1 / 1.25) * 2 and high[0] > low[0]
    # each resample is the correlation of the resampled rows
    picks = np.random.default_rng(7).integers(0, 50, size=50)
    assert abs(one.samples[0, 0] - plain_corr(x[picks, 0].tolist(), x[picks, 1].tolist())) < 1e-9
