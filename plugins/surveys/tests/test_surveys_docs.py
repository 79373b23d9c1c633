"""Figures quoted in docs/plugins/surveys.md are the ones the code computes (issue 18 item 5, 7)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from crmcore_surveys import importance
from crmcore_surveys.templates import B2B, template
from crmcore_surveys.weights import ahp

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "surveys.md"


def _quoted(pattern: str) -> list[str]:
    return re.findall(pattern, DOC.read_text(encoding="utf-8"))


def _matches(quoted: str, computed: float) -> bool:
    """``quoted`` is ``computed`` rounded to the decimals it shows."""
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    return bool(abs(float(quoted) - computed) <= 0.5 * 10.0**-decimals + 1e-12)


def test_the_b2b_consistency_ratio_in_the_docs_is_the_templates() -> None:
    """Every CR, CI and lambda_max the docs give for the b2b matrix."""
    result = ahp(B2B["weighting"]["matrix"])
    ratios = _quoted(r"\(CR = ([0-9.]+)\)") + _quoted(r"`CR = CI / 1\.24 = ([0-9.]+)`")
    assert len(ratios) == 2 and all(_matches(r, result.consistency_ratio) for r in ratios)
    [lam] = _quoted(r"`λ_max = ([0-9.]+)`")
    [ci] = _quoted(r"`CI = ([0-9.]+)`")
    assert _matches(lam, result.lambda_max) and _matches(ci, result.consistency_index)
    [weights] = _quoted(r"weights (0\.[0-9]+(?:, 0\.[0-9]+){5});")
    assert all(_matches(w, v) for w, v in zip(weights.split(", "), result.weights, strict=True))


def test_the_b2b_items_in_the_docs_are_the_templates() -> None:
    """The item table quotes the template's wording, the acceptance item included."""
    text = DOC.read_text(encoding="utf-8")
    for question in template("b2b")["questions"]:
        if question.get("dimension"):
            assert f'| "{question["text"]}" |' in text


def test_the_worked_importance_example() -> None:
    """r12 = 0.5, r1y = 0.6, r2y = 0.4: beta, R^2, relative weights, Shapley, the grid."""
    corr = np.array([[1.0, 0.5, 0.6], [0.5, 1.0, 0.4], [0.6, 0.4, 1.0]])
    beta = importance.coefficients_from(corr)
    assert np.allclose(beta, [0.5333333, 0.1333333])
    assert abs(float(beta @ corr[:2, 2]) - 0.3733333) < 1e-6
    assert np.allclose(importance.relative_weights(corr), [0.2866667, 0.0866667])
    assert np.allclose(importance.shapley_r2(corr), [0.2866667, 0.0866667])
    grid = importance.ipa_grid({"1": 76.8, "2": 23.2}, {"1": 70.0, "2": 50.0})
    assert [i["quadrant"] for i in grid["items"]] == ["keep up the good work", "low priority"]
    assert grid["importance_split"] == 50.0 and grid["performance_split"] == 60.0
