"""``crm customers duplicates``: probable duplicates the unique keys do not catch, scored."""

from __future__ import annotations

import click

from crmcore.cli.context import get_crm, json_option, print_json, print_table
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


__all__ = ["duplicates_command"]
