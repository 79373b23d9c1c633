"""``crm surveys evaluate SURVEY --method fuzzy|grey|pca|acsi``: parse, evaluate, print.

numpy and the evaluation modules load when the command runs, not when ``crm surveys``
lists its commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from crmcore import Period, ValidationError
from crmcore.cli.context import get_crm, json_option, print_json, print_record, print_table
from crmcore_surveys.cli_parsing import parse_day, read_json_file

METHODS = ("fuzzy", "grey", "pca", "acsi")


def _lists(values: tuple[str, ...], name: str) -> dict[str, list[str]]:
    """Repeated ``NAME=A,B`` options as ``{NAME: [A, B]}``."""
    result: dict[str, list[str]] = {}
    for value in values:
        key, sep, items = value.partition("=")
        listed = [i.strip() for i in items.split(",") if i.strip()]
        if not sep or not key.strip() or not listed:
            raise ValidationError(f"{name}: expected NAME=ITEM,ITEM, got {value!r}", field=name)
        if key.strip() in result:
            raise ValidationError(f"{name}: {key.strip()!r} given twice", field=name)
        result[key.strip()] = listed
    return result


def _retain(value: str) -> str | float:
    if value == "kaiser":
        return value
    try:
        return float(value)
    except ValueError:
        raise ValidationError(
            f"retain: expected 'kaiser' or a share in (0, 1], got {value!r}", field="retain"
        ) from None


def _n(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _vector(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


@click.command("evaluate")
@click.argument("survey")
@click.option("--method", type=click.Choice(METHODS), required=True, help="Evaluation method.")
@click.option("--version", type=int, help="Only this version (default all).")
@click.option("--from", "start", metavar="DATE", help="Answered on or after (ISO date/time).")
@click.option("--to", "end", metavar="DATE", help="Answered before (ISO date/time).")
@click.option(
    "--group-by", "group_by", metavar="FIELD", help="Customer field, attributes.KEY, version ..."
)
@click.option(
    "--weights",
    type=click.Choice(["declared", "ahp", "entropy"]),
    help="fuzzy: dimension weights (default the survey's).",
)
@click.option(
    "--ahp-matrix",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="fuzzy: JSON pairwise matrix over the dimensions.",
)
@click.option(
    "--operator",
    type=click.Choice(["weighted", "maxmin"]),
    help="fuzzy: M(.,+) weighted average (default) or M(^,v) max-min.",
)
@click.option(
    "--grades",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="fuzzy: JSON list of grades with membership functions over 0-100.",
)
@click.option(
    "--criterion",
    multiple=True,
    metavar="NAME=DIM,DIM",
    help="fuzzy: a criterion of the two-level index tree (repeatable).",
)
@click.option(
    "--criteria-weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="fuzzy: JSON criterion weights ({name: w}) or AHP matrix over the criteria.",
)
@click.option("--rho", type=float, help="grey: distinguishing coefficient (default 0.5).")
@click.option(
    "--normalisation",
    type=click.Choice(["minmax", "mean"]),
    help="grey: normalisation of each variable (default minmax).",
)
@click.option(
    "--reference",
    type=click.Choice(["ideal", "best"]),
    help="grey with --group-by: the reference sequence (default ideal).",
)
@click.option("--retain", help="pca: 'kaiser' (default) or a cumulative share such as 0.85.")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="LATENT=Q,Q",
    help="acsi: the questions of a latent variable (repeatable; default by dimension).",
)
@click.option(
    "--scheme",
    type=click.Choice(["centroid", "factorial", "path"]),
    help="acsi: inner weighting scheme (default centroid).",
)
@click.option("--bootstrap", type=int, help="acsi: bootstrap resamples for the intervals.")
@click.option("--seed", type=int, help="acsi: seed of the bootstrap.")
@json_option
def evaluate(
    survey: str,
    method: str,
    version: int | None,
    start: str | None,
    end: str | None,
    group_by: str | None,
    weights: str | None,
    ahp_matrix: Path | None,
    operator: str | None,
    grades: Path | None,
    criterion: tuple[str, ...],
    criteria_weights: Path | None,
    rho: float | None,
    normalisation: str | None,
    reference: str | None,
    retain: str | None,
    mapping: tuple[str, ...],
    scheme: str | None,
    bootstrap: int | None,
    seed: int | None,
    as_json: bool,
) -> None:
    """Evaluate SURVEY: fuzzy, grey relational, PCA or the ACSI model (PLS)."""
    from crmcore_surveys.evaluation.service import evaluate as run

    crm = get_crm()
    first, last = parse_day(start, "from"), parse_day(end, "to")
    period = None
    if first is not None or last is not None:
        period = Period(first or datetime(1970, 1, 1, tzinfo=UTC), last or crm.clock())
    given: dict[str, Any] = {
        "weights": weights,
        "ahp_matrix": read_json_file(ahp_matrix, "ahp_matrix") if ahp_matrix else None,
        "operator": operator,
        "grades": read_json_file(grades, "grades") if grades else None,
        "criteria": _lists(criterion, "criterion") or None,
        "criteria_weights": (
            read_json_file(criteria_weights, "criteria_weights") if criteria_weights else None
        ),
        "rho": rho,
        "normalisation": normalisation,
        "reference": reference,
        "retain": _retain(retain) if retain is not None else None,
        "mapping": _lists(mapping, "map") or None,
        "scheme": scheme,
        "bootstrap": bootstrap,
        "seed": seed,
    }
    options = {k: v for k, v in given.items() if v is not None}
    result = run(crm, survey, method, version=version, period=period, group_by=group_by, **options)
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    {"fuzzy": _print_fuzzy, "grey": _print_grey, "pca": _print_pca, "acsi": _print_acsi}[method](
        data
    )


def _head(data: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    header = data["header"]
    print_record(
        {
            "survey": header["survey"],
            "version": header["version"] or "all",
            "responses": header["responses"],
            "by": header["by"],
            **extra,
        },
        title=f"{data['method']} evaluation of {header['survey']}",
    )


def _print_fuzzy(data: Mapping[str, Any]) -> None:
    overall = data["overall"]
    _head(
        data,
        {
            "operator": data["operator"],
            "weights": data["weighting"]["method"],
            "B": _vector(overall["vector"]),
            "grade": overall["grade"],
            "score (0-100)": _n(overall["score"], 2),
        },
    )
    grades = [g["name"] for g in data["grades"]]
    print_table(
        [
            {
                "dimension": d["name"],
                "weight": _n(d["weight"]),
                "answers": d["answers"],
                **{g: _n(v) for g, v in zip(grades, d["membership"], strict=True)},
            }
            for d in overall["dimensions"]
        ],
        ["dimension", "weight", "answers", *grades],
        title="membership matrix R",
    )
    if overall["criteria"]:
        print_table(
            [
                {
                    "criterion": c["name"],
                    "weight": _n(c["weight"]),
                    "dimensions": ", ".join(c["dimensions"]),
                    "B": _vector(c["vector"]),
                    "grade": c["grade"],
                    "score": _n(c["score"], 2),
                }
                for c in overall["criteria"]
            ],
            ["criterion", "weight", "dimensions", "B", "grade", "score"],
            title="criteria (first level)",
        )
    if data["groups"]:
        print_table(
            [
                {
                    "group": label,
                    "B": _vector(g["vector"]),
                    "grade": g["grade"],
                    "score": _n(g["score"], 2),
                }
                for label, g in data["groups"].items()
            ],
            ["group", "B", "grade", "score"],
            title=f"by {data['header']['by']}",
        )


def _print_grey(data: Mapping[str, Any]) -> None:
    _head(
        data,
        {
            "mode": data["mode"],
            "reference": data["reference"],
            "rho": data["rho"],
            "normalisation": data["normalisation"],
        },
    )
    columns = ["rank", "name", "grade", "score", "n"]
    rows = [
        {
            "rank": i["rank"],
            "name": i["name"],
            "grade": _n(i["grade"]),
            "score": _n(i["score"], 2),
            "n": i["n"],
        }
        for i in data["items"]
    ]
    if data["mode"] == "groups":
        dims = list(data["items"][0]["coefficients"]) if data["items"] else []
        for row, item in zip(rows, data["items"], strict=True):
            row.update({d: _n(item["coefficients"][d]) for d in dims})
        columns += dims
    print_table(
        rows,
        columns,
        title="grey relational grades"
        + (" (coefficient per dimension)" if data["mode"] == "groups" else ""),
        caption="dimensions: the most related to the overall answer first"
        if data["mode"] == "dimensions"
        else "groups: the closest to the reference first; improve from the bottom",
    )


def _print_pca(data: Mapping[str, Any]) -> None:
    _head(data, {"retain": data["retain"], "retained": data["retained"]})
    print_table(
        [
            {
                "component": c["number"],
                "eigenvalue": _n(c["eigenvalue"]),
                "explained": _n(c["explained"]),
                "cumulative": _n(c["cumulative"]),
                "retained": "yes" if c["retained"] else "",
            }
            for c in data["components"]
        ],
        ["component", "eigenvalue", "explained", "cumulative", "retained"],
        title="components",
    )
    retained = [c for c in data["components"] if c["retained"]]
    print_table(
        [
            {
                "dimension": d["name"],
                "mean": _n(d["mean"], 2),
                "sd": _n(d["sd"], 2),
                **{f"loading {c['number']}": _n(c["loadings"][d["name"]]) for c in retained},
                "coefficient": _n(d["coefficient"]),
                "weight": _n(d["weight"]),
            }
            for d in data["dimensions"]
        ],
        [
            "dimension",
            "mean",
            "sd",
            *[f"loading {c['number']}" for c in retained],
            "coefficient",
            "weight",
        ],
        title="loadings and weights",
    )
    if data["groups"]:
        print_table(
            [
                {
                    "group": g["group"],
                    "n": g["n"],
                    "composite": _n(g["composite"]),
                    "score": _n(g["score"], 2),
                }
                for g in data["groups"]
            ],
            ["group", "n", "composite", "score"],
            title=f"by {data['header']['by']}",
        )


def _ci(interval: Mapping[str, float] | None) -> str:
    if not interval:
        return ""
    return f"[{interval['low']:.4f}, {interval['high']:.4f}]"


def _print_acsi(data: Mapping[str, Any]) -> None:
    _head(
        data,
        {
            "scheme": data["scheme"],
            "iterations": data["iterations"],
            "satisfaction index (ACSI, 0-100)": _n(data["satisfaction_index"], 2),
        },
    )
    print_table(
        [
            {
                "latent": lv["name"],
                "index": _n(lv["index"], 2),
                "index CI": _ci(lv["index_ci"]),
                "R2": _n(lv["r2"]),
                "AVE": _n(lv["ave"]),
                "questions": ", ".join(lv["questions"]),
            }
            for lv in data["latent"]
        ],
        ["latent", "index", "index CI", "R2", "AVE", "questions"],
        title="latent variables",
    )
    print_table(
        [
            {
                "path": f"{p['source']} -> {p['target']}",
                "coefficient": _n(p["coefficient"]),
                "CI": _ci(p["ci"]),
                "total effect": _n(p["total_effect"]),
            }
            for p in data["paths"]
        ],
        ["path", "coefficient", "CI", "total effect"],
        title="path coefficients",
    )
    print_table(
        [
            {
                "question": i["question"],
                "latent": i["latent"],
                "weight": _n(i["weight"]),
                "rescaled": _n(i["rescaled_weight"]),
                "loading": _n(i["loading"]),
                "loading CI": _ci(i["loading_ci"]),
                "mean": _n(i["mean"], 2),
            }
            for i in data["indicators"]
        ],
        ["question", "latent", "weight", "rescaled", "loading", "loading CI", "mean"],
        title="outer model",
    )
    if data["groups"]:
        names = [lv["name"] for lv in data["latent"]]
        print_table(
            [
                {"group": g["group"], "n": g["n"], **{k: _n(g["indices"][k], 2) for k in names}}
                for g in data["groups"]
            ],
            ["group", "n", *names],
            title=f"indices by {data['header']['by']}",
        )
