"""``crm security new-key|rotate-key|status``: encryption of sensitive customer fields."""

from __future__ import annotations

import click

from crmcore.cli.context import get_actor, get_console, get_crm, json_option, print_json
from crmcore.encryption import KEY_ENV, OLD_KEYS_ENV, new_key


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
    """Whether encryption is on, which fields, and the current key's fingerprint."""
    cipher = get_crm().cipher
    data = {
        "encryption": cipher is not None,
        "fields": list(cipher.fields) if cipher else [],
        "key_id": cipher.current_key_id if cipher else None,
    }
    if as_json:
        print_json(data)
    elif cipher is None:
        get_console().print(f"Encryption is off (set {KEY_ENV} to turn it on).")
    else:
        get_console().print(
            f"Encryption is on for {', '.join(cipher.fields)}; key {cipher.current_key_id}."
        )


@security.command("rotate-key")
def rotate_key() -> None:
    """Re-seal every customer with the key in CRM_ENCRYPTION_KEY.

    Keep the previous key in CRM_ENCRYPTION_OLD_KEYS while this runs. Also
    encrypts customers stored before encryption was turned on.
    """
    crm = get_crm()
    count = crm.customers.rotate_encryption(actor=get_actor())
    assert crm.cipher is not None
    get_console().print(
        f"Re-sealed {count} customers with key {crm.cipher.current_key_id}; "
        f"{OLD_KEYS_ENV} can now be emptied."
    )
