"""``crm complaints ...``: parse, call the service, print (tables, or JSON with ``--json``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from crmcore import Period
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
from crmcore_complaints import analytics
from crmcore_complaints.entities import Complaint
from crmcore_complaints.service import ComplaintService
from crmcore_complaints.workflow import Severity, State

_LIST_COLUMNS = ["id", "customer_id", "category", "severity", "state", "assignee", "opened_at"]
_LENGTHS = {"week": 7, "month": 30, "quarter": 91, "year": 365}


def _service() -> ComplaintService:
    return ComplaintService(get_crm())


def _summary(complaint: Complaint) -> dict[str, Any]:
    data = complaint.to_json()
    breached = [
        name
        for name, flag in (
            ("first_response", complaint.first_response_breached),
            ("resolution", complaint.resolution_breached),
        )
        if flag
    ]
    return {**{k: data[k] for k in _LIST_COLUMNS}, "breached": ", ".join(breached)}


def _print_complaint(complaint: Complaint, as_json: bool, title: str) -> None:
    if as_json:
        print_json(complaint.to_json())
    else:
        print_record(complaint.to_json(), title=title)


@click.group()
def complaints() -> None:
    """Complaint handling: intake, workflow, SLA sweep, resolution and analytics."""


@complaints.command("open")
@click.option("--customer", "customer_id", type=int, required=True, help="Customer id.")
@click.option("--category", required=True, help="A node of the category tree (delivery/late).")
@click.option("--severity", type=click.Choice([s.value for s in Severity]), help="Default: config.")
@click.option("--channel", default="other", show_default=True, help="Core channel of the intake.")
@click.option("--reference", help="Product or order reference.")
@click.option("--description", help="What the customer complains about.")
@click.option("--assignee", help="Agent who owns the complaint.")
@json_option
def open_command(
    customer_id: int,
    category: str,
    severity: str | None,
    channel: str,
    reference: str | None,
    description: str | None,
    assignee: str | None,
    as_json: bool,
) -> None:
    """Open a complaint (also recorded as an interaction of kind complaint)."""
    complaint = _service().open(
        {
            "customer_id": customer_id,
            "category": category,
            "severity": severity,
            "channel": channel,
            "reference": reference,
            "description": description,
            "assignee": assignee,
        },
        actor=get_actor(),
        source="cli",
    )
    _print_complaint(complaint, as_json, f"complaint {complaint.id} opened")


def _rows(path: Path) -> Iterator[Mapping[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                yield {k: v for k, v in row.items() if v not in (None, "")}
    else:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValidationError(
                            f"{path.name}:{number}: not valid JSON: {exc.msg}"
                        ) from None


@complaints.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def import_command(path: Path, as_json: bool) -> None:
    """Open complaints from a CSV (header row) or JSON Lines file, all or nothing.

    Columns: customer_id, category, severity, channel, reference,
    description, assignee, source_ref, opened_at (ISO 8601, for history).
    """
    opened = _service().open_many(_rows(path), actor=get_actor(), source="import")
    if as_json:
        print_json({"opened": len(opened), "ids": [c.id for c in opened]})
    else:
        get_console().print(f"Opened {len(opened)} complaints from {safe_text(path.name)}.")


@complaints.command("list")
@click.option("--state", type=click.Choice([s.value for s in State]))
@click.option("--customer", "customer_id", type=int)
@click.option("--assignee")
@click.option("--category", help="A category and everything under it.")
@click.option("--severity", type=click.Choice([s.value for s in Severity]))
@click.option("--breached", is_flag=True, help="Only complaints with a marked SLA breach.")
@click.option("--active", is_flag=True, help="Only complaints still being handled.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@json_option
def list_command(
    state: str | None,
    customer_id: int | None,
    assignee: str | None,
    category: str | None,
    severity: str | None,
    breached: bool,
    active: bool,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List complaints, newest first."""
    page = _service().list(
        state=state,
        customer_id=customer_id,
        assignee=assignee,
        category=category,
        severity=severity,
        breached=True if breached else None,
        active=True if active else None,
        limit=limit,
        offset=offset,
    )
    if as_json:
        print_json({"total": page.total, "items": [c.to_json() for c in page.items]})
        return
    print_table(
        [_summary(c) for c in page.items],
        [*_LIST_COLUMNS, "breached"],
        title="Complaints",
        caption=f"{len(page.items)} of {page.total}",
    )


