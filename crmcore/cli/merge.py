"""``crm customers merge KEEP DUPLICATE``: merge a duplicate into the customer kept."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli.confirm import confirm, yes_option
from crmcore.cli.context import get_actor, get_console, get_crm, json_option, print_json
from crmcore.cli.output import safe_text
from crmcore.model.entities import UPDATABLE_FIELDS
from crmcore.model.serialization import to_dict


def _choices(values: tuple[str, ...]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for value in values:
        name, sep, side = value.partition("=")
        if not sep or side not in ("keep", "duplicate"):
            raise click.BadParameter(
                f"{value!r}: expected FIELD=keep or FIELD=duplicate", param_hint="--choose"
            )
        chosen[name.strip()] = side
    return chosen


def _summary(result: Any, dry_run: bool) -> str:
    moved = ", ".join(f"{n} {k}" for k, n in sorted(result.moved.items()) if n)
    taken = ", ".join(result.taken_from_duplicate) or "none"
    verb = "Dry run: would merge" if dry_run else "Merged"
    tail = " Nothing was changed." if dry_run else ""
    return (
        f"{verb} customer {result.merged_id} into {result.kept.id} "
        f"({safe_text(result.kept.name)}); rows moved: {moved or 'none'}; "
        f"fields taken from the duplicate: {taken}.{tail}"
    )


@click.command("merge")
@click.argument("keep_id", type=int)
@click.argument("duplicate_id", type=int)
@click.option(
    "--choose",
    "choices",
    multiple=True,
    metavar="FIELD=keep|duplicate",
    help="Whose value a field takes (repeatable). Default: the kept customer's, or the "
    "duplicate's when the kept one is empty; tags are joined. "
    f"Fields: {', '.join(UPDATABLE_FIELDS)}.",
)
@click.option("--dry-run", is_flag=True, help="Show what the merge would do; change nothing.")
@yes_option
@json_option
def merge_command(
    keep_id: int,
    duplicate_id: int,
    choices: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Merge customer DUPLICATE_ID into KEEP_ID: every row moves, the old id resolves.

    Interactions, history, tags, grants, external ids, account links and every
    plugin's rows move to KEEP_ID in one transaction; DUPLICATE_ID's row is
    deleted and its id then resolves to KEEP_ID.
    """
    crm = get_crm()
    chosen = _choices(choices)
    if dry_run:
        result = crm.customers.merge(
            keep_id, duplicate_id, choose=chosen, actor=get_actor(), dry_run=True
        )
    else:
        confirm(f"Merge customer {duplicate_id} into {keep_id} (cannot be undone)?", yes=yes)
        result = crm.customers.merge(keep_id, duplicate_id, choose=chosen, actor=get_actor())
    if as_json:
        print_json(
            {
                "kept": to_dict(result.kept),
                "merged_id": result.merged_id,
                "moved": dict(result.moved),
                "taken_from_duplicate": list(result.taken_from_duplicate),
                "dry_run": dry_run,
            }
        )
    else:
        get_console().print(_summary(result, dry_run))


__all__ = ["merge_command"]
