"""``crm surveys ...``: parse, call a service function, print."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from crmcore import CRMError, Period, ValidationError
from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.cli.output import safe_text
from crmcore_surveys import catalog, distribution, responses, scoring, trends
from crmcore_surveys.definitions import load_file
from crmcore_surveys.templates import TEMPLATES, template

# --- parsing -------------------------------------------------------------------------


def _day(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name}: not an ISO date: {value!r}", field=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _pairs(values: tuple[str, ...], name: str) -> dict[str, str]:
    result = {}
    for value in values:
        if "=" not in value:
            raise ValidationError(f"{name}: expected FIELD=VALUE, got {value!r}", field=name)
        key, _, text = value.partition("=")
        result[key.strip()] = text.strip()
    return result


def read_response_file(path: Path) -> Iterator[dict[str, Any]]:
    """Stream responses from a CSV (one column per question), JSON Lines or JSON array file.

    CSV columns ``token``, ``survey``, ``version``, ``customer_id``, ``answered_at``,
    ``channel`` and ``comment`` describe the response; every other column is a question
    id (multiple choices separated by ``|``; empty cells are unanswered).
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        meta = {"token", "survey", "version", "customer_id", "answered_at", "channel", "comment"}
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                item: dict[str, Any] = {k: (v or None) for k, v in row.items() if k in meta}
                item["answers"] = {k: v for k, v in row.items() if k not in meta and v}
                yield item
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValidationError(f"line {number}: invalid JSON: {exc}") from None
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValidationError("file: a .json import holds an array of responses")
        yield from data
    else:
        raise ValidationError(f"file: {path.name}: expected .csv, .jsonl or .json", field="file")


# --- rendering -----------------------------------------------------------------------


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


# --- commands --------------------------------------------------------------------------


@click.group()
def surveys() -> None:
    """Satisfaction surveys: definitions, invitations, responses and scores."""


@surveys.command("create")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--template",
    "template_name",
    type=click.Choice(sorted(TEMPLATES)),
    help="Start from a built-in template.",
)
@click.option("--key", help="Survey key (overrides the definition's).")
@click.option("--update", is_flag=True, help="Edit an existing survey (new version if answered).")
@json_option
def create(
    file: Path | None, template_name: str | None, key: str | None, update: bool, as_json: bool
) -> None:
    """Create a survey from FILE (JSON, or YAML with PyYAML) or a --template."""
    if (file is None) == (template_name is None):
        raise ValidationError("definition: give a FILE or --template, not both", field="definition")
    data = load_file(file) if file is not None else template(str(template_name))
    if key and isinstance(data, dict):
        data["key"] = key
    crm = get_crm()
    action = catalog.update_survey if update else catalog.create_survey
    stored = action(crm, data, actor=get_actor())
    summary = {k: v for k, v in stored.to_dict().items() if k != "definition"}
    summary["questions"] = len(stored.definition.questions)
    if as_json:
        print_json(summary)
    else:
        print_record(summary, title=f"survey {stored.key} version {stored.version}")


@surveys.command("list")
@click.option("--templates", is_flag=True, help="List the built-in templates instead.")
@json_option
def list_(templates: bool, as_json: bool) -> None:
    """List surveys (latest versions) with invitation and response counts."""
    if templates:
        rows = [
            {"template": name, "title": t["title"], "questions": len(t["questions"])}
            for name, t in TEMPLATES.items()
        ]
        columns = ["template", "title", "questions"]
    else:
        rows = catalog.list_surveys(get_crm())
        columns = ["key", "version", "title", "invitations", "responses", "created_at"]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, columns, title="survey templates" if templates else "surveys")


@surveys.command("show")
@click.argument("key")
@click.option("--version", type=int, help="Version (default the latest).")
@json_option
def show(key: str, version: int | None, as_json: bool) -> None:
    """Show survey KEY: its questions, scales, dimensions, weights and pairs."""
    stored = catalog.get_survey(get_crm(), key, version)
    if as_json:
        print_json(stored.to_dict())
        return
    rows = [
        {
            "id": q.id,
            "type": q.type,
            "scale": q.scale_label if q.type == "rating" else "",
            "dimension": q.dimension,
            "weight": q.weight if q.dimension else None,
            "metric": q.metric,
            "role": q.role,
            "text": q.text,
        }
        for q in stored.definition.questions
    ]
    print_table(
        rows,
        ["id", "type", "scale", "dimension", "weight", "metric", "role", "text"],
        title=f"{stored.key} version {stored.version}: {stored.title}",
        caption=f"weighting: {stored.definition.weighting.method}",
    )


@surveys.command("invite")
@click.argument("key")
@click.option(
    "--customer", "customer_ids", type=int, multiple=True, help="Invite this customer (repeatable)."
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Filter: stage, tag, owner, attributes.KEY ... (repeatable).",
)
@click.option("--sample", type=int, help="Random sample size.")
@click.option("--strata", metavar="FIELD", help="Stratify the sample by this customer field.")
@click.option("--seed", type=int, help="Seed of the sample (same seed, same sample).")
@click.option("--channel", help="Invitation channel (default from config: email).")
@json_option
def invite(
    key: str,
    customer_ids: tuple[int, ...],
    where: tuple[str, ...],
    sample: int | None,
    strata: str | None,
    seed: int | None,
    channel: str | None,
    as_json: bool,
) -> None:
    """Invite customers to survey KEY (only those with survey consent)."""
    result = distribution.invite(
        get_crm(),
        key,
        customer_ids=customer_ids or None,
        filters=_pairs(where, "where"),
        sample=sample,
        strata=strata,
        seed=seed,
        channel=channel,
        actor=get_actor(),
    )
    data = result.to_dict()
    if as_json:
        data["invitations"] = [
            {"customer_id": i.customer_id, "token": i.token, "stratum": i.stratum}
            for i in result.invitations
        ]
        print_json(data)
    else:
        data["allocation"] = ", ".join(f"{k}: {v}" for k, v in result.allocation.items())
        print_record(data, title=f"invitations to {key}")