@complaints.command("show")
@click.argument("complaint_id", metavar="ID", type=int)
@json_option
def show(complaint_id: int, as_json: bool) -> None:
    """Show a complaint with its SLA clocks, history and compensation."""
    service = _service()
    complaint = service.get(complaint_id)
    data: dict[str, Any] = {
        "complaint": complaint.to_json(),
        "sla": service.sla_status(complaint_id),
        "history": [e.to_json() for e in service.history(complaint_id)],
        "compensations": service.compensations(complaint_id),
    }
    if as_json:
        print_json(data)
        return
    print_record(data["complaint"], title=f"complaint {complaint_id}")
    sla_rows = [
        {"clock": name, **values}
        for name, values in data["sla"].items()
        if name in ("first_response", "resolution")
    ]
    print_table(
        sla_rows,
        ["clock", "elapsed_seconds", "target_seconds", "due_at", "breached"],
        title="SLA",
    )
    print_table(
        data["history"],
        ["at", "actor", "action", "from_value", "to_value", "note"],
        title="History",
    )
    if data["compensations"]:
        print_table(
            data["compensations"],
            ["kind", "points", "amount", "currency", "reason"],
            title="Compensation",
        )


@complaints.command("assign")
@click.argument("complaint_id", metavar="ID", type=int)
@click.argument("assignee", required=False)
@click.option("--note")
@json_option
def assign(complaint_id: int, assignee: str | None, note: str | None, as_json: bool) -> None:
    """Assign complaint ID to ASSIGNEE (omit ASSIGNEE to unassign)."""
    complaint = _service().assign(complaint_id, assignee, note=note, actor=get_actor())
    _print_complaint(complaint, as_json, f"complaint {complaint_id}")


@complaints.command("move")
@click.argument("complaint_id", metavar="ID", type=int)
@click.argument("state", type=click.Choice([s.value for s in State]))
@click.option("--note")
@json_option
def move(complaint_id: int, state: str, note: str | None, as_json: bool) -> None:
    """Move complaint ID to STATE along the workflow."""
    complaint = _service().move(complaint_id, state, note=note, actor=get_actor())
    _print_complaint(complaint, as_json, f"complaint {complaint_id}")


