"""``crm sales forecast|funnel|targets|performance``: the aggregates, computed in SQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.cli.parsing import parse_timestamp
from crmcore_sales import forecast, funnel, performance


def _quarter(today: date) -> tuple[str, str]:
    first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    after = date(first.year + (first.month == 10), (first.month + 2) % 12 + 1, 1)
    return first.isoformat(), after.isoformat()


def _range(start: str | None, end: str | None) -> tuple[str, str]:
    default_start, default_end = _quarter(get_crm().clock().date())
    return start or default_start, end or default_end


_START = click.option("--start", help="First day (default: this quarter's).")
_END = click.option("--end", help="Day after the last (default: next quarter's first).")


@click.command("forecast")
@_START
@_END
@click.option(
    "--period", type=click.Choice(["month", "quarter"]), default="month", show_default=True
)
@click.option(
    "--by", type=click.Choice(list(forecast.DIMENSIONS)), help="Group by owner, team or pipeline."
)
@click.option("--pipeline", help="Only this pipeline.")
@click.option("--backtest", "backtest_at", help="Also replay the history to this instant.")
@json_option
def forecast_command(
    start: str | None,
    end: str | None,
    period: str,
    by: str | None,
    pipeline: str | None,
    backtest_at: str | None,
    as_json: bool,
) -> None:
    """Weighted pipeline per period, forecast categories and the empirical win rate per stage."""
    crm = get_crm()
    first, after = _range(start, end)
    data: dict[str, Any] = {
        "weighted": forecast.weighted_pipeline(
            crm, start=first, end=after, period=period, by=by, pipeline=pipeline
        ),
        "categories": forecast.categories(crm, start=first, end=after),
        "win_rates": forecast.stage_win_rates(crm, pipeline=pipeline),
    }
    if backtest_at is not None:
        data["backtest"] = forecast.backtest(crm, as_of=parse_timestamp(backtest_at, "--backtest"))
    if as_json:
        print_json(data)
        return
    columns = ["period", "key", "deals", "amount", "weighted", "currency"]
    print_table(data["weighted"], columns, title=f"weighted pipeline {first} to {after}")
    print_record(data["categories"], title="forecast categories")
    print_table(
        data["win_rates"],
        ["stage", "configured", "empirical", "reached", "won", "lost"],
        title="win rate per stage (%): configured vs empirical",
    )
    if "backtest" in data:
        print_record(data["backtest"], title="backtest")


@click.command("funnel")
@_START
@_END
@click.option("--pipeline", help="Pipeline (default: the configured one).")
@click.option("--owner", help="Only this salesperson's deals.")
@json_option
def funnel_command(
    start: str | None, end: str | None, pipeline: str | None, owner: str | None, as_json: bool
) -> None:
    """Stage-to-stage conversion, median days in stage, cycle length and sales velocity."""
    first, after = _range(start, end)
    report = funnel.funnel(get_crm(), start=first, end=after, pipeline=pipeline, owner=owner)
    if as_json:
        print_json(report)
        return
    print_table(
        report["stages"],
        ["stage", "reached", "next", "advanced", "conversion", "median_days_in_stage"],
        title=f"funnel {report['pipeline']} {first} to {after} (cohort {report['cohort']})",
    )
    print_record({k: v for k, v in report.items() if k != "stages"}, title="velocity")


@click.group("targets", invoke_without_command=True)
@json_option
@click.pass_context
def targets_group(context: click.Context, as_json: bool) -> None:
    """List the quotas; ``targets set`` adds or replaces one."""
    if context.invoked_subcommand is not None:
        return
    found = performance.list_targets(get_crm())
    if as_json:
        print_json(found)
    else:
        print_table(
            found, ["id", "owner", "team", "start", "end", "amount", "currency"], title="targets"
        )


@targets_group.command("set")
@click.option("--owner", help="The salesperson.")
@click.option("--team", help="The team (instead of an owner).")
@click.option("--start", required=True, help="First day.")
@click.option("--end", required=True, help="Day after the last.")
@click.option("--amount", required=True, help="The quota.")
@click.option("--currency", "currency_code", help="ISO currency (default: the configured one).")
@json_option
def set_target_command(as_json: bool, **given: Any) -> None:
    """Set the quota of an owner or a team for a period."""
    target = performance.set_target(get_crm(), actor=get_actor(), **given)
    if as_json:
        print_json(target)
    else:
        print_record(target, title=f"target {target['id']}")


@click.command("performance")
@_START
@_END
@click.option("--by", type=click.Choice(["owner", "team"]), default="owner", show_default=True)
@json_option
def performance_command(start: str | None, end: str | None, by: str, as_json: bool) -> None:
    """Per-salesperson (or team) figures and the leaderboard."""
    first, after = _range(start, end)
    rows = performance.performance(get_crm(), start=first, end=after, by=by)
    if as_json:
        print_json(rows)
        return
    columns = ["rank", by, "won", "lost", "win_rate", "won_amount", "average_deal_size"]
    more = ["median_cycle_days", "target", "attained", "attainment", "coverage"]
    print_table(rows, [*columns, *more], title=f"leaderboard {first} to {after}")
    if not rows:
        get_console().print("no closed or open deals with an owner in the period")


def register_reports(group: click.Group) -> None:
    """Add the report commands to ``crm sales``."""
    for command in (forecast_command, funnel_command, targets_group, performance_command):
        group.add_command(command)


__all__ = ["register_reports"]
