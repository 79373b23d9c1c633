"""``crm loyalty ...``: parse, call a service function, print (a table, or JSON with --json)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import click
from rich.table import Table

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
from crmcore_loyalty import kpis, service


def parse_moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 datetime (no offset: UTC) or date (its start, 00:00 UTC)."""
    return None if value is None else parse_timestamp(value, option)


def parse_as_of(value: str | None) -> date | datetime | None:
    """``--as-of``: a date (the end of that day, UTC) or an ISO datetime (no offset: UTC)."""
    if value is None:
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    return parse_moment(text, "--as-of")


def _entry_line(entry: Mapping[str, Any]) -> str:
    replay = " (already applied: idempotency key reused)" if entry.get("replayed") else ""
    return (
        f"{entry['kind']} {entry['points']:+d} points for customer {entry['customer_id']}, "
        f"entry {entry['id']}{replay}"
    )


@click.group()
def loyalty() -> None:
    """Loyalty programme: members, points ledger, tiers, redemption and expiry."""


@loyalty.command()
@click.argument("customer_id", metavar="ID", type=int)
@click.option("--at", "joined_at", help="Join date/time (ISO 8601; default now).")
@click.option("--channel", help="Channel the member joined through (core channel names).")
@click.option("--member-number", help="Member number (default M + customer id on 8 digits).")
@click.option("--referred-by", type=int, help="Customer id of the member who referred them.")
@json_option
def enroll(
    customer_id: int,
    joined_at: str | None,
    channel: str | None,
    member_number: str | None,
    referred_by: int | None,
    as_json: bool,
) -> None:
    """Enroll customer ID in the programme (or re-enroll one who left)."""
    member = service.enroll(
        get_crm(),
        customer_id,
        joined_at=parse_moment(joined_at, "--at"),
        channel=channel,
        member_number=member_number,
        referred_by=referred_by,
        actor=get_actor(),
    )
    if as_json:
        print_json(member.as_dict())
    else:
        print_record(member.as_dict(), title=f"member {member.member_number}")


@loyalty.command()
@click.argument("customer_id", metavar="ID", type=int)
@click.option("--at", help="When they left (ISO 8601; default now).")
@json_option
def leave(customer_id: int, at: str | None, as_json: bool) -> None:
    """Mark member ID as having left (history and points are kept)."""
    member = service.leave(get_crm(), customer_id, at=parse_moment(at, "--at"), actor=get_actor())
    if as_json:
        print_json(member.as_dict())
    else:
        get_console().print(f"Member {safe_text(member.member_number)} left on {member.left_at}")


@loyalty.command()
@click.argument("customer_id", metavar="ID", type=int)
@click.option("--as-of", help="Date (end of day, UTC) or datetime for overdue/expiring points.")
@json_option
def balance(customer_id: int, as_of: str | None, as_json: bool) -> None:
    """Show member ID's balance, available points, tier and points expiring soon."""
    result = service.balance(get_crm(), customer_id, as_of=parse_as_of(as_of))
    data = result.as_dict()
    if as_json:
        print_json(data)
    else:
        print_record(
            {k: v for k, v in data.items() if k != "expiring"}, title=f"customer {customer_id}"
        )
        if result.expiring:
            print_table(data["expiring"], ["expires_at", "points"], title="expiring soon")


@loyalty.command()
@click.argument("customer_id", metavar="ID", type=int)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def history(customer_id: int, limit: int, offset: int, as_json: bool) -> None:
    """Show member ID's ledger, newest first, with the balance after each entry."""
    rows = service.history(get_crm(), customer_id, limit=limit, offset=offset)
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows,
            ["id", "occurred_at", "kind", "points", "balance_after", "reason", "expires_at"],
            title=f"customer {customer_id}: ledger",
        )


def _ledger_command(name: str, help_text: str, *, signed: bool = False) -> None:
    @loyalty.command(
        name,
        help=help_text,
        context_settings={"ignore_unknown_options": True} if signed else {},
    )
    @click.argument("customer_id", metavar="ID", type=int)
    @click.argument("points", type=int)
    @click.option(
        "--key",
        "idempotency_key",
        help="Idempotency key: the same key again applies nothing twice (default: random).",
    )
    @click.option("--reason", required=signed, help="Why (required for adjust).")
    @click.option("--at", help="When it takes effect (ISO 8601; default now).")
    @json_option
    def command(
        customer_id: int,
        points: int,
        idempotency_key: str | None,
        reason: str | None,
        at: str | None,
        as_json: bool,
    ) -> None:
        options: dict[str, Any] = {
            "idempotency_key": idempotency_key,
            "reason": reason,
            "at": parse_moment(at, "--at"),
            "actor": get_actor(),
        }
        operation = {"earn": service.earn, "redeem": service.redeem, "adjust": service.adjust}
        entry = operation[name](get_crm(), customer_id, points, **options)
        if as_json:
            print_json(entry.as_dict())
        else:
            get_console().print(safe_text(_entry_line(entry.as_dict())))