@complaints.command("resolve")
@click.argument("complaint_id", metavar="ID", type=int)
@click.option("--resolution", required=True, help="What was done.")
@click.option("--root-cause", help="One of the configured root causes.")
@click.option("--points", type=int, help="Compensate with loyalty points.")
@click.option(
    "--compensation",
    "kind",
    type=click.Choice(["refund", "voucher", "gift", "other"]),
    help="Compensate with money or a gift (with --amount/--currency).",
)
@click.option("--amount", help="Amount of the compensation (a decimal).")
@click.option("--currency", help="ISO 4217 code of --amount.")
@click.option("--refund-of", type=int, help="Purchase interaction a refund refers to.")
@click.option("--reason", help="Why the compensation is granted.")
@click.option("--note")
@json_option
def resolve(
    complaint_id: int,
    resolution: str,
    root_cause: str | None,
    points: int | None,
    kind: str | None,
    amount: str | None,
    currency: str | None,
    refund_of: int | None,
    reason: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    """Resolve complaint ID, optionally with compensation."""
    grants: list[dict[str, Any]] = []
    if points is not None:
        grants.append({"kind": "points", "points": points, "reason": reason})
    if kind is not None:
        grant: dict[str, Any] = {"kind": kind, "amount": amount, "currency": currency}
        if reason:
            grant["reason"] = reason
        if refund_of is not None:
            grant["refund_of"] = refund_of
        grants.append(grant)
    elif amount is not None:
        raise ValidationError("--amount: give --compensation KIND too", field="--amount")
    for grant in grants:
        if grant.get("reason") is None:
            grant.pop("reason", None)
    complaint = _service().resolve(
        complaint_id,
        resolution=resolution,
        root_cause=root_cause,
        compensations=grants,
        note=note,
        actor=get_actor(),
    )
    _print_complaint(complaint, as_json, f"complaint {complaint_id} resolved")


@complaints.command("close")
@click.argument("complaint_id", metavar="ID", type=int)
@click.option("--note")
@json_option
def close(complaint_id: int, note: str | None, as_json: bool) -> None:
    """Close resolved complaint ID."""
    complaint = _service().close(complaint_id, note=note, actor=get_actor())
    _print_complaint(complaint, as_json, f"complaint {complaint_id} closed")


@complaints.command("reopen")
@click.argument("complaint_id", metavar="ID", type=int)
@click.option("--note")
@json_option
def reopen(complaint_id: int, note: str | None, as_json: bool) -> None:
    """Reopen resolved or closed complaint ID (its resolution clock resumes)."""
    complaint = _service().reopen(complaint_id, note=note, actor=get_actor())
    _print_complaint(complaint, as_json, f"complaint {complaint_id} reopened")


@complaints.command("rate")
@click.argument("complaint_id", metavar="ID", type=int)
@click.argument("rating", type=int)
@json_option
def rate(complaint_id: int, rating: int, as_json: bool) -> None:
    """Record the customer's RATING (1-5) of how complaint ID was handled."""
    complaint = _service().rate(complaint_id, rating, actor=get_actor())
    _print_complaint(complaint, as_json, f"complaint {complaint_id} rated")


@complaints.command("sweep")
@json_option
def sweep(as_json: bool) -> None:
    """Mark SLA breaches not marked yet and fire complaints_sla_breached (idempotent)."""
    breaches = _service().sweep(actor=get_actor())
    if as_json:
        print_json(breaches)
        return
    print_table(
        breaches,
        ["complaint_id", "customer_id", "severity", "target", "due_at", "detected_at"],
        title="New SLA breaches",
        caption=f"{len(breaches)} new",
    )


@complaints.command("report")
@click.option("--from", "start", metavar="DATE", help="Start of the period (inclusive, ISO 8601).")
@click.option("--to", "end", metavar="DATE", help="End of the period (exclusive, ISO 8601).")
@click.option(
    "--last",
    type=click.Choice(sorted(_LENGTHS)),
    default="month",
    show_default=True,
    help="Without --from/--to: the period ending now.",
)
@json_option
def report(start: str | None, end: str | None, last: str, as_json: bool) -> None:
    """Complaint KPIs, hot issues and workload for a period."""
    crm = get_crm()
    if start or end:
        if not (start and end):
            raise ValidationError("--from and --to: give both, or neither", field="--from")
        period = Period(parse_timestamp(start, "--from"), parse_timestamp(end, "--to"))
    else:
        # up to and including the current second (operations are stored to the second)
        until = crm.clock().replace(microsecond=0) + timedelta(seconds=1)
        period = Period(until - timedelta(days=_LENGTHS[last]), until)
    data = analytics.report(crm, period)
    if as_json:
        print_json(data)
    else:
        render_report(data, get_console())


def render_report(data: Mapping[str, Any], console: Console) -> None:
    """Print a report (from :func:`crmcore_complaints.analytics.report`) as rich tables."""
    period = data["period"]
    kpis = Table(title=f"complaints: {period['start'][:10]} to {period['end'][:10]}")
    kpis.add_column("KPI")
    kpis.add_column("value", justify="right")
    for name, value in data["kpis"].items():
        kpis.add_row(safe_text(name), safe_text(value))
    console.print(kpis)
    backlog = Table(title="complaints: backlog by state")
    for state in data["backlog"]:
        backlog.add_column(safe_text(state), justify="right")
    backlog.add_row(*(str(n) for n in data["backlog"].values()))
    console.print(backlog)
    for key, title in (("top_categories", "top categories"), ("top_root_causes", "root causes")):
        table = Table(title=f"complaints: {title}")
        table.add_column("name")
        table.add_column("count", justify="right")
        for row in data[key]:
            table.add_row(safe_text(row["name"]), str(row["count"]))
        console.print(table)
    if data["hot_issues"]:
        hot = Table(title="complaints: hot issues (rising in the latest slice)")
        for column in ("category", "last", "baseline", "increase"):
            hot.add_column(column)
        for row in data["hot_issues"]:
            hot.add_row(*(safe_text(row[c]) for c in ("category", "last", "baseline", "increase")))
        console.print(hot)
    agents = Table(title="complaints: workload per agent")
    for column in ("assignee", "active", "overdue", "resolved", "avg_resolution_seconds"):
        agents.add_column(column)
    for row in data["workload"]:
        agents.add_row(
            *(
                safe_text(row[c])
                for c in ("assignee", "active", "overdue", "resolved", "avg_resolution_seconds")
            )
        )
    console.print(agents)
