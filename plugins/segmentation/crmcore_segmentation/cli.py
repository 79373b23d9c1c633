"""``crm segments ...``: parse, call a service function, print."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from crmcore import CRM, ValidationError
from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore_segmentation import churn, retention, rfm, value
from crmcore_segmentation import segments as saved
from crmcore_segmentation.json_stream import echo_json_array, echo_json_object
from crmcore_segmentation.settings import profit_description, settings_of


def parse_as_of(text: str | None) -> datetime | None:
    """``--as-of``: an ISO date (midnight UTC) or an aware ISO datetime; ValidationError else."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"--as-of: {text!r} is not an ISO 8601 date or datetime", field="as_of"
        ) from None
    if moment.tzinfo is None:
        if len(text) > 10:
            raise ValidationError(
                f"--as-of: {text!r} needs a time zone (e.g. +00:00)", field="as_of"
            )
        moment = moment.replace(tzinfo=UTC)
    return moment


def _as_of_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        "as_of",
        metavar="DATE",
        help="Analysis date (ISO; a date means midnight UTC). Default: now.",
    )(func)


def _window_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--window-days", type=int, help="RFM window in days before --as-of (default: config)."
    )(func)


def _limit_option(default: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--limit",
        type=click.IntRange(min=0),
        default=default,
        show_default=True,
        help="Rows to show, with --json too (0: every row, streamed).",
    )


def _rows(limit: int) -> int | None:
    """``--limit`` as a service limit: 0 means no limit."""
    return limit or None


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: datetimes in ISO 8601, Decimals and others as strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


_plain = plain


def _measure_caption(crm: CRM, basis: str | None) -> str | None:
    """For the profit basis: the profit form in words."""
    if value.measure_of(crm, basis).startswith("profit_"):
        return f"profit = {profit_description(settings_of(crm))}"
    return None


@click.group("segments")
def segments_group() -> None:
    """RFM, value tiers, Pareto, CLV, saved segments, churn warning and cohorts."""


def render_grid(grid: dict[str, Any], title: str = "RFM grid: customers") -> Table:
    """A rich table of the R x F grid of customer counts (R5 on top)."""
    table = Table(title=title)
    table.add_column("R \\ F")
    for f in grid["f"]:
        table.add_column(f"F{f}", justify="right")
    for r, row in zip(grid["r"], grid["counts"], strict=True):
        table.add_row(f"R{r}", *(str(v) for v in row))
    return table


@segments_group.command("rfm")
@_as_of_option
@_window_option
@click.option("--segment", help="Only customers of this RFM segment.")
@click.option("--customer", "customer_ids", type=int, multiple=True, help="Only this customer.")
@_limit_option(20)
@click.option("--grid", is_flag=True, help="Show the R x F grid and the segment summary.")
@json_option
def rfm_command(
    as_of: str | None,
    window_days: int | None,
    segment: str | None,
    customer_ids: Sequence[int],
    limit: int,
    grid: bool,
    as_json: bool,
) -> None:
    """Show RFM scores and segments (or, with --grid, the grid and segment summary)."""
    crm = get_crm()
    moment = parse_as_of(as_of)
    if grid:
        data = rfm.rfm_grid(crm, as_of=moment, window_days=window_days)
        summary = rfm.segment_summary(crm, as_of=moment, window_days=window_days)
        if as_json:
            print_json(_plain({"grid": data, "segments": summary}))
            return
        get_console().print(render_grid(data))
        print_table(
            summary, ["segment", "customers", "monetary", "mean_monetary"], title="Segments"
        )
        return
    scores = rfm.iter_rfm_scores(
        crm,
        as_of=moment,
        window_days=window_days,
        customer_ids=list(customer_ids) or None,
        segment=segment,
        limit=_rows(limit),
    )
    if as_json:
        echo_json_array(s.as_dict() for s in scores)
    else:
        rows = [s.as_dict() for s in scores]
        columns = ["customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment"]
        print_table(rows, columns, title="RFM scores")


