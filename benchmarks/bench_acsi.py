"""The ACSI model by PLS path modelling against plspm (PyPI), on the same generated data.

    make bench-acsi        # a venv of its own (.venv/bench-acsi): plspm 0.5.7 needs pandas < 3
    python benchmarks/bench_acsi.py [--respondents 2000] [--seed 7] [--bootstrap 200]

1. Respondents are drawn from a known ACSI structure (seeded numpy): latent
   expectations, quality, value, satisfaction, complaints and loyalty with the
   template's paths, answers 1-10 (the complaint 0/1), the ``acsi`` template's questions.
2. For each inner scheme (centroid, factorial, path) the plugin's estimator
   (``crmcore_surveys.evaluation.pls``) and plspm's ``Plspm`` estimate the model on the
   same matrix; printed: the path coefficients side by side, the largest absolute
   differences of paths, outer weights, loadings and R², the times (best of
   ``--repeat``) and their ratio. plspm runs with a tolerance of 1e-12 on its own
   criterion (the squared change of the weights), the plugin with its 1e-10.
3. The same answers recorded in SQLite through the API and ``evaluate(..., "acsi")``
   end to end (SQL loading included): its path coefficients against step 2's, its
   time, and the bootstrap's time.

Two behaviours of plspm 0.5.7 are taken care of: with ``scaled=True`` it divides every
centred column by one SD of all the data stacked, not by the column's own, so it is
given per-column standardised data (population SD) with ``scaled=False``; and it
decides a block's sign from the signs of its correlations with every indicator
(``copysign(1, -0.0)`` counts the zero cross terms), negating the score but not the
weights, which negates the complaints block here. Its scores are therefore aligned to
the plugin's sign (the sign of their correlation with the plugin's scores) before
path coefficients are compared; the number of latent variables so aligned is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import crmcore_surveys.plugin
import numpy as np
from crmcore_surveys import catalog, responses
from crmcore_surveys.evaluation import acsi, pls
from crmcore_surveys.evaluation.service import evaluate
from crmcore_surveys.templates import template

from crmcore import CRM, Config

SCHEMES = ("centroid", "factorial", "path")
REPEAT = {"n": 3}


def best_of(fn: Callable[[], Any]) -> tuple[float, Any]:
    """The best time of ``--repeat`` runs and the last result."""
    best, result = float("inf"), None
    for _ in range(REPEAT["n"]):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def generate(n: int, seed: int) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Questions, their blocks (by latent variable) and n x p answers from a known ACSI model."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    q = 0.55 * e + rng.normal(scale=0.8, size=n)
    v = 0.2 * e + 0.6 * q + rng.normal(scale=0.7, size=n)
    s = 0.1 * e + 0.5 * q + 0.35 * v + rng.normal(scale=0.5, size=n)
    c = -0.7 * s + rng.normal(scale=0.9, size=n)
    loyalty = 0.6 * s - 0.15 * c + rng.normal(scale=0.7, size=n)
    level = dict(zip(acsi.LATENT, (e, q, v, s, c, loyalty), strict=True))
    blocks: dict[str, list[str]] = {}
    columns = []
    for item in template("acsi")["questions"]:
        latent = acsi.latent_of(item.get("dimension"))
        if item["type"] != "rating" or latent is None:
            continue
        blocks.setdefault(latent, []).append(item["id"])
        if item["id"] == "complained":
            columns.append((level[latent] > 0.5).astype(float))
            continue
        k = len(blocks[latent])
        raw = 6.0 + 1.5 * (0.8 + 0.1 * k) * level[latent] + rng.normal(scale=0.7 + 0.2 * k, size=n)
        columns.append(np.clip(np.rint(raw), 1, 10))
    ordered = [b for name in acsi.LATENT for b in [blocks[name]]]
    questions = [qid for block in ordered for qid in block]
    by_id = dict(zip([i for b in blocks.values() for i in b], columns, strict=True))
    return questions, ordered, np.column_stack([by_id[qid] for qid in questions])


def ours(x: np.ndarray, model: pls.PathModel, scheme: str) -> pls.PLSOutcome:
    return pls.estimate(x, model, scheme)


def reference(
    x: np.ndarray, questions: list[str], blocks: list[list[str]], scheme: str, raw: bool = False
) -> Any:
    import pandas as pd
    import plspm.config as c
    from plspm.mode import Mode
    from plspm.plspm import Plspm
    from plspm.scheme import Scheme

    names = list(acsi.LATENT)
    path = pd.DataFrame(0, index=names, columns=names)
    for source, target in acsi.EDGES:
        path.loc[target, source] = 1
    config = c.Config(path, scaled=raw)
    for name, block in zip(names, blocks, strict=True):
        # plspm refuses an indicator named like a latent variable (question "satisfaction")
        config.add_lv(name, Mode.A, *[c.MV(f"mv_{q}") for q in block])
    given = x if raw else (x - x.mean(axis=0)) / x.std(axis=0)
    data = pd.DataFrame(given, columns=[f"mv_{q}" for q in questions])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Plspm(data, config, getattr(Scheme, scheme.upper()), 1000, 1e-12)


def compare(
    x: np.ndarray, questions: list[str], blocks: list[list[str]], model: pls.PathModel
) -> dict[str, pls.PLSOutcome]:
    names = list(acsi.LATENT)
    fitted = {}
    with contextlib.suppress(ImportError):  # untimed: the first call imports plspm, statsmodels
        reference(x, questions, blocks, "centroid")
    for scheme in SCHEMES:
        t_ours, mine = best_of(lambda s=scheme: ours(x, model, s))
        fitted[scheme] = mine
        try:
            t_ref, ref = best_of(lambda s=scheme: reference(x, questions, blocks, s))
        except ImportError as exc:
            print(f"  {scheme}: plspm is not installed ({exc}); run make bench-acsi")
            continue
        scores = ref.scores()
        sign = np.array(
            [np.sign(np.corrcoef(scores[n], mine.scores[:, j])[0, 1]) for j, n in enumerate(names)]
        )
        coefficients = ref.path_coefficients()
        outer = ref.outer_model()
        print(
            f"\n  scheme {scheme}: plugin {t_ours * 1000:8.2f} ms, plspm {t_ref * 1000:8.2f} ms, "
            f"ratio {t_ref / t_ours:6.1f}x; plugin rounds {mine.iterations}; "
            f"plspm blocks sign-aligned: {int((sign < 0).sum())}"
        )
        print(f"    {'path':<30} {'plugin':>10} {'plspm':>10} {'diff':>10}")
        worst = 0.0
        for source, target in acsi.EDGES:
            s, t = names.index(source), names.index(target)
            theirs = float(coefficients.loc[target, source]) * sign[s] * sign[t]
            diff = mine.paths[t, s] - theirs
            worst = max(worst, abs(diff))
            label = f"{source} -> {target}"
            print(f"    {label:<30} {mine.paths[t, s]:10.6f} {theirs:10.6f} {diff:10.2e}")
        weights = max(
            abs(abs(mine.weights[h]) - abs(float(outer.loc[f"mv_{q}", "weight"])))
            for h, q in enumerate(questions)
        )
        loadings = max(
            abs(abs(mine.loadings[h]) - abs(float(outer.loc[f"mv_{q}", "loading"])))
            for h, q in enumerate(questions)
        )
        r2 = ref.inner_summary()["r_squared"]
        r2_diff = max(abs(mine.r2[j] - float(r2[n])) for j, n in enumerate(names))
        print(
            f"    max |diff|: paths {worst:.2e}, outer weights {weights:.2e}, "
            f"loadings {loadings:.2e}, R² {r2_diff:.2e}"
        )
        quirk = reference(x, questions, blocks, scheme, raw=True).path_coefficients()
        off = max(
            abs(abs(mine.paths[names.index(t), names.index(s)]) - abs(float(quirk.loc[t, s])))
            for s, t in acsi.EDGES
        )
        print(
            f"    plspm on the raw answers, scaled=True (one stacked SD): max |path diff| {off:.2e}"
        )
    return fitted


def end_to_end(
    x: np.ndarray, questions: list[str], fitted: dict[str, pls.PLSOutcome], bootstrap: int
) -> None:
    path = Path(tempfile.mkdtemp(prefix="bench-acsi-")) / "bench.db"
    clock = datetime(2026, 6, 1, tzinfo=UTC)
    crm = CRM.open(
        Config(database_url=f"sqlite:///{path}"),
        discover=False,
        plugins=[crmcore_surveys.plugin],
        upgrade=True,
        clock=lambda: clock,
    )
    try:
        catalog.create_survey(crm, template("acsi"))
        made = crm.customers.create_many({"name": f"R{i}"} for i in range(x.shape[0]))
        start = time.perf_counter()
        responses.record_responses(
            crm,
            (
                {
                    "survey": "acsi",
                    "customer_id": c.id,
                    "answers": dict(zip(questions, map(int, row), strict=True)),
                }
                for c, row in zip(made, x, strict=True)
            ),
            keep=False,
        )
        print(f"\n  SQLite: {x.shape[0]} responses recorded in {time.perf_counter() - start:.2f} s")
        names = list(acsi.LATENT)
        for scheme in SCHEMES:
            t, result = best_of(lambda s=scheme: evaluate(crm, "acsi", "acsi", scheme=s))
            worst = max(
                abs(
                    p.coefficient
                    - fitted[scheme].paths[names.index(p.target), names.index(p.source)]
                )
                for p in result.paths
            )
            print(
                f"  evaluate(acsi, scheme={scheme}) end to end {t * 1000:8.1f} ms; "
                f"satisfaction index {result.satisfaction_index:.3f}; "
                f"max |path - pure estimate| {worst:.1e}"
            )
        if bootstrap:
            start = time.perf_counter()
            result = evaluate(crm, "acsi", "acsi", bootstrap=bootstrap, seed=1)
            ci = result.paths[4].ci
            print(
                f"  bootstrap {bootstrap} resamples: {time.perf_counter() - start:.2f} s "
                f"(quality -> satisfaction {result.paths[4].coefficient:.4f}, "
                f"95% CI [{ci.low:.4f}, {ci.high:.4f}])"
                if ci
                else ""
            )
    finally:
        crm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    REPEAT["n"] = max(1, args.repeat)
    questions, blocks, x = generate(args.respondents, args.seed)
    start, columns = 0, []
    for block in blocks:
        columns.append(list(range(start, start + len(block))))
        start += len(block)
    model = pls.PathModel.build(acsi.LATENT, columns, acsi.EDGES)
    print(
        f"ACSI model, {args.respondents} respondents, {len(questions)} questions (seed {args.seed})"
    )
    fitted = compare(x, questions, blocks, model)
    end_to_end(x, questions, fitted, args.bootstrap)


if __name__ == "__main__":
    main()
