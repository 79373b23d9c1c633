"""Customer imports that update the customers they find (``--update-existing``) and external ids.

Each batch of rows is matched on one key (``match``): ``email`` or ``phone``
(the row's value normalised, compared with every stored form of the key:
:meth:`~crmcore.services.customers.service.CustomerService.stored_forms`) or
``external_id`` (the row's ``external_id`` under ``system``). A row that
matches a customer updates it through ``crm.customers.update_many`` (what
``update`` does, per batch: validation, access, unique keys, plugin checks,
audit, ``customer.updated``, ``crm_customers_updated``); a row that matches
nothing is created through ``crm.customers.create_many``. What a matched row changes:

* every field the row gives (a non-empty CSV cell; a JSON Lines key, where
  ``null`` clears the field); an empty cell leaves the field as it is;
  ``tags`` replaces the tag set, ``consent.<flag>`` and ``attributes.<key>``
  are merged into the stored ones;
* never ``stage`` (moved only by ``crm.lifecycle``), ``id``, ``created_at``
  or ``updated_at``: those cells are used (stage) or ignored on create only;
* its ``external_id`` (with ``system``) is added to the customer if it lacks it.

A matched row whose every given field already equals the stored value, and
whose external id the customer holds already, is *unchanged*: nothing is
written, audited or emitted. A row is rejected when: its match key belongs
to a customer the principal may not see (the holder is not named) or may
not write; an earlier row of the file matched or created the same customer;
another of its unique keys (email, phone, organisation name, external id)
belongs to a different customer (both ids named, the second only if
visible); or the update is invalid. A row that matches nothing but whose
other keys belong to a stored customer is refused as a duplicate, as without
``update_existing``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import select

from crmcore.access import Action
from crmcore.errors import (
    ConflictError,
    CRMError,
    RejectHandler,
    ValidationError,
    ValidationErrors,
)
from crmcore.io.imports.feed import Feed
from crmcore.io.imports.matching import IdSet, hinted_rejects, renumbered
from crmcore.model.entities import UPDATABLE_FIELDS, Customer
from crmcore.model.serialization import from_dict, to_dict
from crmcore.security.encryption import UnreadableError
from crmcore.security.stored_keys import IdentityKeys
from crmcore.services.customers.external_ids import (
    EXTERNAL_IDS_KEY,
    ExternalId,
    external_id_holders,
    parse_external_ids,
    store_external_ids,
    taken_error,
)
from crmcore.services.customers.keys import KEY_LABELS, find_existing
from crmcore.services.customers.validation import validate_customer
from crmcore.storage.filters import among
from crmcore.storage.records import customer_from_row
from crmcore.storage.tables import customer_tags, customers
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM

_QUERY_CHUNK = 1000
_STRIPPED = ("name", "email", "phone")
#: Keys a matched row may hold: what it updates, and what is used on create only.
_ACCEPTED = frozenset(UPDATABLE_FIELDS) | {
    "stage",
    "id",
    "created_at",
    "updated_at",
    EXTERNAL_IDS_KEY,
}


@attrs.define(eq=False)
class _Row:
    position: int
    data: dict[str, Any]
    pairs: list[ExternalId]
    holder: int | None = None
    customer: Customer | None = None
    keys: IdentityKeys | None = None
    changes: dict[str, Any] = attrs.field(factory=dict)
    new_pairs: list[ExternalId] = attrs.field(factory=list)


class Upsert:
    """Stores a customers import with ``update_existing``: updates, creates, counts.

    :meth:`store` is the import pipeline's store step; ``updated`` and
    ``unchanged`` count the matched rows (every other stored row was created).
    """

    def __init__(self, match: str, system: str | None) -> None:
        self.match = match
        self.system = system
        self.updated = 0
        self.unchanged = 0
        self._touched = IdSet()

    def store(
        self, crm: CRM, items: Iterator[dict[str, Any]], uow: UnitOfWork, size: int, feed: Feed
    ) -> None:
        """Match, update and create the items ``feed`` yields, ``size`` at a time."""
        base = 0
        while chunk := list(islice(items, size)):
            self._batch(crm, uow, base, chunk, feed)
            base += len(chunk)

    def _batch(
        self, crm: CRM, uow: UnitOfWork, base: int, chunk: list[dict[str, Any]], feed: Feed
    ) -> None:
        reject: RejectHandler = feed.on_reject
        rows = [_Row(base + offset, data, []) for offset, data in enumerate(chunk)]
        keys: dict[int, Any] = {}
        for row in rows:
            try:
                if row.data.get(EXTERNAL_IDS_KEY) is not None:
                    row.pairs = parse_external_ids(row.data[EXTERNAL_IDS_KEY])
                key = self._match_key(crm, row)
            except CRMError as exc:
                reject(row.position, row.data, exc)
                continue
            keys[row.position] = key
        holders = self._holders(crm, uow, [k for k in keys.values() if k is not None])
        matched: list[_Row] = []
        new: list[_Row] = []
        for row in rows:
            if row.position not in keys:
                continue
            key = keys[row.position]
            row.holder = holders.get(key) if key is not None else None
            (new if row.holder is None else matched).append(row)
        self._update(crm, uow, matched, reject)
        self._create(crm, uow, new, hinted_rejects(feed, self.match))

    def _match_key(self, crm: CRM, row: _Row) -> Any:
        """What the row is matched on (``None``: nothing to match, the row is new)."""
        if self.match == "external_id":
            assert self.system is not None
            ids = [e for s, e in row.pairs if s == self.system]
            return (self.system, ids[0]) if ids else None
        value = row.data.get(self.match)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValidationError(
                f"{self.match}: expected a string, got {type(value).__name__}", field=self.match
            )
        return crm.customers.stored_forms(self.match, value)

    def _holders(self, crm: CRM, uow: UnitOfWork, keys: list[Any]) -> dict[Any, int]:
        if self.match == "external_id":
            return dict(external_id_holders(uow.connection, keys))
        column = customers.c[f"{self.match}_norm"]
        by_form = {form: key for key in keys for form in key}
        forms = sorted(by_form)
        found: dict[Any, int] = {}
        for start in range(0, len(forms), _QUERY_CHUNK):
            part = forms[start : start + _QUERY_CHUNK]
            query = select(column, customers.c.id).where(among(uow.connection, column, part))
            found.update((by_form[value], cid) for value, cid in uow.connection.execute(query))
        return found

    def _update(
        self, crm: CRM, uow: UnitOfWork, matched: list[_Row], reject: RejectHandler
    ) -> None:
        if not matched:
            return
        stored = _load(crm, uow, sorted({r.holder for r in matched if r.holder is not None}))
        held = external_id_holders(uow.connection, [p for r in matched for p in r.pairs])
        candidates: list[_Row] = []
        for row in matched:
            assert row.holder is not None
            try:
                self._prepare(crm, uow, row, stored.get(row.holder), held)
            except CRMError as exc:
                reject(row.position, row.data, exc)
                continue
            if row.changes or row.new_pairs:
                candidates.append(row)
            else:
                self.unchanged += 1
        for row, refusal in _conflicts(crm, uow, candidates, self.match).items():
            reject(row.position, row.data, refusal)
            candidates.remove(row)
        self._apply(crm, uow, candidates, reject)

    def _apply(
        self, crm: CRM, uow: UnitOfWork, candidates: list[_Row], reject: RejectHandler
    ) -> None:
        """Update the candidates' fields (one ``update_many`` call) and add their external ids."""
        updating = [r for r in candidates if r.changes]
        refused: set[int] = set()

        def on_reject(index: int, item: Any, exc: CRMError) -> None:
            refused.add(index)
            row = updating[index]
            reject(row.position, row.data, renumbered(exc, [r.position for r in updating]))

        done = crm.customers.update_many(
            [(_id_of(r), r.changes) for r in updating],
            ctx=uow,
            batch_size=max(1, len(updating)),
            on_reject=on_reject,
        )
        accepted = [r for i, r in enumerate(updating) if i not in refused]
        changed = {id(r) for r, change in zip(accepted, done, strict=True) if change.changed}
        gone = {id(updating[i]) for i in refused}
        entries = []
        for row in candidates:
            if id(row) in gone:
                continue
            if row.new_pairs:
                entries.append((_id_of(row), row.new_pairs))
                changed.add(id(row))
            if id(row) in changed:
                self.updated += 1
            else:
                self.unchanged += 1
        store_external_ids(crm, uow, entries)

    def _prepare(
        self,
        crm: CRM,
        uow: UnitOfWork,
        row: _Row,
        found: Customer | CRMError | None,
        held: Mapping[ExternalId, int],
    ) -> None:
        """Check the row may update its holder and work out what would change.

        ``found`` is the stored holder; ``held`` who holds the batch's external ids.
        """
        holder = row.holder
        assert holder is not None
        if isinstance(found, CRMError):
            raise found
        if found is None or not crm.access.allowed(Action.READ, found, ctx=uow):
            what = self._shown_key(row)
            raise ConflictError(f"{what} belongs to a customer you may not see")
        crm.access.check(Action.WRITE, found, ctx=uow)
        if holder in self._touched:
            raise ConflictError(
                f"{self._shown_key(row)}: an earlier row of this file already matched or "
                f"created customer {holder}; give each customer one row"
            )
        self._touched.add(holder)
        row.customer = found
        unknown = sorted(set(row.data) - _ACCEPTED)
        if unknown:
            raise ValidationError(f"{unknown[0]}: not a customer field", field=unknown[0])
        changes = {
            name: value.strip() if name in _STRIPPED and isinstance(value, str) else value
            for name, value in row.data.items()
            if name in UPDATABLE_FIELDS
        }
        after = _proposed(found, changes)
        row.changes = {
            name: changes[name] for name in changes if getattr(after, name) != getattr(found, name)
        }
        if row.changes:
            keys, errors = validate_customer(
                after, uow.now, crm.attributes_validator, crm.config.json_limits
            )
            if errors:
                raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
            assert keys is not None
            row.keys = keys.blinded(crm.cipher)
        row.new_pairs = [p for p in row.pairs if held.get(p) != holder]

    def _shown_key(self, row: _Row) -> str:
        if self.match == "external_id":
            shown = next((e for s, e in row.pairs if s == self.system), "")
            return f"external_id {self.system} {shown!r}"
        return f"{self.match} {row.data.get(self.match)!r}"

    def _create(self, crm: CRM, uow: UnitOfWork, new: list[_Row], reject: RejectHandler) -> None:
        if not new:
            return
        refused: set[int] = set()

        def on_reject(index: int, item: Any, exc: CRMError) -> None:
            refused.add(index)
            reject(new[index].position, item, renumbered(exc, [r.position for r in new]))

        created = crm.customers.create_many(
            [r.data for r in new], ctx=uow, batch_size=len(new), on_reject=on_reject
        )
        kept = [r for i, r in enumerate(new) if i not in refused]
        for customer in created[: len(kept)]:
            if customer.id is not None:
                self._touched.add(customer.id)


