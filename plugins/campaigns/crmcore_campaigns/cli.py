"""``crm campaigns ...``: parse, call the service functions, print (tables, or ``--json``).

The service modules are imported inside the commands: ``crm --help`` imports
this module and must not pay for SQL builders and scipy.
"""

from __future__ import annotations

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
from crmcore.cli.output import safe_text
from crmcore.cli.parsing import parse_timestamp
from crmcore.errors import ValidationError

_LIST = ["id", "name", "status", "audience_size", "launched_at", "reminder_status"]


@click.group()
def campaigns() -> None:
    """Campaigns: audiences, variants, control groups, reminders, budgets and uplift."""


def _variant(text: str) -> dict[str, Any]:
    """``NAME=TEMPLATE`` or ``NAME=TEMPLATE:WEIGHT``."""
    name, sep, rest = text.partition("=")
    if not sep or not rest:
        raise ValidationError(
            f"--variant: {text!r} is not NAME=TEMPLATE[:WEIGHT]", field="variants"
        )
    template, colon, weight = rest.partition(":")
    if colon and not weight.isdigit():
        raise ValidationError(f"--variant: weight {weight!r} is not a number", field="variants")
    return {"name": name.strip(), "template": template, "weight": int(weight) if colon else 1}


def _audience(
    filter_text: str | None, segment: str | None, rfm: tuple[str, ...], customers: str | None
) -> dict[str, Any]:
    given = [
        (k, v)
        for k, v in (
            ("filter", filter_text),
            ("segment", segment),
            ("rfm", list(rfm) or None),
            ("customers", customers),
        )
        if v is not None
    ]
    if len(given) != 1:
        raise ValidationError(
            "audience: give exactly one of --filter, --segment, --rfm, --customers",
            field="audience",
        )
    kind, value = given[0]
    if kind != "customers":
        return {kind: value}
    try:
        ids = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ValidationError(
            f"--customers: {customers!r} is not a list of ids", field="audience"
        ) from None
    return {kind: ids}


@campaigns.command("create")
@click.argument("name")
@click.option("--filter", "filter_text", default=None, help='e.g. "stage=at_risk tag=vip".')
@click.option("--segment", default=None, help="A saved segmentation segment key.")
@click.option("--rfm", multiple=True, help="An RFM segment (repeatable), e.g. at_risk.")
@click.option("--customers", default=None, help="Customer ids, comma-separated.")
@click.option("--template", default=None, help="The messaging template (one variant, A).")
@click.option("--variant", "variants", multiple=True, help="NAME=TEMPLATE[:WEIGHT] (repeatable).")
@click.option("--channel", default=None, help="Messaging channel (default: configured).")
@click.option("--control-share", default=None, help="Share held out, e.g. 0.1.")
@click.option("--no-stratify", is_flag=True, help="Do not stratify by value tier.")
@click.option("--seed", type=click.IntRange(0), default=None, help="Default: the campaign id.")
@click.option("--budget", default=None, help="Budget in the campaign's currency.")
@click.option("--cost-per-message", default=None)
@click.option("--currency", default=None)
@click.option("--margin", default=None, help="Margin on revenue (default 1).")
@click.option("--attribution-days", type=click.IntRange(1, 3650), default=None)
@click.option("--send-at", default=None, help="ISO time of the first message (default: launch).")
@click.option("--reminder-days", type=click.IntRange(1, 365), default=None)
@json_option
def create_command(
    name: str,
    filter_text: str | None,
    segment: str | None,
    rfm: tuple[str, ...],
    customers: str | None,
    variants: tuple[str, ...],
    no_stratify: bool,
    send_at: str | None,
    as_json: bool,
    **fields: Any,
) -> None:
    """Create a draft campaign NAME."""
    from crmcore_campaigns import campaigns as service

    data: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    data["name"] = name
    data["audience"] = _audience(filter_text, segment, rfm, customers)
    if variants:
        data["variants"] = [_variant(v) for v in variants]
    if no_stratify:
        data["stratify"] = False
    if send_at is not None:
        data["send_at"] = parse_timestamp(send_at, "--send-at")
    created = service.create_campaign(get_crm(), data, actor=get_actor())
    _show(created, as_json, f"campaign {created['id']} created (draft)")


