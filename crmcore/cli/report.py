"""``crm report``: the performance report for a period, against the previous one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from crmcore.cli.context import get_console, get_crm, json_option, print_json
from crmcore.cli.files import atomic_output
from crmcore.cli.output import safe_text
from crmcore.cli.parsing import parse_timestamp
from crmcore.errors import ValidationError
from crmcore.model.signals import Period

_LENGTHS = {"week": 7, "month": 30, "quarter": 91, "year": 365}


def _period(start: str | None, end: str | None, last: str, now: Any) -> Period:
    if start or end:
        if not (start and end):
            raise ValidationError("--from and --to: give both, or neither", field="--from")
        period = Period(parse_timestamp(start, "--from"), parse_timestamp(end, "--to"))
        try:
            period.previous()
        except OverflowError:
            raise ValidationError(
                f"--from: the report compares with the previous period of the same length, "
                f"which would start before 0001-01-01 (--from {start} --to {end})",
                field="--from",
                value=start,
            ) from None
        return period
    return Period(now - timedelta(days=_LENGTHS[last]), now)


def _cell(value: Any) -> str:
    return "" if value is None else safe_text(value)


@click.command()
@click.option("--from", "start", metavar="DATE", help="Start of the period (inclusive, ISO 8601).")
@click.option("--to", "end", metavar="DATE", help="End of the period (exclusive, ISO 8601).")
@click.option(
    "--last",
    type=click.Choice(sorted(_LENGTHS)),
    default="month",
    show_default=True,
    help="Without --from/--to: the period ending now (7, 30, 91 or 365 days).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page with charts to this file.",
)
@json_option
def report(
    start: str | None, end: str | None, last: str, html_path: Path | None, as_json: bool
) -> None:
    """CRM performance: core figures and every plugin's KPIs, against the previous period."""
    from crmcore.reporting.report import build_report
    from crmcore.reporting.report_html import render_html

    crm = get_crm()
    period = _period(start, end, last, crm.clock().replace(microsecond=0))
    data = build_report(crm, period, charts=as_json or html_path is not None)
    if html_path is not None:
        with atomic_output(html_path) as out:
            out.write(render_html(data))
    if as_json:
        print_json(data)
        return
    print_report(data)
    if html_path is not None:
        get_console().print(f"HTML report written to {safe_text(html_path)}")


def print_report(data: dict[str, Any]) -> None:
    """Print the report's sections as rich tables."""
    console = get_console()
    console.print(
        f"[bold]Performance report[/bold] {data['period']['start']} to {data['period']['end']} "
        f"(previous: {data['previous_period']['start']} to {data['previous_period']['end']})"
    )
    for source, rows in data["sections"].items():
        table = Table(title=safe_text(source))
        for column in ("metric", "this period", "previous", "change", "%"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name, row in rows.items():
            pct = row["change_pct"]
            style = "green" if pct and pct > 0 else "red" if pct and pct < 0 else ""
            table.add_row(
                safe_text(name),
                _cell(row["value"]),
                _cell(row["previous"]),
                _cell(row["change"]),
                "" if pct is None else f"{pct:+.2f}%",
                style=style,
            )
        console.print(table)
