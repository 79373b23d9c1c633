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
    drivers = report["drivers"]
    if drivers and drivers["items"]:
        table = Table(title=safe_text(f"drivers of {', '.join(drivers['overall'])} (Pearson r)"))
        for column in ("dimension", "r", "95% CI", "score 0-100", "n"):
            table.add_column(column)
        for d in drivers["items"]:
            table.add_row(
                safe_text(d["dimension"]), _f(d["r"], 2), _ci(d, 2), _f(d["score"]), str(d["n"])
            )
        out.append(table)
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


def print_report(report: Mapping[str, Any], console: Console) -> None:
    """Print a survey report to ``console``."""
    for renderable in render_report(report):
        console.print(renderable)