@segments_group.command("tiers")
@click.option("--basis", type=click.Choice(value.BASES), help="Value basis (default: config).")
@click.option("--members", "tier", type=click.Choice(value.TIERS), help="List this tier.")
@_limit_option(20)
@_as_of_option
@_window_option
@json_option
def tiers_command(
    basis: str | None,
    tier: str | None,
    limit: int,
    as_of: str | None,
    window_days: int | None,
    as_json: bool,
) -> None:
    """Show customers and value per tier (high, medium, low), or one tier's members."""
    crm = get_crm()
    moment = parse_as_of(as_of)
    if tier:
        rows = value.iter_tier_members(
            crm, tier, basis, as_of=moment, window_days=window_days, limit=_rows(limit)
        )
        if as_json:
            echo_json_array(_plain(r) for r in rows)
        else:
            print_table(
                list(rows),
                ["customer_id", "value"],
                title=f"Tier {tier} by {value.measure_of(crm, basis)}",
                caption=_measure_caption(crm, basis),
            )
        return
    summary = [
        {
            "tier": t.tier,
            "customers": t.customers,
            "value": t.value,
            "share_percent": t.share_percent,
            "measure": t.measure,
        }
        for t in value.tiers(crm, basis, as_of=moment, window_days=window_days)
    ]
    if as_json:
        print_json(_plain(summary))
    else:
        print_table(
            summary,
            ["tier", "customers", "value", "share_percent"],
            title=f"Value tiers by {value.measure_of(crm, basis)}",
            caption=_measure_caption(crm, basis),
        )


@segments_group.command("pareto")
@click.option("--basis", type=click.Choice(value.BASES), help="Value basis (default: config).")
@click.option("--percent", help="Share of the total value (default: config, 80).")
@_limit_option(20)
@_as_of_option
@_window_option
@json_option
def pareto_command(
    basis: str | None,
    percent: str | None,
    limit: int,
    as_of: str | None,
    window_days: int | None,
    as_json: bool,
) -> None:
    """Show the key customers: the smallest set producing the share of revenue or profit."""
    crm, moment = get_crm(), parse_as_of(as_of)
    summary = value.pareto_summary(
        crm, basis, percent=percent, as_of=moment, window_days=window_days
    )
    members = value.iter_pareto_members(
        crm,
        summary.basis,
        percent=summary.percent,
        as_of=moment,
        window_days=window_days,
        limit=_rows(limit),
    )
    head = _plain(summary.as_dict())
    if as_json:
        echo_json_object(head, "customers", (_plain(m) for m in members))
        return
    print_record(head, title=f"Pareto set by {summary.measure}")
    print_table(
        list(members),
        ["customer_id", "value"],
        title=f"Key customers by {summary.measure}",
        caption=_measure_caption(crm, summary.basis),
    )


@segments_group.command("clv")
@click.option("--customer", "customer_ids", type=int, multiple=True, help="Only this customer.")
@_limit_option(20)
@_as_of_option
@json_option
def clv_command(customer_ids: Sequence[int], limit: int, as_of: str | None, as_json: bool) -> None:
    """Show historic and predictive lifetime value and profit, highest predictive first."""
    crm = get_crm()
    found = value.iter_customer_values(
        crm,
        as_of=parse_as_of(as_of),
        customer_ids=list(customer_ids) or None,
        limit=None if customer_ids else _rows(limit),
    )
    if as_json:
        echo_json_array(v.as_dict() for v in found)
    else:
        rows = [v.as_dict() for v in found]
        columns = [
            "customer_id",
            "purchases",
            "historic_clv",
            "predictive_clv",
            "profit",
            "segment",
        ]
        print_table(
            rows,
            columns,
            title="Customer lifetime value",
            caption=f"profit = {profit_description(settings_of(crm))}",
        )


@segments_group.command("costs")
@click.argument("customer_id", metavar="ID", type=int)
@click.option("--acquisition", help="Acquisition cost of the customer.")
@click.option("--service", help="Lifetime service cost of the customer.")
@json_option
def costs_command(
    customer_id: int, acquisition: str | None, service: str | None, as_json: bool
) -> None:
    """Set a customer's acquisition and/or service cost (used by profit)."""
    data = value.set_costs(
        get_crm(), customer_id, acquisition=acquisition, service=service, actor=get_actor()
    )
    if as_json:
        print_json(data)
    else:
        print_record(data, title=f"customer {customer_id}: costs")


