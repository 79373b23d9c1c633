"""Identity keys in the database: who holds a key, and the refusal of a duplicate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import (
    Connection,
    select,
)

from crmcore.errors import (
    ConflictError,
)
from crmcore.security.stored_keys import IdentityKeys
from crmcore.storage.filters import among
from crmcore.storage.tables import customers

if TYPE_CHECKING:
    pass


#: How each identity-key column is named in messages.
KEY_LABELS = {"email_norm": "email", "phone_norm": "phone", "org_norm": "organisation name"}


def find_existing(
    connection: Connection, keys: Sequence[IdentityKeys], exclude_id: int | None = None
) -> dict[tuple[str, str], int]:
    """Map (key column, value) to the id of the stored customer holding it.

    A stored row matches when it holds any form of the key (plaintext,
    current or older blind index: :meth:`IdentityKeys.forms`).
    """
    found: dict[tuple[str, str], int] = {}
    wanted: dict[str, dict[str, str]] = {"email_norm": {}, "phone_norm": {}, "org_norm": {}}
    for k in keys:
        blinded = bool(k.forms_by_column)
        for c, v in k.pairs():
            if blinded:
                wanted[c].update(dict.fromkeys(k.forms(c, v), v))
            else:
                wanted[c][v] = v
    for column, forms in wanted.items():
        if not forms:
            continue
        values = sorted(forms)
        col = customers.c[column]
        query = select(customers.c.id, col).where(among(connection, col, values))
        if exclude_id is not None:
            query = query.where(customers.c.id != exclude_id)
        for cid, value in connection.execute(query):
            found[(column, forms[value])] = cid
    return found


def duplicate_error(
    key: tuple[str, str], existing_id: int, keys: IdentityKeys, *, visible: bool = True
) -> ConflictError:
    """The refusal of a duplicate; it names the holder only to whom may see it."""
    column, value = key
    value = keys.shown(column, value)
    if not visible:
        return ConflictError(
            f"duplicate customer: {KEY_LABELS[column]} {value!r} already belongs to "
            "a customer you may not see"
        )
    return ConflictError(
        f"duplicate customer: {KEY_LABELS[column]} {value!r} already belongs to "
        f"customer {existing_id}",
        existing_id=existing_id,
    )
