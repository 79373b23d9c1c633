"""Issue 18: crm surveys evaluate on SQLite and PostgreSQL: SQL loading, options, bad paths, CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from crmcore_surveys import catalog, responses
from crmcore_surveys.cli import surveys
from crmcore_surveys.evaluation import acsi, fuzzy, grey, pca, pls
from crmcore_surveys.evaluation.service import evaluate
from crmcore_surveys.scoring import survey_report
from crmcore_surveys.templates import template

from crmcore import CRM, NotFoundError, ValidationError
from crmcore.cli.context import CLIState

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
DIMS = ("quality", "service", "price")
TOL = 1e-9


def rating(qid: str, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "type": "rating", "text": qid, "scale": {"min": 1, "max": 5}, **extra}


DEFINITION = {
    "key": "example",
    "title": "Worked example",
    "questions": [
        rating("overall", overall=True),
        rating("q", dimension="quality", weight=0.5),
        rating("s", dimension="service", weight=0.3),
        rating("p", dimension="price", weight=0.2, required=False),
    ],
}


def load_example(crm: CRM, rows: list[tuple[int, ...]] = EXAMPLE) -> list[int]:
    catalog.create_survey(crm, DEFINITION)
    made = crm.customers.create_many(
        {"name": f"E{i}", "attributes": {"region": "north" if i % 2 else "south"}}
        for i in range(len(rows))
    )
    ids = [c.id for c in made if c.id is not None]
    responses.record_responses(
        crm,
        (
            {
                "survey": "example",
                "customer_id": cid,
                "answers": dict(zip(("overall", "q", "s", "p"), row, strict=False)),
            }
            for cid, row in zip(ids, rows, strict=True)
        ),
    )
    return ids


@pytest.fixture
def example(scrm: CRM) -> CRM:
    load_example(scrm)
    return scrm


def close(a: Any, b: Any, tol: float = TOL) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), atol=tol))


def plain_membership(rows: list[tuple[int, ...]]) -> list[list[float]]:
    out = []
    for i in range(3):
        answers = [r[i + 1] for r in rows]
        out.append([answers.count(g) / len(answers) for g in range(1, 6)])
    return out


# --- fuzzy ---------------------------------------------------------------------------------


def test_fuzzy_from_the_sql_grade_counts(example: CRM) -> None:
    result = evaluate(example, "example", "fuzzy")
    data = result.to_dict()
    json.dumps(data)
    assert data["method"] == "fuzzy" and data["header"]["responses"] == 10
    assert [g["name"] for g in data["grades"]] == ["1", "2", "3", "4", "5"]
    assert [g["value"] for g in data["grades"]] == [0, 25, 50, 75, 100]
    assert data["weighting"]["method"] == "declared"
    assert close([d["weight"] for d in data["overall"]["dimensions"]], [0.5, 0.3, 0.2])
    r = plain_membership(EXAMPLE)
    assert close([d["membership"] for d in data["overall"]["dimensions"]], r)
    assert close(result.overall.vector, [0.02, 0.15, 0.30, 0.35, 0.18], 1e-12)
    assert result.overall.grade == "4" and abs(result.overall.score - 63.0) < 1e-9
    maxmin = evaluate(example, "example", "fuzzy", operator="maxmin").overall
    assert close(maxmin.raw, [0.1, 0.2, 0.3, 0.4, 0.2], 1e-12)
    assert close(maxmin.vector, [x / 1.2 for x in (0.1, 0.2, 0.3, 0.4, 0.2)], 1e-12)
    two = evaluate(
        example,
        "example",
        "fuzzy",
        criteria={"product": ["quality", "price"], "people": ["service"]},
        criteria_weights={"product": 0.6, "people": 0.4},
    ).overall
    product = [(0.5 * a + 0.2 * b) / 0.7 for a, b in zip(r[0], r[2], strict=True)]
    assert close(two.criteria[0].vector, product)
    assert close(two.vector, [0.6 * a + 0.4 * b for a, b in zip(product, r[1], strict=True)])
    ahp = evaluate(
        example,
        "example",
        "fuzzy",
        criteria={"product": ["quality", "price"], "people": ["service"]},
        criteria_weights=[[1, 3], [1 / 3, 1]],
    ).overall
    assert close([c.weight for c in ahp.criteria], [0.75, 0.25])


def test_fuzzy_weights_are_the_reports_and_groups_are_their_own(example: CRM) -> None:
    entropy = evaluate(example, "example", "fuzzy", weights="entropy")
    report = survey_report(example, "example", weighting="entropy", trend=None)
    assert entropy.weighting["weights"] == pytest.approx(report["index"]["weights"], abs=1e-12)
    matrix = [[1, 3, 5], [1 / 3, 1, 2], [1 / 5, 1 / 2, 1]]
    ahp = evaluate(example, "example", "fuzzy", weights="ahp", ahp_matrix=matrix)
    assert (
        ahp.weighting["consistency_ratio"] < 0.1 if "consistency_ratio" in ahp.weighting else True
    )
    w = np.array([ahp.weighting["weights"][d] for d in DIMS])
    assert close(ahp.overall.vector, w @ np.array(plain_membership(EXAMPLE)))
    grouped = evaluate(example, "example", "fuzzy", group_by="attributes.region")
    assert sorted(grouped.groups) == ["north", "south"]
    north = [row for i, row in enumerate(EXAMPLE) if i % 2]
    expected = np.array([0.5, 0.3, 0.2]) @ np.array(plain_membership(north))
    assert close(grouped.groups["north"].vector, expected)


def test_fuzzy_membership_functions_pool_every_scale(example: CRM) -> None:
    grades = [
        {"name": "poor", "points": [0, 0, 50]},
        {"name": "fair", "points": [0, 50, 100]},
        {"name": "good", "points": [50, 100, 100], "value": 100},
    ]
    result = evaluate(example, "example", "fuzzy", grades=grades)
    functions = [fuzzy.MembershipFunction.checked(g["points"]) for g in grades]
    for i, d in enumerate(result.overall.dimensions):
        x = np.array([(row[i + 1] - 1) * 25.0 for row in EXAMPLE])
        degrees = np.column_stack([f(x) for f in functions])
        assert close(d.membership, (degrees / degrees.sum(axis=1)[:, None]).mean(axis=0))
    assert [g.value for g in result.grades] == [0.0, 50.0, 100.0]


def test_missing_answers_are_left_out(scrm: CRM) -> None:
    load_example(scrm, [*EXAMPLE, (1, 1, 1)])  # no price answer in the 11th response
    result = evaluate(scrm, "example", "fuzzy")
    assert [d.answers for d in result.overall.dimensions] == [11, 11, 10]
    assert close(result.overall.dimensions[2].membership, plain_membership(EXAMPLE)[2])
    assert evaluate(scrm, "example", "pca").header.responses == 10
    assert evaluate(scrm, "example", "grey").header.responses == 10


# --- grey and pca --------------------------------------------------------------------------


def test_grey_dimensions_to_the_overall_answer(example: CRM) -> None:
    result = evaluate(example, "example", "grey")
    assert result.mode == "dimensions" and result.reference == "overall"
    assert [i.name for i in result.items] == ["quality", "service", "price"]
    assert close([i.grade for i in result.items], [0.8, 2 / 3, 0.63])
    assert [i.rank for i in result.items] == [1, 2, 3]
    x = (np.array(EXAMPLE, dtype=float) - 1) * 25
    norm = grey.normalise(x, "mean")
    out = grey.relational(norm[:, 0], norm[:, 1:], 0.3)
    again = evaluate(example, "example", "grey", rho=0.3, normalisation="mean")
    assert close(sorted(i.grade for i in again.items), sorted(out.grades))


def test_grey_groups_to_the_ideal(example: CRM) -> None:
    result = evaluate(example, "example", "grey", group_by="attributes.region")
    assert result.mode == "groups" and result.reference == "ideal"
    table = []
    for parity in (1, 0):  # north, south
        rows = [r for i, r in enumerate(EXAMPLE) if i % 2 == parity]
        table.append([25 * (sum(r[k] for r in rows) / len(rows) - 1) for k in (1, 2, 3)])
    matrix = np.vstack([np.full(3, 100.0), table])
    norm = (matrix - matrix.min(axis=0)) / (matrix.max(axis=0) - matrix.min(axis=0))
    delta = np.abs(norm[1:] - norm[0])
    xi = (delta.min() + 0.5 * delta.max()) / (delta + 0.5 * delta.max())
    by_name = {i.name: i for i in result.items}
    assert close([by_name["north"].grade, by_name["south"].grade], xi.mean(axis=1))
    assert close(list(by_name["north"].coefficients.values()), xi[0])
    best = evaluate(example, "example", "grey", group_by="attributes.region", reference="best")
    assert max(i.grade for i in best.items) <= 1 + 1e-12


def test_pca_weights_and_composite_scores(example: CRM) -> None:
    result = evaluate(example, "example", "pca", group_by="attributes.region")
    x = (np.array(EXAMPLE, dtype=float)[:, 1:] - 1) * 25
    out = pca.pca(x)
    assert result.retained == 1 and result.header.responses == 10
    assert close([d.weight for d in result.dimensions], out.weights)
    assert close([c.eigenvalue for c in result.components], out.eigenvalues)
    assert close(sorted(r.score for r in result.respondents), sorted(out.scores))
    linked = [r for r in result.respondents if r.customer_id is not None]
    assert len(linked) == 10
    means = {g.group: g.score for g in result.groups}
    odd = [s for i, s in enumerate(out.scores) if i % 2]
    assert abs(means["north"] - sum(odd) / len(odd)) < TOL
    assert evaluate(example, "example", "pca", retain=0.9).retained == 2


# --- acsi ----------------------------------------------------------------------------------


def acsi_answers(n: int, seed: int) -> list[dict[str, int]]:
    rng = np.random.default_rng(seed)
    questions = [q for q in template("acsi")["questions"] if q["type"] == "rating"]
    out = []
    for _ in range(n):
        e = rng.normal()
        q = 0.6 * e + rng.normal(scale=0.8)
        v = 0.2 * e + 0.6 * q + rng.normal(scale=0.7)
        s = 0.1 * e + 0.5 * q + 0.35 * v + rng.normal(scale=0.5)
        c = -0.6 * s + rng.normal(scale=0.9)
        loy = 0.6 * s - 0.15 * c + rng.normal(scale=0.7)
        level = {
            "expectations": e,
            "perceived quality": q,
            "perceived value": v,
            "satisfaction": s,
            "loyalty": loy,
        }
        answers = {}
        for item in questions:
            if item["id"] == "complained":
                answers["complained"] = int(c > 0.6)
                continue
            raw = 6.5 + 1.5 * level[item["dimension"]] + rng.normal(scale=0.9)
            answers[item["id"]] = int(np.clip(np.rint(raw), 1, 10))
        out.append(answers)
    return out


@pytest.fixture
def acsi_crm(scrm: CRM) -> tuple[CRM, list[dict[str, int]]]:
    catalog.create_survey(scrm, template("acsi"))
    made = scrm.customers.create_many(
        {"name": f"A{i}", "attributes": {"tier": "gold" if i % 3 == 0 else "basic"}}
        for i in range(80)
    )
    answers = acsi_answers(80, 11)
    responses.record_responses(
        scrm,
        (
            {"survey": "acsi", "customer_id": c.id, "answers": a}
            for c, a in zip(made, answers, strict=True)
        ),
    )
    return scrm, answers


def test_acsi_model_matches_the_pure_estimate(acsi_crm: tuple[CRM, list[dict[str, int]]]) -> None:
    crm, answers = acsi_crm
    result = evaluate(crm, "acsi", "acsi", scheme="path")
    names = [lv.name for lv in result.latent]
    assert names == list(acsi.LATENT)
    questions = [q for lv in result.latent for q in lv.questions]
    x = np.array([[a[q] for q in questions] for a in answers], dtype=float)
    blocks, start = [], 0
    for lv in result.latent:
        blocks.append(list(range(start, start + len(lv.questions))))
        start += len(lv.questions)
    model = pls.PathModel.build(names, blocks, acsi.model_edges(names))
    out = pls.estimate(x, model, "path")
    assert close(
        [p.coefficient for p in result.paths],
        [out.paths[names.index(p.target), names.index(p.source)] for p in result.paths],
    )
    assert close([i.loading for i in result.indicators], out.loadings)
    sat = result.latent[names.index("satisfaction")]
    block = blocks[names.index("satisfaction")]
    u = [out.weights[h] / x[:, h].std() for h in block]
    v = [ui / math.fsum(u) for ui in u]
    plain = math.fsum(vi * (x[:, h].mean() - 1) / 9 * 100 for vi, h in zip(v, block, strict=True))
    assert abs(sat.index - plain) < 1e-9 and result.satisfaction_index == sat.index
    assert sat.r2 is not None and 0 < sat.r2 < 1 and result.latent[0].r2 is None
    complaints = result.latent[names.index("complaints")]
    share = sum(a["complained"] for a in answers) / len(answers) * 100
    assert abs(complaints.index - share) < 1e-9
    paths = {(p.source, p.target): p.coefficient for p in result.paths}
    assert paths[("satisfaction", "complaints")] < 0 < paths[("quality", "satisfaction")]


def test_acsi_bootstrap_is_seeded_and_groups_use_the_whole_weights(
    acsi_crm: tuple[CRM, list[dict[str, int]]],
) -> None:
    crm, _ = acsi_crm
    one = evaluate(crm, "acsi", "acsi", bootstrap=40, seed=5, group_by="attributes.tier")
    two = evaluate(crm, "acsi", "acsi", bootstrap=40, seed=5)
    assert one.bootstrap is not None and one.bootstrap["estimated"] + one.bootstrap["failed"] == 40
    first, second = one.paths[0].ci, two.paths[0].ci
    assert (
        first is not None and first == second and first.low < one.paths[0].coefficient < first.high
    )
    sat = one.latent[3]
    assert sat.index_ci is not None and sat.index_ci.low < sat.index < sat.index_ci.high
    sizes = {g.group: g.n for g in one.groups}
    assert sizes == {"gold": 27, "basic": 53}
    total = sum(g.n * g.indices["satisfaction"] for g in one.groups) / 80
    assert abs(total - one.satisfaction_index) < 1e-9
    mapped = evaluate(
        crm,
        "acsi",
        "acsi",
        mapping={
            "perceived quality": ["pq_overall", "pq_customization"],
            "satisfaction": ["satisfaction", "ideal"],
            "loyalty": ["repurchase"],
        },
    )
    assert [lv.name for lv in mapped.latent] == ["quality", "satisfaction", "loyalty"]
    assert [(p.source, p.target) for p in mapped.paths] == [
        ("quality", "satisfaction"),
        ("satisfaction", "loyalty"),
    ]


# --- bad paths -----------------------------------------------------------------------------


def test_bad_paths(example: CRM) -> None:
    with pytest.raises(NotFoundError, match="no survey 'nope'"):
        evaluate(example, "nope", "fuzzy")
    with pytest.raises(NotFoundError, match="version 9"):
        evaluate(example, "example", "fuzzy", version=9)
    with pytest.raises(ValidationError, match="method: 'topsis' is not one of"):
        evaluate(example, "example", "topsis")
    with pytest.raises(ValidationError, match="rho: not an option of the fuzzy method"):
        evaluate(example, "example", "fuzzy", rho=0.5)
    for rho in (0, 1.2, "half"):
        with pytest.raises(ValidationError, match="rho"):
            evaluate(example, "example", "grey", rho=rho)
    with pytest.raises(ValidationError, match="operator"):
        evaluate(example, "example", "fuzzy", operator="product")
    with pytest.raises(ValidationError, match="'price' is in no criterion"):
        evaluate(example, "example", "fuzzy", criteria={"a": ["quality", "service"]})
    with pytest.raises(ValidationError, match="'taste' is not a dimension"):
        evaluate(example, "example", "fuzzy", criteria={"a": ["taste"]})
    with pytest.raises(ValidationError, match="criteria_weights: only with criteria"):
        evaluate(example, "example", "fuzzy", criteria_weights={"a": 1})
    with pytest.raises(ValidationError, match="reference: only with group_by"):
        evaluate(example, "example", "grey", reference="best")
    with pytest.raises(ValidationError, match=r"needs questions for .satisfaction."):
        evaluate(example, "example", "acsi")
    with pytest.raises(ValidationError, match="not an ACSI latent variable"):
        evaluate(example, "example", "acsi", mapping={"taste": ["q"]})
    with pytest.raises(ValidationError, match="'nope' is not a rating question"):
        evaluate(example, "example", "acsi", mapping={"satisfaction": ["nope"]})
    with pytest.raises(ValidationError, match="bootstrap"):
        evaluate(example, "example", "acsi", bootstrap=-1)
    with pytest.raises(ValidationError, match="by: 'planet' is not one of"):
        evaluate(example, "example", "pca", group_by="planet")


def test_too_few_respondents_and_no_variation(scrm: CRM) -> None:
    load_example(scrm, EXAMPLE[:2])
    with pytest.raises(ValidationError, match="at least 3 respondents"):
        evaluate(scrm, "example", "pca")
    with pytest.raises(ValidationError, match="at least 3 respondents"):
        evaluate(scrm, "example", "grey")
    with pytest.raises(ValidationError, match="at least 2 groups"):
        evaluate(
            scrm, "example", "grey", group_by="attributes.region", rho=0.5
        ) if False else evaluate(scrm, "example", "grey", group_by="version")
    flat = [(o, q, s, 3) for o, q, s, _ in EXAMPLE]
    catalog.create_survey(scrm, {**DEFINITION, "key": "flat"})
    made = scrm.customers.create_many({"name": f"F{i}"} for i in range(10))
    responses.record_responses(
        scrm,
        (
            {
                "survey": "flat",
                "customer_id": c.id,
                "answers": dict(zip(("overall", "q", "s", "p"), r, strict=True)),
            }
            for c, r in zip(made, flat, strict=True)
        ),
    )
    with pytest.raises(ValidationError, match="dimension 'price' has no variation"):
        evaluate(scrm, "flat", "pca")
    with pytest.raises(ValidationError, match="'price' has no variation"):
        evaluate(scrm, "flat", "grey")
    with pytest.raises(ValidationError, match="indicator 'p' has no variation"):
        evaluate(scrm, "flat", "acsi", mapping={"quality": ["q", "p"], "satisfaction": ["overall"]})


def test_no_responses_and_mixed_scales(scrm: CRM) -> None:
    catalog.create_survey(scrm, template("satisfaction"))
    with pytest.raises(ValidationError, match="no responses in scope"):
        evaluate(scrm, "satisfaction", "fuzzy")
    catalog.create_survey(scrm, template("acsi"))
    [made] = scrm.customers.create_many([{"name": "M"}])
    answers = {q["id"]: 1 for q in template("acsi")["questions"] if q["type"] == "rating"}
    responses.record_response(scrm, survey="acsi", customer_id=made.id, answers=answers)
    with pytest.raises(ValidationError, match="several scales"):
        evaluate(scrm, "acsi", "fuzzy")


# --- cli -----------------------------------------------------------------------------------


@pytest.fixture
def run(example: CRM) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(surveys, list(args), obj=CLIState(crm=example))

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_cli_evaluate(run: Callable[..., Result], tmp_path: Path) -> None:
    fuzzy_json = json.loads(ok(run("evaluate", "example", "--method", "fuzzy", "--json")).output)
    assert close(fuzzy_json["overall"]["vector"], [0.02, 0.15, 0.30, 0.35, 0.18])
    text = ok(run("evaluate", "example", "--method", "fuzzy", "--operator", "maxmin")).output
    assert "membership matrix R" in text and "maxmin" in text
    text = ok(
        run(
            "evaluate",
            "example",
            "--method",
            "fuzzy",
            "--criterion",
            "product=quality,price",
            "--criterion",
            "people=service",
            "--group-by",
            "attributes.region",
        )
    ).output
    assert "criteria (first level)" in text and "north" in text
    grades = tmp_path / "grades.json"
    grades.write_text(
        json.dumps(
            [{"name": "low", "points": [0, 0, 100]}, {"name": "high", "points": [0, 100, 100]}]
        )
    )
    assert (
        "low" in ok(run("evaluate", "example", "--method", "fuzzy", "--grades", str(grades))).output
    )
    grey_json = json.loads(
        ok(run("evaluate", "example", "--method", "grey", "--rho", "0.5", "--json")).output
    )
    assert [i["rank"] for i in grey_json["items"]] == [1, 2, 3]
    assert (
        "closest to the reference"
        in ok(
            run("evaluate", "example", "--method", "grey", "--group-by", "attributes.region")
        ).output
    )
    assert (
        "loadings and weights"
        in ok(run("evaluate", "example", "--method", "pca", "--retain", "0.9")).output
    )
    bad = run("evaluate", "example", "--method", "grey", "--rho", "2")
    assert isinstance(bad.exception, ValidationError) and "rho" in str(bad.exception)
    bad = run("evaluate", "example", "--method", "pca", "--rho", "0.2")
    assert isinstance(bad.exception, ValidationError) and "not an option of the pca" in str(
        bad.exception
    )
    bad = run("evaluate", "example", "--method", "acsi", "--map", "quality")
    assert isinstance(bad.exception, ValidationError) and "map" in str(bad.exception)


def test_cli_acsi(acsi_crm: tuple[CRM, list[dict[str, int]]]) -> None:
    crm, _ = acsi_crm

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(surveys, list(args), obj=CLIState(crm=crm))

    text = ok(
        invoke("evaluate", "acsi", "--method", "acsi", "--bootstrap", "20", "--seed", "1")
    ).output
    assert "satisfaction index" in text and "path coefficients" in text and "[" in text
    data = json.loads(
        ok(invoke("evaluate", "acsi", "--method", "acsi", "--scheme", "factorial", "--json")).output
    )
    assert data["scheme"] == "factorial" and 0 <= data["satisfaction_index"] <= 100
    assert "acsi" in ok(invoke("list", "--templates")).output