@surveys.command("respond")
@click.option("--token", help="The invitation's token.")
@click.option("--survey", "survey_key", help="Survey key (without a token).")
@click.option("--customer", "customer_id", type=int, help="Customer id (without a token).")
@click.option(
    "-a",
    "--answer",
    "answer",
    multiple=True,
    metavar="QUESTION=VALUE",
    help="An answer (repeatable; multiple choices a|b).",
)
@click.option("--answers-json", help="All answers as a JSON object.")
@click.option("--comment", help="A free comment.")
@click.option("--channel", help="Channel the response came through.")
@click.option("--at", "answered_at", help="When it was answered (ISO 8601 with zone; default now).")
@json_option
def respond(
    token: str | None,
    survey_key: str | None,
    customer_id: int | None,
    answer: tuple[str, ...],
    answers_json: str | None,
    comment: str | None,
    channel: str | None,
    answered_at: str | None,
    as_json: bool,
) -> None:
    """Record one response, by invitation token or by survey and customer."""
    answers: dict[str, Any] = _pairs(answer, "answer")
    if answers_json:
        try:
            parsed = json.loads(answers_json)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"answers: invalid JSON: {exc}", field="answers") from None
        except RecursionError:
            raise ValidationError("answers: JSON nested too deeply", field="answers") from None
        if not isinstance(parsed, dict):
            raise ValidationError("answers: expected a JSON object", field="answers")
        answers.update(parsed)
    recorded = responses.record_responses(
        get_crm(),
        [
            {
                "token": token,
                "survey": survey_key,
                "customer_id": customer_id,
                "answers": answers,
                "comment": comment,
                "channel": channel,
                "answered_at": answered_at,
            }
        ],
        source="cli",
        actor=get_actor(),
    )[0]
    data = recorded.to_dict()
    if as_json:
        print_json(data)
    else:
        print_record(data, title=f"response {recorded.id} to {recorded.survey_key}")


@surveys.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Store the valid responses, report the rest.")
@json_option
def import_(file: Path, skip_invalid: bool, as_json: bool) -> None:
    """Import responses from a CSV, JSON Lines or JSON file (all or nothing by default)."""
    rejected: list[dict[str, Any]] = []

    def on_reject(position: int, _item: Any, exc: CRMError) -> None:
        rejected.append({"row": position + 1, "error": str(exc)})

    stored = responses.record_responses(
        get_crm(),
        read_response_file(file),
        source="import",
        actor=get_actor(),
        on_reject=on_reject if skip_invalid else None,
    )
    alerts = sum(1 for r in stored if r.alert is not None)
    data = {"imported": len(stored), "rejected": len(rejected), "low_scores": alerts}
    if as_json:
        print_json({**data, "rejects": rejected})
        return
    print_record(data, title=f"import of {file.name}")
    if rejected:
        print_table(rejected[:50], ["row", "error"], title="rejected rows")


@surveys.command("report")
@click.argument("key")
@click.option("--version", type=int, help="Only this version (default all).")
@click.option("--from", "start", metavar="DATE", help="Answered on or after (ISO date/time).")
@click.option("--to", "end", metavar="DATE", help="Answered before (ISO date/time).")
@click.option("--by", help="Breakdown: a customer field, attributes.KEY, version, channel, tag.")
@click.option(
    "--trend", type=click.Choice(trends.GRANULARITIES), default="month", show_default=True
)
@click.option(
    "--weighting",
    type=click.Choice(["declared", "entropy", "ahp"]),
    help="Index weights (default the survey's).",
)
@click.option(
    "--ahp-matrix",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with a pairwise matrix over the dimensions.",
)
@json_option
def report(
    key: str,
    version: int | None,
    start: str | None,
    end: str | None,
    by: str | None,
    trend: str,
    weighting: str | None,
    ahp_matrix: Path | None,
    as_json: bool,
) -> None:
    """Scores of survey KEY: NPS, CSAT, CES, dimensions, index, gaps, drivers, trend."""
    crm = get_crm()
    first, last = _day(start, "from"), _day(end, "to")
    period = None
    if first is not None or last is not None:
        period = Period(
            first or datetime(1970, 1, 1, tzinfo=UTC),
            last or crm.clock(),
        )
    matrix = _json_file(ahp_matrix, "ahp_matrix") if ahp_matrix else None
    data = scoring.survey_report(
        crm,
        key,
        version=version,
        period=period,
        by=by,
        trend=trend,
        weighting="ahp" if matrix is not None and weighting is None else weighting,
        ahp_matrix=matrix,
    )
    if as_json:
        print_json(data)
    else:
        print_report(data, get_console())


def _json_file(path: Path, field: str) -> Any:
    """The JSON document in ``path``; one-line ValidationError when it is not one."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{field}: cannot read {path}: {exc}", field=field) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{field}: {path} is not JSON: {exc}", field=field) from None
    except RecursionError:
        raise ValidationError(f"{field}: {path} is nested too deeply", field=field) from None
