"""``crm surveys ...``: parse, call a service function, print."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from crmcore import CRM, CRMError, Period, ValidationError
from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore_surveys import catalog, distribution, responses, scoring, trends
from crmcore_surveys.cli_evaluate import evaluate
from crmcore_surveys.cli_parsing import parse_day, parse_pairs, read_json_file, read_response_file
from crmcore_surveys.definitions import load_file
from crmcore_surveys.report_view import print_report, render_drivers
from crmcore_surveys.templates import TEMPLATE_VERSIONS, TEMPLATES, template


def _bootstrap_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Bootstrap seed."
    )(func)
    return click.option(
        "--bootstrap",
        type=click.IntRange(min=0, max=scoring.MAX_BOOTSTRAP),
        default=1000,
        show_default=True,
        help="Bootstrap resamples of the importance intervals (0: none).",
    )(func)


def _period(crm: CRM, start: str | None, end: str | None) -> Period | None:
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first is None and last is None:
        return None
    return Period(first or datetime(1970, 1, 1, tzinfo=UTC), last or crm.clock())


@click.group()
def surveys() -> None:
    """Satisfaction surveys: definitions, invitations, responses and scores."""


surveys.add_command(evaluate)  # crm surveys evaluate: fuzzy, grey, pca, acsi (cli_evaluate.py)


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
            {
                "template": name,
                "version": TEMPLATE_VERSIONS.get(name, 1),
                "title": t["title"],
                "questions": len(t["questions"]),
            }
            for name, t in TEMPLATES.items()
        ]
        columns = ["template", "version", "title", "questions"]
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
        filters=parse_pairs(where, "where"),
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
    answers: dict[str, Any] = parse_pairs(answer, "answer")
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
@_bootstrap_options
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
    bootstrap: int,
    seed: int,
    as_json: bool,
) -> None:
    """Scores of survey KEY: NPS, CSAT, CES, dimensions, index, gaps, drivers, trend."""
    crm = get_crm()
    period = _period(crm, start, end)
    matrix = read_json_file(ahp_matrix, "ahp_matrix") if ahp_matrix else None
    data = scoring.survey_report(
        crm,
        key,
        version=version,
        period=period,
        by=by,
        trend=trend,
        weighting="ahp" if matrix is not None and weighting is None else weighting,
        ahp_matrix=matrix,
        bootstrap=bootstrap,
        seed=seed,
    )
    if as_json:
        print_json(data)
    else:
        print_report(data, get_console())


@surveys.command("drivers")
@click.argument("key")
@click.option("--version", type=int, help="Only this version (default all).")
@click.option("--from", "start", metavar="DATE", help="Answered on or after (ISO date/time).")
@click.option("--to", "end", metavar="DATE", help="Answered before (ISO date/time).")
@_bootstrap_options
@json_option
def drivers(
    key: str,
    version: int | None,
    start: str | None,
    end: str | None,
    bootstrap: int,
    seed: int,
    as_json: bool,
) -> None:
    """Drivers of survey KEY: Pearson r, relative importance (regression), IPA grid."""
    crm = get_crm()
    data = scoring.survey_drivers(
        crm,
        key,
        version=version,
        period=_period(crm, start, end),
        bootstrap=bootstrap,
        seed=seed,
    )
    if as_json:
        print_json(data)
        return
    console = get_console()
    for renderable in render_drivers(data):
        console.print(renderable)
