"""``crm demo``: a fresh SQLite database with the demo data set, and a summary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crmcore.cli.confirm import confirm, yes_option
from crmcore.cli.context import get_console, get_state, print_table
from crmcore.cli.demo_accounts import show_accounts
from crmcore.model.signals import Period

if TYPE_CHECKING:
    from crmcore.app import CRM


@click.command()
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("crm-demo.db"),
    show_default=True,
    help="SQLite file to (re)create.",
)
@click.option(
    "--seed", type=int, default=7, show_default=True, help="Random seed (same seed, same data)."
)
@click.option(
    "--customers", "count", type=click.IntRange(1, 1_000_000), default=400, show_default=True
)
@yes_option
def demo(path: Path, seed: int, count: int, yes: bool) -> None:
    """Create a fresh SQLite demo database, load a realistic data set and summarise it.

    An existing file at --path is replaced without asking only when `crm demo`
    created it (or it is empty); for any other file (a real database) it asks
    first, and without a terminal refuses unless --yes is given.
    """
    from crmcore.app import CRM
    from crmcore.io.demo import (
        DEMO_NOW,
        is_replaceable,
        load_demo,
        mark_demo_database,
        top_customers,
    )
    from crmcore.model.entities import Stage

    if not is_replaceable(path):
        confirm(f"{path} is not a demo database; replace it and lose its data?", yes=yes)
    console = get_console()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    crm = CRM.open(f"sqlite:///{path}", upgrade=True, clock=lambda: DEMO_NOW)
    get_state().crm = crm  # closed by the group after the command
    mark_demo_database(crm)
    console.print(
        f"[bold]crmcore demo[/bold]: loading {count} customers into {path} (seed {seed}) ..."
    )
    summary = load_demo(crm, seed=seed, customers=count)
    console.print(
        f"Loaded {summary.customers} customers, {summary.interactions} interactions, "
        f"{summary.lifecycle_moves} lifecycle moves."
    )
    stages = [
        {"stage": s.value, "customers": crm.customers.search(stage=s.value, limit=1).total}
        for s in Stage
    ]
    print_table(stages, ["stage", "customers"], title="Customers by lifecycle stage")

    top = [{**row, "revenue": f"{row['revenue']:,.2f}"} for row in top_customers(crm)]
    print_table(
        top, ["id", "name", "stage", "purchases", "revenue"], title="Top customers by revenue"
    )
    crm.call_hook("crm_demo", crm=crm, seed=seed, console=console)

    from crmcore.cli.report import print_report
    from crmcore.reporting.report import build_report

    year = Period(DEMO_NOW - timedelta(days=365), DEMO_NOW)
    print_report(build_report(crm, year, charts=False))
    _show_integrity(crm, path, top[0]["id"] if top else 1)
    people = crm.customers.search(kind="person", sort="-id", limit=1).items
    _show_data_quality(crm, path, people[0].id if people and people[0].id else 1)
    show_accounts(crm, path)
    console.print(
        f"Explore it: crm --db {path} customers list --stage loyal\n"
        f"            crm --db {path} report --from {year.start.date()} --to {year.end.date()} "
        "--html report.html"
    )


def _show_integrity(crm: CRM, path: Path, customer_id: int) -> None:
    """Show an idempotent re-import and the outbox of committed events."""
    import tempfile

    from crmcore.access import Principal, Role
    from crmcore.io.demo import DEMO_NOW
    from crmcore.io.imports import import_interactions

    console = get_console()
    with tempfile.TemporaryDirectory() as folder:
        orders = Path(folder) / "orders.csv"
        orders.write_text(
            "customer_id,kind,channel,occurred_at,amount,currency\n"
            + "".join(
                f"{customer_id},purchase,web,{DEMO_NOW.date()}T0{n}:00:00+00:00,{10 * n}.00,EUR\n"
                for n in range(1, 4)
            ),
            encoding="utf-8",
        )
        first = import_interactions(crm, orders)
        again = import_interactions(crm, orders)
    console.print(
        f"Idempotent imports: a file of 3 orders imported twice stored {first.imported}, "
        f"then {again.imported} ({again.already_stored} recognised by their content keys)."
    )
    owner = crm.customers.get(customer_id).owner
    if owner:
        mine = crm.as_user(Principal(owner, Role.AGENT)).customers.search(limit=1).total
        everyone = crm.customers.search(limit=1).total
        console.print(
            f"Access control: agent {owner!r} sees {mine} of {everyone} customers "
            f"(crm --db {path} --user {owner} --role agent customers list)."
        )
    events = sum(1 for _ in crm.events.iter())
    console.print(
        f"Events after commit: {events:,} committed events in the outbox "
        f"(crm --db {path} events tail; crm events relay --to amqp://... publishes them)."
    )


def _show_data_quality(crm: CRM, path: Path, customer_id: int) -> None:
    """Show a duplicate merged into its customer, and an agent claiming from the pool."""
    from crmcore.access import Principal, Role

    console = get_console()
    original = crm.customers.get(customer_id)
    duplicate = crm.customers.create(
        {
            "name": " ".join(reversed(original.name.split())),  # "Li Wei" written "Wei Li"
            "address": original.address,
            "company_name": original.company_name,
            "source_channel": "event",
            "tags": ["trade-fair"],
        },
        actor="demo",
    )
    crm.interactions.record(
        {
            "customer_id": duplicate.id,
            "kind": "inquiry",
            "channel": "event",
            "occurred_at": crm.clock(),
        }
    )
    assert duplicate.id is not None
    pairs = crm.customers.duplicates(min_score=0.8, limit=1000)
    found = [p for p in pairs if duplicate.id in p.customer_ids]
    if found:
        console.print(
            f"Probable duplicates: customers {found[0].customer_ids[0]} and "
            f"{found[0].customer_ids[1]} score {found[0].score:.2f} "
            f"({', '.join(found[0].reasons)}) (crm --db {path} customers duplicates)."
        )
    result = crm.customers.merge(customer_id, duplicate.id, actor="demo")
    console.print(
        f"Merge: a second record of {original.name!r} (from a trade fair) merged into "
        f"customer {customer_id}: {result.moved['crm_interactions.customer_id']} interaction "
        f"moved, tags now {', '.join(result.kept.tags)}; customer {duplicate.id} resolves to "
        f"{crm.customers.resolve(duplicate.id)} "
        f"(crm --db {path} customers merge KEEP DUP --dry-run)."
    )
    leaver = crm.customers.search(sort="-id", limit=1).items[0].owner
    if leaver:  # a salesperson's three newest customers go back to the pool
        for customer in crm.customers.search(owner=leaver, sort="-id", limit=3).items:
            assert customer.id is not None
            crm.pool.release(customer.id, actor="demo")
    pooled = crm.pool.list(limit=1)
    owners = sorted({c.owner for c in crm.customers.search(limit=200).items if c.owner} - {leaver})
    if pooled.items and owners:
        agent = crm.as_user(Principal(owners[0], Role.AGENT))
        claimed = agent.pool.claim(pooled.items[0]["id"])
        console.print(
            f"Customer pool: {pooled.total} customers without an owner; agent {owners[0]!r} "
            f"claimed customer {claimed.id} (crm --db {path} --user {owners[0]} --role agent "
            "pool list)."
        )