def _show(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print_json(data)
    else:
        print_record(data, title=title)


@campaigns.command("show")
@click.argument("campaign_id", metavar="ID", type=int)
@json_option
def show_command(campaign_id: int, as_json: bool) -> None:
    """Show campaign ID."""
    from crmcore_campaigns import campaigns as service

    _show(service.get_campaign(get_crm(), campaign_id), as_json, f"campaign {campaign_id}")


@campaigns.command("list")
@click.option("--status", default=None, help="draft, launched or stopped.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def list_command(status: str | None, limit: int, as_json: bool) -> None:
    """List campaigns, newest first."""
    from crmcore_campaigns import campaigns as service

    rows = service.list_campaigns(get_crm(), status=status, limit=limit)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, _LIST, title="campaigns")


@campaigns.command("launch")
@click.argument("campaign_id", metavar="ID", type=int)
@click.option("--no-send", is_flag=True, help="Freeze the audience and assign groups only.")
@json_option
def launch_command(campaign_id: int, no_send: bool, as_json: bool) -> None:
    """Launch campaign ID: freeze its audience, hold out the control group, send step 1."""
    from crmcore_campaigns import launching

    summary = launching.launch_campaign(get_crm(), campaign_id, send=not no_send, actor=get_actor())
    _show(summary, as_json, f"campaign {campaign_id} launched")


@campaigns.command("stop")
@click.argument("campaign_id", metavar="ID", type=int)
@json_option
def stop_command(campaign_id: int, as_json: bool) -> None:
    """Stop campaign ID: its queued messages are cancelled, no reminder follows."""
    from crmcore_campaigns import launching

    _show(
        launching.stop_campaign(get_crm(), campaign_id, actor=get_actor()),
        as_json,
        f"campaign {campaign_id} stopped",
    )


@campaigns.command("run")
@json_option
def run_command(as_json: bool) -> None:
    """Send every reminder step that is due (idempotent; run it from a scheduler)."""
    from crmcore_campaigns import launching

    reports = launching.send_reminders(get_crm(), actor=get_actor())
    if as_json:
        print_json(reports)
    else:
        print_table(
            reports,
            ["campaign_id", "reminded", "skipped_for_budget", "reminder_status"],
            title="reminders sent",
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _interval(e: dict[str, Any] | None, pct: bool) -> str:
    if e is None:
        return "n/a"
    fmt = _pct if pct else (lambda v: "-" if v is None else f"{v:,.2f}")
    if e["low"] is None:
        return f"{fmt(e['estimate'])} (no interval)"
    return f"{fmt(e['estimate'])} (95% CI {fmt(e['low'])} to {fmt(e['high'])})"


def print_results(found: dict[str, Any]) -> None:
    """Print a campaign's results readably: groups, variants, uplift, revenue, ROI, test."""
    groups = [
        ("control", found["control"], None),
        *((str(v["variant"]), v, v["uplift"]) for v in found["variants"]),
        ("treated", found["treated"], found["uplift"]),
    ]
    rows = [
        {
            "group": label,
            "n": g["n"],
            "delivered": g["delivered"],
            "clicked": g["clicked"],
            "converted": g["conversions"],
            "rate": _pct(g["conversion_rate"]),
            "revenue": f"{g['revenue']:.2f}",
            "uplift": "" if up is None else _pct(up["estimate"]),
        }
        for label, g, up in groups
    ]
    print_table(
        rows,
        ["group", "n", "delivered", "clicked", "converted", "rate", "revenue", "uplift"],
        title=f"campaign {found['campaign_id']}: {found['name']} "
        f"({found['attribution_days']}-day window, {found['currency']})",
    )
    console = get_console()
    console.print(f"Uplift (treated - control): {_interval(found['uplift'], True)}")
    for v in found["variants"]:
        console.print(f"  variant {safe_text(v['variant'])}: {_interval(v['uplift'], True)}")
    console.print(f"Incremental revenue: {_interval(found['incremental_revenue'], False)}")
    roi = found["roi"]
    console.print(
        f"Messages sent: {found['messages_sent']}, cost {found['cost']}; ROI: "
        + ("n/a" if roi is None else f"{roi:.2f}")
    )
    test = found["variant_comparison"]
    if test["p_value"] is not None:
        console.print(
            f"Variant comparison: chi-square {test['chi2']:.3f} (dof {test['dof']}), "
            f"p = {test['p_value']:.4f}"
        )
    console.print(f"Status: {safe_text(found['status'])}")


@campaigns.command("results")
@click.argument("campaign_id", metavar="ID", type=int)
@json_option
def results_command(campaign_id: int, as_json: bool) -> None:
    """Show the results of campaign ID: delivered, clicked, converted, uplift, ROI."""
    from crmcore_campaigns import results

    found = results.campaign_results(get_crm(), campaign_id)
    if as_json:
        print_json(found)
    else:
        print_results(found)