def _id_of(row: _Row) -> int:
    assert row.customer is not None and row.customer.id is not None
    return row.customer.id


def _proposed(before: Customer, changes: Mapping[str, Any]) -> Customer:
    """``before`` with ``changes`` applied as ``crm.customers.update`` applies them."""
    if not changes:
        return before
    data = to_dict(before)
    for name, value in changes.items():
        if name == "consent" and isinstance(value, Mapping):
            value = {**data["consent"], **value}
        elif name == "attributes" and isinstance(value, Mapping):
            merged = {**data["attributes"], **value}
            value = {k: v for k, v in merged.items() if v is not None}
        data[name] = value
    return from_dict(data, Customer)


def _load(crm: CRM, uow: UnitOfWork, ids: list[int]) -> dict[int, Customer | CRMError]:
    """The stored customers of ``ids`` (an unreadable row maps to its error)."""
    found: dict[int, Customer | CRMError] = {}
    for start in range(0, len(ids), _QUERY_CHUNK):
        part = ids[start : start + _QUERY_CHUNK]
        rows = uow.connection.execute(select(customers).where(customers.c.id.in_(part))).all()
        tags: dict[int, list[str]] = {}
        query = (
            select(customer_tags.c.customer_id, customer_tags.c.tag)
            .where(customer_tags.c.customer_id.in_(part))
            .order_by(customer_tags.c.tag)
        )
        for cid, tag in uow.connection.execute(query):
            tags.setdefault(cid, []).append(tag)
        for r in rows:
            try:
                found[r.id] = customer_from_row(r, tags.get(r.id, ()), crm.cipher)
            except UnreadableError as exc:
                found[r.id] = CRMError(f"customer {r.id}: {exc}")
    return found