@segments_group.command("define")
@click.argument("key")
@click.argument("rule", required=False)
@click.option(
    "--file",
    "rule_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the rule (JSON) from this file.",
)
@click.option("--name", help="Display name (default: the key).")
@click.option("--description")
@json_option
def define_command(
    key: str,
    rule: str | None,
    rule_file: Path | None,
    name: str | None,
    description: str | None,
    as_json: bool,
) -> None:
    """Save segment KEY with a JSON RULE (or --file) and compute its members."""
    if (rule is None) == (rule_file is None):
        raise ValidationError("rule: give RULE or --file, not both or neither", field="rule")
    text = rule if rule is not None else rule_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"rule: not valid JSON: {exc.msg}", field="rule") from None
    segment = saved.define_segment(
        get_crm(), key, parsed, name=name, description=description, actor=get_actor()
    )
    if as_json:
        print_json(segment.as_dict())
    else:
        print_record(segment.as_dict(), title=f"segment {key}")


@segments_group.command("list")
@_limit_option(0)
@json_option
def list_command(limit: int, as_json: bool) -> None:
    """List the saved segments with their member counts."""
    rows = [s.as_dict() for s in saved.list_segments(get_crm(), limit=_rows(limit))]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["key", "name", "member_count", "refreshed_at"], title="Segments")


@segments_group.command("members")
@click.argument("key")
@_limit_option(50)
@json_option
def members_command(key: str, limit: int, as_json: bool) -> None:
    """List the current members of segment KEY."""
    rows = saved.iter_segment_members(get_crm(), key, limit=_rows(limit))
    if as_json:
        echo_json_array(_plain(r) for r in rows)
    else:
        print_table(
            [_plain(r) for r in rows], ["customer_id", "name", "joined_at"], title=f"Segment {key}"
        )


@segments_group.command("refresh")
@click.argument("keys", nargs=-1)
@json_option
def refresh_command(keys: Sequence[str], as_json: bool) -> None:
    """Recompute the members of KEYS (default: every segment)."""
    result = saved.refresh_segments(get_crm(), list(keys) or None, actor=get_actor())
    rows = [{"segment": k, **v} for k, v in result.items()]
    if as_json:
        print_json(result)
    else:
        print_table(rows, ["segment", "joined", "left", "members"], title="Refreshed")


@segments_group.command("churn")
@click.option("--apply", "apply_moves", is_flag=True, help="Move flagged customers to at_risk.")
@_limit_option(20)
@_as_of_option
@json_option
def churn_command(apply_moves: bool, limit: int, as_of: str | None, as_json: bool) -> None:
    """Score churn risk; with --apply, move customers over the threshold to at_risk.

    Highest score first. With --apply every flagged customer is moved; the
    first --limit of them are shown, with the number moved.
    """
    crm = get_crm()
    moment = parse_as_of(as_of)
    title = "Moved to at_risk" if apply_moves else "Churn risk over the threshold"
    if apply_moves:
        moves = churn.apply_churn(crm, as_of=moment, keep=_rows(limit), actor=get_actor())
        found: Iterable[churn.ChurnAssessment] = moves.top
        caption = f"{moves.moved} customers moved"
    else:
        found = churn.ranked_churn(crm, as_of=moment, limit=_rows(limit))
        caption = None
    if as_json:
        echo_json_array(a.as_dict() for a in found)
        return
    shown = [{**a.as_dict(), "reasons": "; ".join(a.reasons)} for a in found]
    print_table(
        shown,
        ["customer_id", "stage", "score", "reasons"],
        title=title,
        caption=caption or f"{len(shown)} customers shown",
    )


@segments_group.command("cohorts")
@click.option("--months", type=int, default=12, show_default=True)
@_as_of_option
@json_option
def cohorts_command(months: int, as_of: str | None, as_json: bool) -> None:
    """Show the cohort retention matrix (% by first-purchase month and months since)."""
    cohorts = retention.cohort_matrix(get_crm(), as_of=parse_as_of(as_of), months=months)
    if as_json:
        print_json([c.as_dict() for c in cohorts])
        return
    table = Table(title="Cohort retention (%)")
    table.add_column("cohort")
    table.add_column("size", justify="right")
    for k in range(months):
        table.add_column(f"+{k}", justify="right")
    for c in cohorts:
        table.add_row(c.month, str(c.size), *("" if r is None else f"{r:.0f}" for r in c.retention))
    get_console().print(table)