_ledger_command("earn", "Credit POINTS to member ID (a manual earn, expiring per the policy).")
_ledger_command("redeem", "Redeem POINTS of member ID, oldest unexpired points first.")
_ledger_command(
    "adjust",
    "Correct member ID's balance by signed POINTS (e.g. -20 or 50); --reason is required.",
    signed=True,
)


@loyalty.command("evaluate-tiers")
@click.option("--as-of", help="Date (end of day, UTC) or datetime; default now.")
@click.option("--customer", "customer_ids", type=int, multiple=True, help="Only these (repeat).")
@json_option
def evaluate_tiers(as_of: str | None, customer_ids: tuple[int, ...], as_json: bool) -> None:
    """Re-evaluate members' tiers over the rolling window; print upgrades and downgrades."""
    changes = service.evaluate_tiers(
        get_crm(),
        as_of=parse_as_of(as_of),
        customer_ids=list(customer_ids) or None,
        actor=get_actor(),
    )
    rows = [{**c.as_dict(), "at": c.at.isoformat()} for c in changes]
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows,
            ["customer_id", "from_tier", "to_tier", "reason"],
            title=f"tier changes: {len(rows)}",
        )


@loyalty.command()
@click.option("--as-of", help="Date (end of that day, UTC) or datetime; default now.")
@click.option("--dry-run", is_flag=True, help="Show what would expire; write nothing.")
@json_option
def expire(as_of: str | None, dry_run: bool, as_json: bool) -> None:
    """Write off points expired at --as-of (idempotent: a second run writes nothing)."""
    run = service.expire(get_crm(), as_of=parse_as_of(as_of), actor=get_actor(), dry_run=dry_run)
    if as_json:
        print_json({**run.as_dict(), "dry_run": True} if dry_run else run.as_dict())
    else:
        get_console().print(
            f"{'Dry run: would expire' if dry_run else 'Expired'} {run.points} points in "
            f"{run.lots} lots of {run.members} members (as of {run.as_of.isoformat()})"
            + (". Nothing was written." if dry_run else "")
        )


@loyalty.command()
@click.option("--customer", "customer_ids", type=int, multiple=True, help="Only these (repeat).")
@json_option
def backfill(customer_ids: tuple[int, ...], as_json: bool) -> None:
    """Apply the earning rules to members' purchases and refunds recorded before they joined."""
    written = service.backfill(
        get_crm(), customer_ids=list(customer_ids) or None, actor=get_actor()
    )
    if as_json:
        print_json({"entries": written})
    else:
        get_console().print(f"Wrote {written} ledger entries")


def render_report(report: Mapping[str, Any]) -> Table:
    """Build a rich table of the programme report (``crm loyalty report``, ``crm demo``)."""
    table = Table(title=f"loyalty programme as of {report['as_of'][:10]}", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    table.add_row("active members", str(report["members_active"]))
    table.add_row("members who left", str(report["members_left"]))
    table.add_row(
        "members by tier",
        safe_text(", ".join(f"{k} {v}" for k, v in report["members_by_tier"].items())),
    )
    stocks = {"active_members", "points_outstanding", "liability", "enrollment_rate"}
    for key, value in report["last_365_days"].items():
        if key == "active_members":
            continue
        shown = f"{value} {report['currency']}" if key == "liability" else str(value)
        suffix = "" if key in stocks else " (last 365 days)"
        table.add_row(safe_text(f"{key.replace('_', ' ')}{suffix}"), safe_text(shown))
    return table


@loyalty.command()
@json_option
def report(as_json: bool) -> None:
    """Print the programme report: members, tiers, points and liability, last 365 days' KPIs."""
    data = kpis.programme_report(get_crm())
    if as_json:
        print_json(data)
    else:
        get_console().print(render_report(data))
