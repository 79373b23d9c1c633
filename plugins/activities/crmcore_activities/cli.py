"""``crm activities ...``: parse, call the service functions, print (tables, or ``--json``).

The service modules are imported inside the commands: ``crm --help`` imports
this module and must not pay for SQL builders, ``dateutil`` and ``holidays``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import click

from crmcore.cli.context import (
    get_actor,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore.cli.parsing import parse_timestamp
from crmcore.errors import ValidationError

_COLUMNS = [
    "id",
    "customer_id",
    "kind",
    "subject",
    "assignee",
    "due_local",
    "priority",
    "status",
    "overdue",
]


@click.group()
def activities() -> None:
    """Activities: tasks, the workbench, reminders, cadence and care rules, plan, report."""


def _show(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print_json(data)
    else:
        print_record(data, title=title)


def _list(rows: list[dict[str, Any]], as_json: bool, title: str, extra: list[str] = []) -> None:  # noqa: B006
    if as_json:
        print_json(rows)
    else:
        print_table(rows, _COLUMNS + extra, title=title)


@activities.command("add")
@click.option("--customer", "customer_id", type=int, required=True, help="Customer id.")
@click.option("--kind", required=True, help="call, meeting, visit, email, message, todo, care ...")
@click.option("--subject", required=True)
@click.option("--due", required=True, help="ISO time; without offset: in the assignee's zone.")
@click.option("--assignee", default=None, help="Default: you (the actor), else the owner.")
@click.option("--contact", "contact_id", type=int, default=None, help="Contact person id.")
@click.option("--priority", type=click.IntRange(1, 3), default=2, show_default=True)
@click.option("--duration", "duration_minutes", type=click.IntRange(1, 100_000), default=None)
@click.option("--notes", default=None)
@click.option("--ref", default=None, help="Generic reference TYPE:ID, e.g. sales.deal:17.")
@json_option
def add_command(ref: str | None, as_json: bool, **fields: Any) -> None:
    """Plan an activity on a customer."""
    from crmcore_activities import activities as act

    data = {k: v for k, v in fields.items() if v is not None}
    if ref is not None:
        if ":" not in ref:
            raise ValidationError("--ref: expected TYPE:ID, e.g. sales.deal:17", field="ref")
        data["ref_type"], data["ref_id"] = ref.split(":", 1)
    _show(act.add_activity(get_crm(), data, actor=get_actor()), as_json, "activity planned")


@activities.command("show")
@click.argument("activity_id", type=int)
@json_option
def show_command(activity_id: int, as_json: bool) -> None:
    """Show activity ACTIVITY_ID."""
    from crmcore_activities import activities as act

    _show(act.get_activity(get_crm(), activity_id), as_json, f"activity {activity_id}")


@activities.command("list")
@click.option("--customer", "customer_id", type=int, default=None)
@click.option("--user", "assignee", default=None, help="Assignee.")
@click.option("--status", type=click.Choice(["planned", "done", "cancelled"]), default=None)
@click.option("--ref", default=None, help="Generic reference TYPE:ID.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def list_command(ref: str | None, as_json: bool, **filters: Any) -> None:
    """List activities, by due time."""
    from crmcore_activities import activities as act

    if ref is not None:
        if ":" not in ref:
            raise ValidationError("--ref: expected TYPE:ID, e.g. sales.deal:17", field="ref")
        filters["ref_type"], filters["ref_id"] = ref.split(":", 1)
    _list(act.list_activities(get_crm(), **filters), as_json, "activities")


@activities.command("done")
@click.argument("activity_id", type=int)
@click.option("--outcome", default=None)
@click.option("--at", default=None, help="When it was done (ISO, default now).")
@json_option
def done_command(activity_id: int, outcome: str | None, at: str | None, as_json: bool) -> None:
    """Mark an activity done (records the interaction)."""
    from crmcore_activities import activities as act

    when = parse_timestamp(at, "--at") if at is not None else None
    done = act.complete_activity(
        get_crm(), activity_id, outcome=outcome, at=when, actor=get_actor()
    )
    _show(done, as_json, f"activity {activity_id} done")


@activities.command("cancel")
@click.argument("activity_id", type=int)
@click.option("--reason", default=None)
@json_option
def cancel_command(activity_id: int, reason: str | None, as_json: bool) -> None:
    """Cancel a planned activity."""
    from crmcore_activities import activities as act

    gone = act.cancel_activity(get_crm(), activity_id, reason=reason, actor=get_actor())
    _show(gone, as_json, f"activity {activity_id} cancelled")


@activities.command("reschedule")
@click.argument("activity_id", type=int)
@click.option("--due", required=True, help="ISO time; without offset: in the assignee's zone.")
@json_option
def reschedule_command(activity_id: int, due: str, as_json: bool) -> None:
    """Move a planned activity's due time."""
    from crmcore_activities import activities as act

    moved = act.reschedule_activity(get_crm(), activity_id, due, actor=get_actor())
    _show(moved, as_json, f"activity {activity_id} rescheduled")


def _bench(view: str, user: str | None, as_json: bool) -> None:
    from crmcore_activities import workbench

    rows = workbench.workbench(get_crm(), view, user=user)
    _list(rows, as_json, f"{view}{' for ' + user if user else ''}", ["customer_name", "stage"])


