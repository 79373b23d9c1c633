"""Re-normalising stored identity keys when the normalisation changes (crmcore_0010).

:func:`rekey_identity` recomputes the phone keys (E.164, read in a default
region) and the organisation-name keys (Chinese legal forms, NFKC) of every
stored customer whose key is in plaintext. A key that is a blind index
(encryption on) cannot be recomputed here: its plaintext is sealed and the
key to open it is not the migration's to have; it is counted in
``blinded`` and re-indexed by ``crm security rotate-key``, and until then
lookups also match the index of the earlier form
(:func:`crmcore.security.stored_keys.phone_forms`).

Customers that the new normalisation makes share a key (``138 0013 8000``
and ``+86 138 0013 8000``) cannot both hold it: the unique index would
refuse. The oldest (``created_at``, then id) keeps the key; each other has
its key set to NULL and a row in ``crm_identity_collisions`` names it and
the holder, so ``crm customers duplicates`` lists the pair for a merge. The
run never fails on a collision; it returns a :class:`RekeyReport`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from sqlalchemy import Connection, bindparam, insert, select, update

from crmcore.model.identity import DEFAULT_REGION, normalise_org_name, normalise_phone
from crmcore.security.encryption import is_blind_index
from crmcore.storage.tables import customers, identity_collisions

#: The key columns re-normalised, in order.
REKEYED_COLUMNS = ("phone_norm", "org_norm")
_BATCH = 1000


@attrs.frozen
class Collision:
    """One customer whose key was left NULL because an older customer holds the same key."""

    customer_id: int
    holder_id: int
    column: str


@attrs.frozen
class RekeyReport:
    """What :func:`rekey_identity` did, per key column."""

    #: Column -> rows whose key was rewritten to the new form.
    rekeyed: dict[str, int]
    #: Column -> rows whose key is a blind index (left for ``crm security rotate-key``).
    blinded: dict[str, int]
    #: (customer id, column) of keys that do not parse under the new rules (kept as they were).
    kept: tuple[tuple[int, str], ...]
    #: Customers whose key was left NULL because an older customer holds it.
    collisions: tuple[Collision, ...]

    def summary(self) -> str:
        """One line for the operator: counts, and what to run next."""
        parts = [f"{self.rekeyed[c]} {c} re-keyed" for c in REKEYED_COLUMNS]
        blinded = sum(self.blinded.values())
        if blinded:
            parts.append(f"{blinded} blind-indexed (run `crm security rotate-key`)")
        if self.kept:
            parts.append(f"{len(self.kept)} kept as they were (not valid under the new rules)")
        parts.append(
            f"{len(self.collisions)} duplicate(s) uncovered"
            + (" (see `crm customers duplicates`)" if self.collisions else "")
        )
        return "identity keys: " + ", ".join(parts)


def _phone_target(row: Any, region: str) -> str | None:
    """The E.164 key of the number as written, else of the stored key; None if neither parses."""
    for source in (row.phone, row.phone_norm):
        if source is None:
            continue
        try:
            return normalise_phone(str(source), region)
        except ValueError:
            continue
    return None


def _org_target(row: Any, region: str) -> str | None:
    """The new key of the name; the stored key stands in when the company name is sealed."""
    if row.company_name is None and row.sealed is not None:
        return normalise_org_name(str(row.org_norm)) or None
    return normalise_org_name(row.company_name or row.name) or None


_TARGETS: dict[str, Callable[[Any, str], str | None]] = {
    "phone_norm": _phone_target,
    "org_norm": _org_target,
}


def _rekey_column(
    connection: Connection, column: str, region: str
) -> tuple[int, int, list[tuple[int, str]], list[Collision]]:
    col = customers.c[column]
    rows = connection.execute(
        select(
            customers.c.id,
            customers.c.name,
            customers.c.phone,
            customers.c.company_name,
            customers.c.phone_norm,
            customers.c.org_norm,
            customers.c.sealed,
        )
        .where(col.is_not(None))
        .order_by(customers.c.created_at, customers.c.id)
    ).all()
    holders: dict[str, int] = {}
    changes: dict[int, str | None] = {}
    kept: list[tuple[int, str]] = []
    collisions: list[Collision] = []
    blinded = 0
    for row in rows:
        stored = row._mapping[column]
        if is_blind_index(stored):
            blinded += 1
            continue
        target = _TARGETS[column](row, region)
        if target is None:
            kept.append((row.id, column))
            target = stored
        holder = holders.get(target)
        if holder is not None:
            collisions.append(Collision(row.id, holder, column))
            changes[row.id] = None
            continue
        holders[target] = row.id
        if target != stored:
            changes[row.id] = target
    ids = sorted(changes)
    statement = update(customers).where(customers.c.id == bindparam("cid"))
    # Every changing key is cleared first, so that no intermediate state breaks the index.
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        connection.execute(statement.values({column: None}), [{"cid": i} for i in chunk])
    new = [{"cid": i, "key": changes[i]} for i in ids if changes[i] is not None]
    for start in range(0, len(new), _BATCH):
        connection.execute(
            statement.values({column: bindparam("key")}), new[start : start + _BATCH]
        )
    return len(new), blinded, kept, collisions


def rekey_identity(
    connection: Connection,
    region: str = DEFAULT_REGION,
    *,
    source: str = "crmcore_0010",
    now: datetime | None = None,
) -> RekeyReport:
    """Re-normalise the plaintext phone and organisation keys of every customer.

    ``region`` reads national phone numbers (``[customers] default_region``).
    Runs in the caller's transaction; returns what it did, collisions
    included (recorded in ``crm_identity_collisions`` with ``source``).
    Running it again changes nothing.
    """
    rekeyed: dict[str, int] = {}
    blinded: dict[str, int] = {}
    kept: list[tuple[int, str]] = []
    collisions: list[Collision] = []
    for column in REKEYED_COLUMNS:
        count, blind, kept_here, found = _rekey_column(connection, column, region)
        rekeyed[column], blinded[column] = count, blind
        kept.extend(kept_here)
        collisions.extend(found)
    if collisions:
        stamp = now or datetime.now(UTC)
        rows = [
            {
                "customer_id": c.customer_id,
                "holder_id": c.holder_id,
                "key_column": c.column,
                "source": source,
                "found_at": stamp,
            }
            for c in collisions
        ]
        for start in range(0, len(rows), _BATCH):
            connection.execute(insert(identity_collisions), rows[start : start + _BATCH])
    return RekeyReport(rekeyed, blinded, tuple(kept), tuple(collisions))


__all__ = ["REKEYED_COLUMNS", "Collision", "RekeyReport", "rekey_identity"]