def _conflicts(crm: CRM, uow: UnitOfWork, rows: Iterable[_Row], match: str) -> dict[_Row, CRMError]:
    """The rows whose unique keys, once updated, would belong to another customer too."""
    planned = [(row, row.keys) for row in rows]
    existing = find_existing(uow.connection, [k for _, k in planned if k is not None])
    holders = external_id_holders(uow.connection, [p for r, _ in planned for p in r.new_pairs])
    refused: dict[_Row, CRMError] = {}
    taken_pairs: dict[ExternalId, int] = {}
    for row, keys in planned:
        assert row.customer is not None and row.customer.id is not None
        own = row.customer.id
        clash = None
        if keys is not None:
            clash = next(
                ((c, v) for c, v in keys.pairs() if existing.get((c, v), own) != own), None
            )
        if keys is not None and clash is not None:
            other = existing[clash]
            visible = crm.access.may_see(other, ctx=uow)
            who = f"customer {other}" if visible else "a customer you may not see"
            refused[row] = ConflictError(
                f"the row's {match} matches customer {own} but its "
                f"{KEY_LABELS[clash[0]]} {keys.shown(*clash)!r} belongs to {who}"
            )
            continue
        for pair in row.new_pairs:
            other = holders.get(pair, taken_pairs.get(pair, own))
            if other != own:
                visible = crm.access.may_see(other, ctx=uow)
                refused[row] = taken_error(pair, other, visible=visible)
                break
        else:
            taken_pairs.update(dict.fromkeys(row.new_pairs, own))
    return refused


__all__ = ["Upsert"]
