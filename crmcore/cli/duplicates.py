"""``crm customers duplicates`` (probable duplicates, scored) and ``crm customers rekey``."""

from __future__ import annotations

import click

from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
    print_table,
)
from crmcore.cli.output import safe_text
from crmcore.services.customers.duplicates import MAX_LIMIT


@click.command("duplicates")
@click.option(
    "--min-score",
    type=float,
    default=0.85,
    show_default=True,
    help="Least score listed, from 0 to 1.",
)
@click.option(
    "--limit",
    type=int,
    default=100,
    show_default=True,
    help=f"At most this many pairs (1 to {MAX_LIMIT}).",
)
@json_option
def duplicates_command(min_score: float, limit: int, as_json: bool) -> None:
    """List pairs of customers that are probably one, best first, with the reasons.

    Similar names with the same company or city, transposed names, email
    variants (case, dots and +tags of gmail-style addresses), one phone in
    national and international form, organisation names with legal forms,
    and the collisions found when identity keys were re-normalised. Only
    pairs of customers you may see. Merge one with `crm customers merge`.
    """
    pairs = get_crm().customers.duplicates(min_score=min_score, limit=limit)
    if as_json:
        print_json([p.to_dict() for p in pairs])
        return
    rows = [
        {
            "ids": f"{p.customer_ids[0]} {p.customer_ids[1]}",
            "score": f"{p.score:.2f}",
            "names": f"{p.names[0]} / {p.names[1]}",
            "reasons": "; ".join(p.reasons),
        }
        for p in pairs
    ]
    print_table(
        rows,
        ["ids", "score", "names", "reasons"],
        title="Probable duplicates",
        caption=f"{len(pairs)} pair(s) scoring at least {min_score:g}",
    )


@click.command("rekey")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@json_option
def rekey_command(dry_run: bool, as_json: bool) -> None:
    """Re-normalise stored phone and organisation keys in the configured default region.

    What `crm db upgrade` did for crmcore_0010, again: run it after changing
    [customers] default_region. Customers whose keys then collide are not
    refused: the oldest keeps the key and `crm customers duplicates` lists
    the pair. Blind-indexed keys are re-keyed by `crm security rotate-key`.
    Administrators only.
    """
    report = get_crm().customers.rekey(dry_run=dry_run, actor=get_actor())
    if as_json:
        print_json(
            {
                "rekeyed": dict(report.rekeyed),
                "blinded": dict(report.blinded),
                "kept": [{"customer_id": i, "column": c} for i, c in report.kept],
                "collisions": [
                    {"customer_id": c.customer_id, "holder_id": c.holder_id, "column": c.column}
                    for c in report.collisions
                ],
                "dry_run": dry_run,
            }
        )
        return
    tail = " (dry run: nothing was changed)" if dry_run else ""
    get_console().print(safe_text(report.summary()) + tail)


__all__ = ["duplicates_command", "rekey_command"]
