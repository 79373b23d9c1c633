"""Key rotation: re-seal every customer with the current key and re-index its identity keys.

:func:`rotate_keys` walks the customers in id order, one batch per
transaction. A row is rewritten only when something about it is not current
(sealed with another key, plaintext in an encrypted column, an identity key
in plaintext or in an older index form), so the rotation is idempotent and a
killed run resumes where it stopped: run it again. A row is findable by
email and phone at every moment, because lookups match every stored form
(:mod:`crmcore.security.stored_keys`).

Rows that cannot be opened (sealed with a key that is not configured) are
left as they are and reported (see :mod:`crmcore.security.unreadable`). Two customers
whose keys would collide once re-indexed (stored before duplicate detection
covered every form) are left as they are too, and a ConflictError at the end
names every such pair.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import date
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import Connection, Row, bindparam, case, func, select, update

from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.dry_run import rolled_back
from crmcore.errors import ConflictError, ValidationError
from crmcore.model.entities import CustomerKind
from crmcore.model.identity import normalise_email, normalise_org_name, normalise_phone
from crmcore.security.encryption import (
    DATA_KEY_INDEX_PREFIX,
    ENCRYPTABLE_FIELDS,
    INDEX_KEY_INDEX_PREFIX,
    FieldCipher,
    UnreadableError,
    is_blind_index,
)
from crmcore.security.stored_keys import KEY_KINDS
from crmcore.security.unreadable import check_policy
from crmcore.storage.engine import compact
from crmcore.storage.filters import among
from crmcore.storage.tables import customers

if TYPE_CHECKING:
    from crmcore.app import CRM

_FIELDS = tuple(sorted(ENCRYPTABLE_FIELDS))
_KEY_COLUMNS = tuple(KEY_KINDS)
_WRITTEN = (*_FIELDS, *_KEY_COLUMNS, "sealed")
_LABELS = {"email_norm": "email", "phone_norm": "phone", "org_norm": "organisation name"}
_NORMALISERS: Mapping[str, Callable[[str], str]] = {"email_norm": normalise_email}


@attrs.frozen
class RotationProgress:
    """Where a rotation stands after a committed batch (passed to ``on_batch``)."""

    rewritten: int
    unchanged: int
    last_id: int


@attrs.frozen
class RotationResult:
    """What a completed rotation did."""

    rewritten: int
    unchanged: int
    #: Customers left as they were because their sealed fields cannot be opened.
    unreadable: tuple[int, ...]
    #: A dry run: the counts are what a rotation would do; nothing was written.
    dry_run: bool = False
    #: Dry run only (a real run raises ConflictError instead): the pairs of customers
    #: that would share an identity key, as (id, other id, column, plaintext key).
    conflicts: tuple[tuple[int, int, str, str], ...] = ()


@attrs.frozen
class _Target:
    """A row as the current key and index scheme want it, with its plaintext keys."""

    values: dict[str, Any]
    plain: dict[str, str]


def _target(cipher: FieldCipher, row: Row[Any], region: str) -> _Target:
    """The sealed value, plaintext columns and identity keys ``row`` should have now."""
    m = row._mapping
    values: dict[str, Any] = {}
    for name in _FIELDS:
        value = m[name]
        values[name] = value.isoformat() if isinstance(value, date) else value
    opened: dict[str, Any] = {}
    if m["sealed"] is not None:
        opened = cipher.open(m["id"], m["sealed"])  # UnreadableError: the caller reports it
        values.update({k: v for k, v in opened.items() if v is not None})
    secret = {f: values[f] for f in cipher.fields if values.get(f) is not None}
    result: dict[str, Any] = {f: None if f in cipher.fields else values.get(f) for f in _FIELDS}
    if result["birth_date"] is not None:
        result["birth_date"] = date.fromisoformat(result["birth_date"])
    keep = m["sealed"] is not None and cipher.is_current(m["sealed"]) and opened == secret
    result["sealed"] = m["sealed"] if keep else cipher.seal(m["id"], secret)
    plain: dict[str, str] = {}
    sources = {"email_norm": values.get("email"), "phone_norm": values.get("phone")}
    for column in _KEY_COLUMNS:
        stored = m[column]
        normalised: str | None = None
        try:
            if column == "org_norm":
                if m["kind"] == CustomerKind.ORGANIZATION.value:
                    normalised = normalise_org_name(values.get("company_name") or m["name"])
            elif column == "phone_norm" and (source := sources[column]) is not None:
                normalised = normalise_phone(str(source), region)
            elif (source := sources[column]) is not None:
                normalised = _NORMALISERS[column](str(source))
        except ValueError:  # stored before a rule tightened: fall back to the stored key
            normalised = None
        if not normalised and stored is not None and not is_blind_index(stored):
            normalised = stored
        if not normalised:
            result[column] = stored  # absent, or an index that cannot be recomputed: keep it
            continue
        plain[column] = normalised
        blind = column != "org_norm" or "company_name" in cipher.fields
        result[column] = cipher.blind_index(KEY_KINDS[column], normalised) if blind else normalised
    return _Target(result, plain)


def _unchanged(row: Row[Any], target: _Target) -> bool:
    m = row._mapping
    return all(m[c] == target.values[c] for c in _WRITTEN)


def _collisions(
    connection: Connection, cipher: FieldCipher, targets: Mapping[int, _Target]
) -> list[tuple[int, int, str, str]]:
    """(customer, other customer, column, plaintext) for every key two customers would share."""
    found: dict[frozenset[int], tuple[int, int, str, str]] = {}
    for column in _KEY_COLUMNS:
        owners: dict[str, tuple[int, str]] = {}
        for cid, target in targets.items():
            plain = target.plain.get(column)
            if plain is None:
                continue
            for form in (target.values[column], *cipher.stored_forms(KEY_KINDS[column], plain)):
                if form in owners and owners[form][0] != cid:
                    other = owners[form][0]
                    found.setdefault(frozenset((cid, other)), (other, cid, column, plain))
                owners.setdefault(form, (cid, plain))
        if not owners:
            continue
        col = customers.c[column]
        query = select(customers.c.id, col).where(among(connection, col, sorted(owners)))
        for other, value in connection.execute(query):
            cid, plain = owners[value]
            if other != cid:
                found.setdefault(frozenset((cid, other)), (cid, other, column, plain))
    return list(found.values())


def _conflict_error(pairs: list[tuple[int, int, str, str]]) -> ConflictError:
    shown = "; ".join(
        f"customers {min(a, b)} and {max(a, b)} share {_LABELS[column]} {plain!r}"
        for a, b, column, plain in pairs[:20]
    )
    more = f" (and {len(pairs) - 20} more pairs)" if len(pairs) > 20 else ""
    return ConflictError(
        f"key rotation left {len(pairs)} pair(s) of customers as they were because they share "
        f"an identity key: {shown}{more}. Merge or change one customer of each pair "
        "(crm customers update / delete), then run `crm security rotate-key` again; keep "
        "the old keys configured until then",
        existing_id=pairs[0][1],
    )


def rotate_keys(
    crm: CRM,
    *,
    actor: str | None = None,
    batch_size: int = 1000,
    on_batch: Callable[[RotationProgress], None] | None = None,
    unreadable: str | None = None,
    dry_run: bool = False,
) -> RotationResult:
    """Bring every customer to the current key and index scheme, one transaction per batch.

    ``on_batch`` is called after each committed batch (an exception from it
    stops the rotation there; what was committed stays, and the next run
    resumes). ``unreadable`` (default ``[security] unreadable``): ``"skip"``
    leaves rows that cannot be opened as they are and reports them in the
    result and ``crm.customers.unreadable``; ``"fail"`` stops at the first
    one with an error naming it. Storage is compacted at the end
    (:func:`~crmcore.storage.engine.compact`). Raises ConflictError naming
    every pair of customers that would share a key (those rows are left as
    they were; the others are rotated).

    ``dry_run=True`` does the whole rotation in one transaction and rolls it
    back: the result counts the customers that would be rewritten (and
    unreadable ones), and lists the conflicting pairs in ``conflicts``
    instead of raising; nothing is written or compacted.
    """
    cipher = crm.cipher
    if cipher is None:
        raise ValidationError(
            "encryption: no key configured (set CRM_ENCRYPTION_KEY)", field="encryption"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            f"batch_size: must be at least 1, got {batch_size!r}", field="batch_size"
        )
    crm.access.check(Action.ADMINISTER)
    policy = check_policy(unreadable or crm.config.unreadable)
    report = crm.customers.unreadable
    rewritten = unchanged = 0
    skipped: list[int] = []
    conflicts: list[tuple[int, int, str, str]] = []
    reported: set[frozenset[int]] = set()
    last = 0
    with ExitStack() as stack:
        outer = stack.enter_context(rolled_back(crm, actor)) if dry_run else None
        while True:
            with crm.unit_of_work(actor, outer) as uow:
                query = (
                    select(customers).where(customers.c.id > last).order_by(customers.c.id)
                ).limit(batch_size)
                if uow.connection.dialect.name == "postgresql":
                    query = query.with_for_update()
                rows = uow.connection.execute(query).all()
                if not rows:
                    break
                targets: dict[int, _Target] = {}
                for row in rows:
                    try:
                        target = _target(cipher, row, crm.config.default_region)
                    except UnreadableError as exc:
                        report.handle(exc, policy)
                        skipped.append(row.id)
                        continue
                    if _unchanged(row, target):
                        unchanged += 1
                    else:
                        targets[row.id] = target
                for pair in _collisions(uow.connection, cipher, targets):
                    targets.pop(pair[0], None)
                    targets.pop(pair[1], None)
                    if frozenset(pair[:2]) not in reported:
                        reported.add(frozenset(pair[:2]))
                        conflicts.append(pair)
                if targets:
                    uow.connection.execute(
                        update(customers)
                        .where(customers.c.id == bindparam("b_id"))
                        .values({c: bindparam(c) for c in _WRITTEN}),
                        [{"b_id": cid, **t.values} for cid, t in targets.items()],
                    )
                    crm.audit.record(
                        uow,
                        [
                            AuditEntry(
                                "security.rotate_key",
                                "customer",
                                None,
                                None,
                                {"customers": len(targets), "key_id": cipher.current_key_id},
                            )
                        ],
                    )
                rewritten += len(targets)
                last = rows[-1].id
            if on_batch is not None:
                on_batch(RotationProgress(rewritten, unchanged, last))
    if dry_run:
        return RotationResult(rewritten, unchanged, tuple(skipped), True, tuple(conflicts))
    compact(crm.engine, ("crm_customers",))
    if conflicts:
        raise _conflict_error(conflicts)
    return RotationResult(rewritten, unchanged, tuple(skipped))


def key_usage(crm: CRM) -> dict[str, Any]:
    """How the stored customers are sealed and indexed, to tell when old keys can go.

    ``sealed_by_key``: key fingerprint -> number of customers sealed with it;
    ``identity_keys``: form (``plaintext``, ``data-key index``, ``index-key
    index``) -> number of stored email/phone/organisation keys in that form.
    """
    kid = func.substr(customers.c.sealed, 4, 12)
    usage: dict[str, Any] = {"sealed_by_key": {}, "identity_keys": {}}
    with crm.reading() as uow:
        for key_id, count in uow.connection.execute(
            select(kid, func.count())
            .where(customers.c.sealed.is_not(None))
            .group_by(kid)
            .order_by(kid)
        ):
            usage["sealed_by_key"][key_id] = count
        for column in _KEY_COLUMNS:
            col = customers.c[column]
            form = case(
                (col.like(f"{DATA_KEY_INDEX_PREFIX}%"), "data-key index"),
                (col.like(f"{INDEX_KEY_INDEX_PREFIX}%"), "index-key index"),
                else_="plaintext",
            )
            for name, count in uow.connection.execute(
                select(form, func.count()).where(col.is_not(None)).group_by(form)
            ):
                usage["identity_keys"][name] = usage["identity_keys"].get(name, 0) + count
    return usage


__all__ = ["RotationProgress", "RotationResult", "key_usage", "rotate_keys"]
