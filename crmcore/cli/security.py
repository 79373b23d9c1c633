"""``crm security new-key|rotate-key|status``: encryption of sensitive customer fields."""

from __future__ import annotations

import click

from crmcore.access import Action
from crmcore.cli.confirm import confirm, yes_option
from crmcore.cli.context import (
    get_actor,
    get_console,
    get_crm,
    json_option,
    print_json,
)
from crmcore.security.encryption import INDEX_KEY_ENV, KEY_ENV, OLD_KEYS_ENV, new_key
from crmcore.services.key_rotation import RotationResult, key_usage, rotate_keys

_LABELS = {"email_norm": "email", "phone_norm": "phone", "org_norm": "organisation name"}


@click.group()
def security() -> None:
    """Field encryption at rest (see docs/security.md)."""


@security.command("new-key")
def new_key_command() -> None:
    """Print a fresh random key for CRM_ENCRYPTION_KEY (keep it out of the database host)."""
    click.echo(new_key())


@security.command()
@json_option
def status(as_json: bool) -> None:
    """Whether encryption is on, which fields, the keys in use and how customers are stored.

    Customers sealed with a key other than the current one, or identity keys
    in plaintext or another index form, mean `crm security rotate-key` has
    not finished (or an instance still writes with another key).
    """
    crm = get_crm()
    cipher = crm.cipher
    usage = key_usage(crm)
    data: dict[str, object] = {
        "encryption": cipher is not None,
        "fields": list(cipher.fields) if cipher else [],
        "key_id": cipher.current_key_id if cipher else None,
        "index_key_id": cipher.index_key_id if cipher else None,
        **usage,
    }
    if as_json:
        print_json(data)
        return
    console = get_console()
    if cipher is None:
        console.print(f"Encryption is off (set {KEY_ENV} to turn it on).")
    else:
        console.print(
            f"Encryption is on for {', '.join(cipher.fields)}; key {cipher.current_key_id}."
        )
        console.print(
            f"Blind indexes: {INDEX_KEY_ENV} {cipher.index_key_id}."
            if cipher.index_key_id
            else f"Blind indexes: derived from the current key (set {INDEX_KEY_ENV} so that "
            "instances on another key keep finding customers: see docs/security.md)."
        )
    sealed = ", ".join(f"{k}: {n}" for k, n in usage["sealed_by_key"].items())
    forms = ", ".join(f"{k}: {n}" for k, n in usage["identity_keys"].items())
    console.print(f"Customers sealed by key: {sealed or 'none'}.")
    console.print(f"Identity keys stored as: {forms or 'none'}.")


@security.command("rotate-key")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Customers per transaction (a killed run keeps the batches committed).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the customers that would be rewritten, and the conflicts; write nothing.",
)
@yes_option
@json_option
def rotate_key(batch_size: int, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Re-seal every customer with the key in CRM_ENCRYPTION_KEY and re-index its keys.

    Keep the previous key in CRM_ENCRYPTION_OLD_KEYS while this runs. Also
    encrypts customers stored before encryption was turned on. One
    transaction per batch: when interrupted, run it again to resume (rows
    already current are skipped). Asks for confirmation first (--yes skips
    it; without a terminal --yes is required); --dry-run asks nothing.
    """
    crm = get_crm()
    if dry_run:
        result = rotate_keys(crm, actor=get_actor(), batch_size=batch_size, dry_run=True)
        crm.customers.unreadable.reset()  # counted in the report: no second warning
        _report_dry_run(result, as_json)
        return
    if crm.cipher is not None:  # without a key rotate_keys says so: nothing to confirm
        crm.access.check(Action.ADMINISTER)  # a refusal before the question, not after
        confirm(f"Re-seal every customer with key {crm.cipher.current_key_id}?", yes=yes)
    result = rotate_keys(crm, actor=get_actor(), batch_size=batch_size)
    assert crm.cipher is not None
    if as_json:
        print_json(_as_dict(result))
        crm.customers.unreadable.reset()
        return
    console = get_console()
    console.print(
        f"Re-sealed {result.rewritten} customers with key {crm.cipher.current_key_id} "
        f"({result.unchanged} already current)."
    )
    if result.unreadable:
        shown = ", ".join(map(str, result.unreadable[:20]))
        more = ", ..." if len(result.unreadable) > 20 else ""
        click.echo(
            f"Warning: {len(result.unreadable)} customers cannot be opened with the configured "
            f"keys and were left as they are (customers {shown}{more}); add their key to "
            f"{OLD_KEYS_ENV} and run rotate-key again before emptying it.",
            err=True,
        )
        crm.customers.unreadable.reset()  # reported above: no second warning after the command
    else:
        console.print(f"{OLD_KEYS_ENV} can now be emptied.")
    if crm.cipher.index_key_id is None:
        console.print(
            f"Note: without {INDEX_KEY_ENV}, blind indexes follow the current key: an instance "
            "that does not know this key does not find the customers re-indexed now "
            "(see docs/security.md)."
        )


def _as_dict(result: RotationResult) -> dict[str, object]:
    return {
        "dry_run": result.dry_run,
        "rewritten": result.rewritten,
        "unchanged": result.unchanged,
        "unreadable": list(result.unreadable),
        "conflicts": [
            {"customers": [a, b], "field": _LABELS.get(column, column)}
            for a, b, column, _ in result.conflicts
        ],
    }


def _report_dry_run(result: RotationResult, as_json: bool) -> None:
    """Print what a rotation would do (no plaintext key shown: only ids and the field)."""
    if as_json:
        print_json(_as_dict(result))
        return
    console = get_console()
    console.print(
        f"Dry run: would re-seal {result.rewritten} customers "
        f"({result.unchanged} already current, {len(result.unreadable)} unreadable, "
        f"{len(result.conflicts)} conflicting pair(s)). Nothing was written."
    )
    for a, b, column, _ in result.conflicts[:20]:
        label = _LABELS.get(column, column)
        console.print(f"Conflict: customers {min(a, b)} and {max(a, b)} have the same {label}.")