for _view, _help in (
    ("today", "What is due today (the user's local day)."),
    ("week", "What is due in the next seven local days."),
    ("overdue", "Planned activities due before now."),
):

    def _make(view: str) -> Any:
        @click.option("--user", default=None, help="Whose workbench (default: everyone visible).")
        @json_option
        def command(user: str | None, as_json: bool) -> None:
            _bench(view, user, as_json)

        return command

    activities.command(_view, help=_help)(_make(_view))


@activities.command("reminders")
@click.option("--user", default=None)
@click.option("--send", is_flag=True, help="Hand them to the notifier hook and mark them.")
@json_option
def reminders_command(user: str | None, send: bool, as_json: bool) -> None:
    """Reminders due (planned activities whose reminder time has come)."""
    from crmcore_activities import workbench

    crm = get_crm()
    rows = (
        workbench.send_reminders(crm, actor=get_actor())
        if send
        else workbench.reminders(crm, user=user)
    )
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows, ["customer_id", "assignee", "kind", "subject", "due_local"], title="reminders"
        )


@activities.command("plan")
@click.option("--through", default=None, help="Last day to plan (YYYY-MM-DD, default today).")
@click.option("--rule", "names", multiple=True, help="Only this rule (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would be created; change nothing.")
@json_option
def plan_command(through: str | None, names: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Create the tasks the rules owe up to today (idempotent; for cron)."""
    from crmcore_activities import planner

    result = planner.plan(
        get_crm(), through=through, dry_run=dry_run, rules=list(names) or None, actor=get_actor()
    )
    if as_json:
        print_json(result)
    else:
        rows = [{"rule": k, "tasks": v} for k, v in result["rules"].items()]
        verb = "would create" if dry_run else "created"
        print_table(
            rows,
            ["rule", "tasks"],
            title=f"plan through {result['through']}: {verb} {result['created']}",
        )


@activities.group("rules")
def rules_group() -> None:
    """Cadence and care rules."""


@rules_group.command("list")
@json_option
def rules_list(as_json: bool) -> None:
    """List the rules."""
    from crmcore_activities import rules

    rows = rules.list_rules(get_crm())
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows,
            [
                "id",
                "name",
                "type",
                "kind",
                "subject",
                "assign",
                "start_date",
                "planned_through",
                "active",
            ],
            title="rules",
        )


@rules_group.command("add")
@click.argument("definition")
@click.option("--start", "start_date", default=None, help="First day (YYYY-MM-DD, default today).")
@json_option
def rules_add(definition: str, start_date: str | None, as_json: bool) -> None:
    """Add a rule from a JSON object (name, type, kind, subject, params, targets, assign)."""
    from crmcore_activities import rules

    try:
        data = json.loads(definition)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"definition: not JSON ({exc.msg})", field="definition") from None
    _show(
        rules.add_rule(get_crm(), data, start_date=start_date, actor=get_actor()),
        as_json,
        "rule added",
    )


@rules_group.command("disable")
@click.argument("name")
def rules_disable(name: str) -> None:
    """Switch a rule off (its tasks stay)."""
    from crmcore_activities import rules

    rules.set_rule_active(get_crm(), name, False, actor=get_actor())
    click.echo(f"rule {name} disabled")


@rules_group.command("enable")
@click.argument("name")
def rules_enable(name: str) -> None:
    """Switch a rule on again."""
    from crmcore_activities import rules

    rules.set_rule_active(get_crm(), name, True, actor=get_actor())
    click.echo(f"rule {name} enabled")


def _day(value: str, option: str) -> datetime:
    try:
        return parse_timestamp(date.fromisoformat(value).isoformat() + "T00:00:00+00:00", option)
    except ValueError:
        raise ValidationError(
            f"{option}: {value!r} is not a date (YYYY-MM-DD)", field=option
        ) from None


@activities.command("report")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD, UTC).")
@click.option("--to", "end", required=True, help="Day after the last (YYYY-MM-DD, UTC).")
@click.option("--by", type=click.Choice(["person", "team"]), default="person", show_default=True)
@json_option
def report_command(start: str, end: str, by: str, as_json: bool) -> None:
    """Planned, done, overdue rate, median lateness per person or team; cadence coverage."""
    from crmcore import Period
    from crmcore_activities import measures

    first, last = _day(start, "--from"), _day(end, "--to")
    if last <= first:
        raise ValidationError("--to: must be after --from", field="to")
    crm = get_crm()
    period = Period(first, last)
    rows = measures.report(crm, period, by=by)
    cover = measures.coverage(crm, at=min(last, crm.clock()))
    care = measures.care_effect(crm, period)
    if as_json:
        print_json({"rows": rows, "coverage": cover, **care})
        return
    print_table(
        rows, [by, "planned", "done", "overdue_rate", "median_lateness_hours"], title="activities"
    )
    print_table(
        [{"rule": k, **v} for k, v in cover["rules"].items()],
        ["rule", "targeted", "contacted", "coverage"],
        title=f"cadence coverage: {cover['coverage']}",
    )
    print_record(care, title="care")
