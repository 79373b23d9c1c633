"""Rich tables for a survey report (``crm surveys report``, the ``crm demo`` part)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from crmcore.cli.output import safe_text


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(data: Mapping[str, Any] | None, digits: int = 1, low: str = "ci_low") -> str:
    if not data or data.get(low) is None:
        return ""
    high = low.replace("low", "high")
    return f"[{data[low]:.{digits}f}, {data[high]:.{digits}f}]"


def render_report(report: Mapping[str, Any]) -> list[Any]:
    """Rich renderables for a :func:`~crmcore_surveys.scoring.survey_report` result."""
    out: list[Any] = []
    survey = report["survey"]
    head = Table(title=safe_text(f"surveys: {survey['key']} — {survey['title']}"))
    for column in ("score", "value", "95% CI", "n", "detail"):
        head.add_column(column)
    rate = report["response_rate"]
    head.add_row(
        "responses",
        str(report["responses"]),
        "",
        "",
        f"{report['invitations']} invited, rate {_f(rate and rate['value'])}%"
        if report["invitations"]
        else "",
    )
    nps = report["nps"]
    if nps:
        head.add_row(
            "NPS",
            _f(nps["value"]),
            _ci(nps),
            str(nps["n"]),
            f"{nps['promoters']} promoters / {nps['passives']} passives / "
            f"{nps['detractors']} detractors",
        )
    csat = report["csat"]
    if csat:
        head.add_row(
            "CSAT (top-2-box %)",
            _f(csat["value"]),
            _ci(csat),
            str(csat["n"]),
            f"mean {_f(csat['mean'], 2)}",
        )
    ces = report["ces"]
    if ces:
        head.add_row("CES (mean)", _f(ces["value"], 2), _ci(ces, 2), str(ces["n"]), "")
    index = report["index"]
    if index:
        detail = f"weights: {index['method']}"
        if "ahp" in index:
            detail += f", CR {index['ahp']['consistency_ratio']:.3f}"
        head.add_row("satisfaction index", _f(index["value"]), _ci(index), str(index["n"]), detail)
    out.append(head)
    if report["dimensions"]:
        table = Table(title="dimensions")
        for column in ("dimension", "mean", "95% CI", "score 0-100", "weight", "n"):
            table.add_column(column)
        for d in report["dimensions"]:
            table.add_row(
                safe_text(d["dimension"]),
                _f(d["mean"], 2),
                _ci(d, 2),
                _f(d["score"]),
                _f(d.get("weight"), 3),
                str(d["n"]),
            )
        out.append(table)
    if report["gaps"]:
        table = Table(title="expectation vs perception (gap = P - E)")
        for column in ("dimension", "expectation", "perception", "gap", "95% CI", "n"):
            table.add_column(column)
        for g in report["gaps"]:
            table.add_row(
                safe_text(g["dimension"]),
                _f(g["expectation"], 2),
                _f(g["perception"], 2),
                _f(g["gap"], 2),
                _ci(g, 2),
                str(g["n"]),
            )
        out.append(table)
    out.extend(_pearson(report["drivers"]))
    out.extend(render_importance(report.get("importance")))
    for title, rows in (
        (f"trend by {report.get('trend_granularity', '')}", report["trend"]),
        (
            f"by {report['breakdown']['by']}" if report["breakdown"] else "",
            report["breakdown"]["groups"] if report["breakdown"] else [],
        ),
    ):
        rows = [r for r in rows if r["responses"]]
        if not rows:
            continue
        table = Table(title=safe_text(title))
        for column in ("group", "responses", "NPS", "CSAT %", "CES", "index"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                safe_text(r["group"]),
                str(r["responses"]),
                _f(r["nps"] and r["nps"]["value"]),
                _f(r["csat"] and r["csat"]["value"]),
                _f(r["ces"] and r["ces"]["value"], 2),
                _f(r["index"] and r["index"]["value"]),
            )
        out.append(table)
    return out


def render_drivers(data: Mapping[str, Any]) -> list[Any]:
    """Rich renderables for a :func:`~crmcore_surveys.scoring.survey_drivers` result."""
    survey = data["survey"]
    out: list[Any] = [
        safe_text(f"surveys: {survey['key']} — {survey['title']}: {data['responses']} responses")
    ]
    out.extend(_pearson(data.get("drivers")))
    out.extend(render_importance(data.get("importance")))
    if len(out) == 1:
        out.append("no dimensions with an overall question to analyse")
    return out


def _pearson(drivers: Mapping[str, Any] | None) -> list[Any]:
    if not drivers or not drivers["items"]:
        return []
    table = Table(title=safe_text(f"drivers of {', '.join(drivers['overall'])} (Pearson r)"))
    for column in ("dimension", "r", "95% CI", "score 0-100", "n"):
        table.add_column(column)
    for d in drivers["items"]:
        table.add_row(
            safe_text(d["dimension"]), _f(d["r"], 2), _ci(d, 2), _f(d["score"]), str(d["n"])
        )
    return [table]


def render_importance(importance: Mapping[str, Any] | None) -> list[Any]:
    """The regression-based driver table and the importance-performance grid."""
    if not importance or importance.get("r2") is None:
        return []
    out: list[Any] = []
    resamples = importance["resamples"]
    interval = f"bootstrap {resamples}, seed {importance['seed']}" if resamples else "no CIs"
    table = Table(
        title=safe_text(
            f"relative importance for {', '.join(importance['overall'])} "
            f"(OLS on standardised scores, R² {importance['r2']:.3f} "
            f"{_ci(importance, 3, 'r2_ci_low')}, n {importance['n']}, {interval})"
        )
    )
    for column in ("dimension", "beta [CI]", "importance % [CI]", "Shapley % [CI]"):
        table.add_column(column)
    for item in sorted(
        importance["items"], key=lambda i: (-(i["importance"] or -1.0), i["dimension"])
    ):
        table.add_row(
            safe_text(item["dimension"]),
            f"{_f(item['beta'], 2)} {_ci(item, 2, 'beta_ci_low')}".strip(),
            f"{_f(item['importance'])} {_ci(item, 1, 'importance_ci_low')}".strip(),
            f"{_f(item['shapley'])} {_ci(item, 1, 'shapley_ci_low')}".strip(),
        )
    out.append(table)
    grid = importance.get("grid") or {}
    if grid.get("items"):
        table = Table(
            title="importance-performance grid (importance: relative-weight share; "
            f"split at the means {grid['importance_split']:.1f}% / "
            f"{grid['performance_split']:.1f})"
        )
        for column in ("dimension", "importance %", "performance 0-100", "quadrant"):
            table.add_column(column)
        for item in grid["items"]:
            table.add_row(
                safe_text(item["dimension"]),
                _f(item["importance"]),
                _f(item["performance"]),
                item["quadrant"],
            )
        out.append(table)
    return out


def print_report(report: Mapping[str, Any], console: Console) -> None:
    """Print a survey report to ``console``."""
    for renderable in render_report(report):
        console.print(renderable)
