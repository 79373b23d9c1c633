"""The customer service: create, read, update, delete, search, profile, export, erase."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    true,
    update,
)

from crmcore.access import Action, Role
from crmcore.audit import AuditEntry, acting_user, redact
from crmcore.dry_run import unit_or_dry_run
from crmcore.errors import (
    ConflictError,
    CRMError,
    NotFoundError,
    ValidationError,
    ValidationErrors,
)
from crmcore.events import emitters
from crmcore.events.outbox import redact_customer_events
from crmcore.model.entities import (
    UPDATABLE_FIELDS,
    Consent,
    Customer,
    CustomerChange,
    CustomerKind,
    LifecycleEvent,
    stamped,
)
from crmcore.model.identity import (
    normalise_email,
    normalise_name,
    normalise_org_name,
    normalise_phone,
)
from crmcore.model.limits import (
    INT32_MAX,
    INT64_MAX,
    JsonLimits,
    int_problem,
    json_problem,
    timestamp_problem,
)
from crmcore.model.pagination import Page, check_page
from crmcore.model.serialization import from_dict, to_dict
from crmcore.model.storable import text_problem
from crmcore.security.encryption import FieldCipher, UnreadableError
from crmcore.security.stored_keys import IdentityKeys, stored_forms
from crmcore.security.unreadable import UnreadableRows, check_policy
from crmcore.services.erasure import anonymise, check_vacuum_mode, purge_after_erasure
from crmcore.storage.attributes import attribute, attribute_keys_problem
from crmcore.storage.bulk import insert_rows
from crmcore.storage.filters import among
from crmcore.storage.ids import allocate_ids
from crmcore.storage.tables import customer_tags, customers
from crmcore.storage.types import money_problem
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.services.key_rotation import RotationProgress

#: Called with (position in the input, the rejected input, why) when skipping invalid rows.
RejectHandler = Callable[[int, Any, CRMError], None]

_CONSENT_FIELDS = tuple(f.name for f in attrs.fields(Consent))
_SORTABLE = {"id", "name", "created_at", "updated_at", "stage", "owner"}
_IN_CHUNK = 400


_DEFAULT_LIMITS = JsonLimits()
_KEY_LABELS = {"email_norm": "email", "phone_norm": "phone", "org_norm": "organisation name"}


def _check_length(errors: list[ValidationError], name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        errors.append(
            ValidationError(f"{name}: longer than {limit} characters ({len(value)})", field=name)
        )


def _check_integer(
    errors: list[ValidationError], name: str, value: int | None, low: int, high: int
) -> None:
    if value is None:
        return
    if low == 0 and isinstance(value, int) and value < 0:
        errors.append(
            ValidationError(f"{name}: must not be negative, got {value}", field=name, value=value)
        )
        return
    problem = int_problem(value, low, high)
    if problem:
        errors.append(ValidationError(f"{name}: {problem}", field=name, value=value))


def _check_money(errors: list[ValidationError], name: str, value: Decimal | None) -> None:
    if value is None:
        return
    problem = money_problem(value) or (f"must not be negative, got {value}" if value < 0 else None)
    if problem:
        errors.append(ValidationError(f"{name}: {problem}", field=name, value=value))


_TEXT_FIELDS = (
    "name", "email", "phone", "address", "company_name", "industry", "owner", "tags", "attributes",
)  # fmt: skip


def validate_customer(
    customer: Customer,
    now: datetime,
    attributes_validator: Any,
    limits: JsonLimits | None = None,
) -> tuple[IdentityKeys | None, list[ValidationError]]:
    """Core's checks on one customer; returns its identity keys and every problem found.

    ``limits`` bounds the ``attributes`` document (default :class:`JsonLimits`);
    it is checked first, so no later check walks a document nested too deeply.
    """
    errors: list[ValidationError] = []
    too_big = json_problem(customer.attributes, limits or _DEFAULT_LIMITS)
    if too_big:
        return None, [ValidationError(f"attributes: {too_big}", field="attributes")]
    for name in _TEXT_FIELDS:
        problem = text_problem(getattr(customer, name), name)
        if problem:
            errors.append(ValidationError(f"{problem[0]}: {problem[1]}", field=problem[0]))
    if errors:
        return None, errors
    if not isinstance(customer.name, str) or not customer.name.strip():
        errors.append(ValidationError("name: must not be empty", field="name", value=customer.name))
    _check_length(errors, "name", customer.name, 300)
    for name, limit in (
        ("address", 2000),
        ("company_name", 300),
        ("industry", 200),
        ("owner", 200),
    ):
        _check_length(errors, name, getattr(customer, name), limit)
    email = phone = org = None
    if customer.email is not None:
        _check_length(errors, "email", customer.email, 320)
        try:
            email = normalise_email(customer.email)
        except ValueError as exc:
            errors.append(ValidationError(f"email: {exc}", field="email", value=customer.email))
    if customer.phone is not None:
        try:
            phone = normalise_phone(customer.phone)
        except ValueError as exc:
            errors.append(ValidationError(f"phone: {exc}", field="phone", value=customer.phone))
    if customer.kind is CustomerKind.ORGANIZATION:
        org = normalise_org_name(customer.company_name or customer.name) or None
    if customer.birth_date is not None and customer.birth_date > now.date():
        errors.append(
            ValidationError(
                f"birth_date: {customer.birth_date} is in the future", field="birth_date"
            )
        )
    _check_integer(errors, "size", customer.size, 0, INT32_MAX)
    _check_money(errors, "registered_capital", customer.registered_capital)
    for tag in customer.tags:
        if len(tag) > 100:
            errors.append(
                ValidationError(
                    f"tags: tag longer than 100 characters: {tag[:20]!r}...", field="tags"
                )
            )
    for stamp in ("created_at", "updated_at"):
        value = getattr(customer, stamp)
        if value is not None and value.tzinfo is None:
            errors.append(
                ValidationError(f"{stamp}: must be timezone-aware", field=stamp, value=value)
            )
        elif timestamp_problem(value):
            errors.append(
                ValidationError(f"{stamp}: {timestamp_problem(value)}", field=stamp, value=value)
            )
    if not isinstance(customer.attributes, dict):
        errors.append(ValidationError("attributes: must be an object", field="attributes"))
    elif customer.attributes and (bad_key := attribute_keys_problem(customer.attributes)):
        errors.append(ValidationError(f"attributes: {bad_key}", field="attributes"))
    elif attributes_validator is not None:
        for err in sorted(
            attributes_validator.iter_errors(customer.attributes),
            key=lambda e: list(e.absolute_path),
        ):
            path = ".".join(["attributes", *(str(p) for p in err.absolute_path)])
            errors.append(ValidationError(f"{path}: {err.message}", field=path))
    return (IdentityKeys(email, phone, org) if not errors else None), errors


def _to_row(
    customer: Customer,
    keys: IdentityKeys,
    now: datetime,
    cipher: FieldCipher | None = None,
    customer_id: int | None = None,
) -> dict[str, Any]:
    created = customer.created_at or now
    row: dict[str, Any] = {
        "id": customer_id,
        "kind": customer.kind.value,
        "name": customer.name.strip(),
        "name_norm": normalise_name(customer.name),
        "email": customer.email.strip() if customer.email else None,
        "email_norm": keys.email,
        "phone": customer.phone.strip() if customer.phone else None,
        "phone_norm": keys.phone,
        "address": customer.address,
        "gender": customer.gender.value if customer.gender else None,
        "birth_date": customer.birth_date,
        "company_name": customer.company_name,
        "org_norm": keys.org,
        "industry": customer.industry,
        "size": customer.size,
        "registered_capital": customer.registered_capital,
        "founding_date": customer.founding_date,
        "owner": customer.owner,
        "stage": customer.stage.value,
        "source_channel": customer.source_channel.value if customer.source_channel else None,
        "attributes": customer.attributes,
        "created_at": created,
        "updated_at": customer.updated_at or created,
    }
    for name in _CONSENT_FIELDS:
        row[f"consent_{name}"] = getattr(customer.consent, name)
    row["sealed"] = None
    if cipher is not None:
        assert customer_id is not None
        secret = {f: row[f] for f in cipher.fields}
        if secret.get("birth_date") is not None:
            secret["birth_date"] = secret["birth_date"].isoformat()
        row.update(dict.fromkeys(cipher.fields))
        row["sealed"] = cipher.seal(customer_id, secret)
    return row


def _from_row(
    row: Row[Any] | Mapping[str, Any], tags: Sequence[str], cipher: FieldCipher | None = None
) -> Customer:
    m = row._mapping if isinstance(row, Row) else row
    data: dict[str, Any] = {
        name: m[name]
        for name in (
            "id",
            "kind",
            "name",
            "email",
            "phone",
            "address",
            "gender",
            "birth_date",
            "company_name",
            "industry",
            "size",
            "registered_capital",
            "founding_date",
            "owner",
            "stage",
            "source_channel",
            "attributes",
            "created_at",
            "updated_at",
        )
    }
    if m["sealed"] is not None:
        if cipher is None:
            raise UnreadableError(
                f"customer {m['id']} has encrypted fields: set CRM_ENCRYPTION_KEY to read them",
                customer_id=m["id"],
            )
        data.update(cipher.open(m["id"], m["sealed"]))
    data["tags"] = list(tags)
    data["consent"] = {name: bool(m[f"consent_{name}"]) for name in _CONSENT_FIELDS}
    return from_dict({k: v for k, v in data.items() if v is not None}, Customer)


def _coerce(item: Customer | Mapping[str, Any]) -> Customer:
    if isinstance(item, Customer):
        return item
    if isinstance(item, Mapping):
        return from_dict(dict(item), Customer)
    raise ValidationError(f"expected a Customer or a mapping, got {type(item).__name__}")


def _prefix(exc: CRMError, where: str) -> CRMError:
    """The same error with ``where`` (e.g. ``customers[3]``) in front of its message."""
    if isinstance(exc, ValidationErrors):
        return ValidationErrors([_prefix(e, where) for e in exc.errors])  # type: ignore[misc]
    if isinstance(exc, ValidationError):
        return type(exc)(f"{where}: {exc}", field=exc.field, value=exc.value)
    if isinstance(exc, ConflictError):
        return ConflictError(f"{where}: {exc}", existing_id=exc.existing_id)
    return type(exc)(f"{where}: {exc}")


def _duplicate(
    key: tuple[str, str], existing_id: int, keys: IdentityKeys, *, visible: bool = True
) -> ConflictError:
    """The refusal of a duplicate; it names the holder only to whom may see it."""
    column, value = key
    value = keys.shown(column, value)
    if not visible:
        return ConflictError(
            f"duplicate customer: {_KEY_LABELS[column]} {value!r} already belongs to "
            "a customer you may not see"
        )
    return ConflictError(
        f"duplicate customer: {_KEY_LABELS[column]} {value!r} already belongs to "
        f"customer {existing_id}",
        existing_id=existing_id,
    )


class CustomerService:
    """Customers: the Python API behind ``crm customers``. Get it as ``crm.customers``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        #: Customers that listings skipped because their sealed fields cannot be opened.
        self.unreadable = UnreadableRows()

    # --- writing -----------------------------------------------------------

    def create(
        self,
        customer: Customer | Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Customer:
        """Validate and store one customer; return it with its id and timestamps.

        Raises ValidationError (naming the field), or ConflictError naming the
        existing customer when the email, phone or organisation name is taken.
        """
        try:
            created = self.create_many([customer], actor=actor, ctx=ctx)
        except (ValidationError, ConflictError) as exc:
            message = str(exc)
            if message.startswith("customers[0]: "):
                exc.args = (message.removeprefix("customers[0]: "),)
            raise
        return created[0]

    def create_many(
        self,
        items: Iterable[Customer | Mapping[str, Any]],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        batch_size: int = 500,
        on_reject: RejectHandler | None = None,
        keep: bool = True,
    ) -> list[Customer]:
        """Store many customers in one transaction, streamed in batches.

        The input is consumed lazily; hooks run once per batch. By default the
        first invalid or duplicate customer aborts everything (nothing is
        stored). With ``on_reject`` each bad customer is handed to it with its
        position and the error, and the rest are stored. ``keep=False``
        returns an empty list instead of collecting what was stored (for
        imports too large to hold in memory).
        """
        if batch_size < 1:
            raise ValidationError(
                f"batch_size: must be at least 1, got {batch_size}", field="batch_size"
            )
        stored: list[Customer] = []
        with self._crm.unit_of_work(actor, ctx) as uow:
            batch: list[tuple[int, Any]] = []
            for position, item in enumerate(items):
                batch.append((position, item))
                if len(batch) >= batch_size:
                    created = self._create_batch(uow, batch, on_reject)
                    if keep:
                        stored.extend(created)
                    batch = []
            if batch:
                created = self._create_batch(uow, batch, on_reject)
                if keep:
                    stored.extend(created)
        return stored

    def _reject(
        self, on_reject: RejectHandler | None, position: int, item: Any, exc: CRMError
    ) -> None:
        if on_reject is None:
            raise _prefix(exc, f"customers[{position}]") from None
        on_reject(position, item, exc)

    def _create_batch(
        self, uow: UnitOfWork, batch: Sequence[tuple[int, Any]], on_reject: RejectHandler | None
    ) -> list[Customer]:
        validator = self._crm._attributes_validator
        limits = self._crm.config.json_limits
        good: list[tuple[int, Any, Customer, IdentityKeys]] = []
        seen: dict[tuple[str, str], int] = {}
        for position, item in batch:
            try:
                customer = self._owned_by_agent(_coerce(item))
                keys, errors = validate_customer(customer, uow.now, validator, limits)
                if errors:
                    raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
                assert keys is not None
                keys = keys.blinded(self._crm.cipher)
                self._crm.access.check(Action.WRITE, customer, ctx=uow)
                for pair in keys.pairs():
                    if pair in seen:
                        raise ConflictError(
                            f"{_KEY_LABELS[pair[0]]} {keys.shown(*pair)!r} is also used by "
                            f"customers[{seen[pair]}] "
                            "in the same batch"
                        )
                for pair in keys.pairs():
                    seen[pair] = position
            except CRMError as exc:
                self._reject(on_reject, position, item, exc)
                continue
            good.append((position, item, customer, keys))

        existing = self._find_existing(uow.connection, [k for *_, k in good])
        kept: list[tuple[int, Any, Customer, IdentityKeys]] = []
        for position, item, customer, keys in good:
            clash = next(((col, v) for col, v in keys.pairs() if (col, v) in existing), None)
            if clash is not None:
                holder = existing[clash]
                shown = self._crm.access.may_see(holder, ctx=uow)
                error = _duplicate(clash, holder, keys, visible=shown)
                self._reject(on_reject, position, item, error)
                continue
            kept.append((position, item, customer, keys))
        kept = self._run_plugin_validation(uow, kept, on_reject)
        if not kept:
            return []

        ids = allocate_ids(uow.connection, customers, len(kept))
        cipher = self._crm.cipher
        rows = [
            _to_row(c, k, uow.now, cipher, new_id)
            for new_id, (_, _, c, k) in zip(ids, kept, strict=True)
        ]
        insert_rows(uow.connection, customers, rows)
        created: list[Customer] = []
        tag_rows: list[dict[str, Any]] = []
        events: list[LifecycleEvent] = []
        for new_id, row, (_, item, customer, _) in zip(ids, rows, kept, strict=True):
            stored = stamped(
                customer,
                customer is not item,
                id=new_id,
                name=row["name"],
                email=customer.email.strip() if customer.email else None,
                phone=customer.phone.strip() if customer.phone else None,
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            created.append(stored)
            tag_rows.extend({"customer_id": new_id, "tag": t} for t in customer.tags)
            events.append(
                LifecycleEvent(
                    customer_id=new_id,
                    to_stage=customer.stage,
                    at=row["created_at"],
                    reason="created",
                    actor=acting_user(uow),
                )
            )
        if tag_rows:
            insert_rows(uow.connection, customer_tags, tag_rows)
        emitters.customers_created(uow, created)
        self._crm.lifecycle._record_events(uow, events)
        self._crm.audit.record_batch(
            uow,
            "customer.create",
            "customer",
            [(c.id, c.id, {"stage": c.stage.value}) for c in created],
        )
        self._crm.call_hook("crm_customers_created", ctx=uow, customers=created)
        self._crm.call_hook("crm_lifecycle_changed", ctx=uow, events=events)
        return created

    def _run_plugin_validation(
        self,
        uow: UnitOfWork,
        kept: list[tuple[int, Any, Customer, IdentityKeys]],
        on_reject: RejectHandler | None,
    ) -> list[tuple[int, Any, Customer, IdentityKeys]]:
        if not kept:
            return kept
        problems: dict[int, list[str]] = {}
        for answer in self._crm.call_hook(
            "crm_validate_customers", ctx=uow, customers=[c for _, _, c, _ in kept]
        ):
            for index, message in answer or ():
                problems.setdefault(index, []).append(message)
        if not problems:
            return kept
        result = []
        for index, entry in enumerate(kept):
            if index in problems:
                errors = [ValidationError(m) for m in problems[index]]
                exc = errors[0] if len(errors) == 1 else ValidationErrors(errors)
                self._reject(on_reject, entry[0], entry[1], exc)
            else:
                result.append(entry)
        return result

    def _find_existing(
        self, connection: Connection, keys: Sequence[IdentityKeys], exclude_id: int | None = None
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

    def update(
        self,
        customer_id: int,
        changes: Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> CustomerChange:
        """Change some fields of a customer; return before, after and the changed field names.

        ``changes`` maps field names to new values (JSON-style values are
        accepted: ISO dates, decimal strings). ``consent`` and ``attributes``
        are merged into the stored ones; an attribute set to ``None`` is
        removed. ``stage`` cannot be changed here: use ``crm.lifecycle.move``.
        """
        if not isinstance(changes, Mapping) or not changes:
            raise ValidationError("changes: give at least one field to change", field="changes")
        unknown = sorted(set(changes) - set(UPDATABLE_FIELDS))
        if "stage" in unknown:
            raise ValidationError(
                "stage: change it with crm.lifecycle.move (or `crm lifecycle move`), not update",
                field="stage",
            )
        if unknown:
            raise ValidationError(
                f"{unknown[0]}: not a field that can be updated", field=unknown[0]
            )
        with self._crm.unit_of_work(actor, ctx) as uow:
            before = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.WRITE, before, ctx=uow)
            data = to_dict(before)
            for name, value in changes.items():
                new_value = value
                if attrs.has(type(value)):
                    new_value = to_dict(value)
                elif isinstance(value, tuple | set | frozenset):
                    new_value = list(value)
                if name == "consent" and isinstance(new_value, Mapping):
                    new_value = {**data["consent"], **new_value}
                elif name == "attributes" and isinstance(new_value, Mapping):
                    merged = {**data["attributes"], **new_value}
                    new_value = {k: v for k, v in merged.items() if v is not None}
                data[name] = new_value
            data["updated_at"] = uow.now.isoformat()
            after = from_dict(data, Customer)
            self._crm.access.check(Action.WRITE, after, ctx=uow)
            keys, errors = validate_customer(
                after, uow.now, self._crm._attributes_validator, self._crm.config.json_limits
            )
            if errors:
                raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
            assert keys is not None
            keys = keys.blinded(self._crm.cipher)
            changed = tuple(
                f.name
                for f in attrs.fields(Customer)
                if f.name != "updated_at" and getattr(before, f.name) != getattr(after, f.name)
            )
            if not changed:
                return CustomerChange(before=before, after=before, changed=())
            existing = self._find_existing(uow.connection, [keys], exclude_id=customer_id)
            for pair in keys.pairs():
                if pair in existing:
                    raise _duplicate(pair, existing[pair], keys)
            self._validate_with_plugins(uow, after)
            row = _to_row(after, keys, uow.now, self._crm.cipher, customer_id)
            row.pop("created_at")
            row.pop("id")
            uow.connection.execute(
                update(customers).where(customers.c.id == customer_id).values(row)
            )
            if "tags" in changed:
                uow.connection.execute(
                    delete(customer_tags).where(customer_tags.c.customer_id == customer_id)
                )
                if after.tags:
                    uow.connection.execute(
                        insert(customer_tags),
                        [{"customer_id": customer_id, "tag": t} for t in after.tags],
                    )
            after = self._get(uow.connection, customer_id)
            change = CustomerChange(before=before, after=after, changed=changed)
            old_values, new_values = to_dict(before), to_dict(after)
            diff = {
                name: {"from": redact(name, old_values[name]), "to": redact(name, new_values[name])}
                for name in changed
            }
            self._crm.audit.record(
                uow,
                [
                    AuditEntry(
                        "customer.update", "customer", customer_id, customer_id, {"changed": diff}
                    )
                ],
            )
            emitters.customers_updated(uow, [change])
            self._crm.call_hook("crm_customers_updated", ctx=uow, changes=[change])
        return change

    def _validate_with_plugins(self, uow: UnitOfWork, customer: Customer) -> None:
        messages = [
            message
            for answer in self._crm.call_hook(
                "crm_validate_customers", ctx=uow, customers=[customer]
            )
            for _, message in (answer or ())
        ]
        if messages:
            errors = [ValidationError(m) for m in messages]
            raise errors[0] if len(errors) == 1 else ValidationErrors(errors)

    def delete(
        self,
        customer_id: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        dry_run: bool = False,
    ) -> Customer:
        """Delete a customer with its interactions and history; return what was deleted.

        Plugins are told first (``crm_customers_deleted``) so they can remove
        their rows in the same transaction. ``dry_run=True`` does all of it
        (checks and hooks included), rolls it back and returns the customer
        that would go (:mod:`crmcore.dry_run`).
        """
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            customer = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.DELETE, customer, ctx=uow)
            emitters.customers_removed(uow, "customer.deleted", [customer_id])
            self._crm.call_hook("crm_customers_deleted", ctx=uow, customers=[customer])
            uow.connection.execute(delete(customers).where(customers.c.id == customer_id))
            self._crm.audit.record(
                uow, [AuditEntry("customer.delete", "customer", customer_id, customer_id)]
            )
        return customer

    # --- reading -----------------------------------------------------------

    def _get(self, connection: Connection, customer_id: int, *, lock: bool = False) -> Customer:
        if isinstance(customer_id, bool) or not isinstance(customer_id, int):
            raise ValidationError(
                f"customer id: expected an integer, got {customer_id!r}", field="id"
            )
        if not 0 < customer_id <= INT64_MAX:  # no stored id; the drivers would overflow
            raise NotFoundError(f"customer {customer_id} does not exist")
        query = select(customers).where(customers.c.id == customer_id)
        if lock and connection.dialect.name == "postgresql":
            query = query.with_for_update(key_share=True)
        row = connection.execute(query).first()
        if row is None:
            raise NotFoundError(f"customer {customer_id} does not exist")
        tags = (
            connection.execute(
                select(customer_tags.c.tag)
                .where(customer_tags.c.customer_id == customer_id)
                .order_by(customer_tags.c.tag)
            )
            .scalars()
            .all()
        )
        return _from_row(row, tags, self._crm.cipher)

    def get(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> Customer:
        """The customer with this id; NotFoundError when there is none.

        AccessDeniedError when the acting user may not read it.
        """
        with self._crm.reading(ctx) as uow:
            customer = self._get(uow.connection, customer_id)
            self._crm.access.check(Action.READ, customer, ctx=uow)
        return customer

    def _owned_by_agent(self, customer: Customer) -> Customer:
        """An agent's new customer without an owner becomes theirs."""
        principal = self._crm.principal
        if principal is not None and principal.role is Role.AGENT and customer.owner is None:
            return attrs.evolve(customer, owner=principal.user)
        return customer

    def exists(self, customer_ids: Iterable[int], *, ctx: UnitOfWork | None = None) -> set[int]:
        """Which of these ids belong to stored customers the acting user may read.

        A customer hidden from the user is left out exactly like one that
        does not exist, so the answer reveals nothing about it.
        """
        wanted = sorted({i for i in customer_ids if isinstance(i, int) and 0 < i <= INT64_MAX})
        found: set[int] = set()
        with self._crm.reading(ctx) as uow:
            visible = self._crm.access.visible_condition(ctx=uow) if wanted else None
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                query = select(customers.c.id).where(customers.c.id.in_(chunk))
                if visible is not None:
                    query = query.where(visible)
                found.update(uow.connection.execute(query).scalars())
        return found

    def _rows_to_customers(
        self, connection: Connection, rows: Sequence[Row[Any]], unreadable: str | None = None
    ) -> list[Customer]:
        """The customers of ``rows``, without those whose sealed fields cannot be opened.

        Such a row is skipped (logged, counted in :attr:`unreadable`) or raises,
        by ``unreadable`` or the config.
        """
        ids = [r.id for r in rows]
        tags: dict[int, list[str]] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            query = (
                select(customer_tags.c.customer_id, customer_tags.c.tag)
                .where(customer_tags.c.customer_id.in_(ids[start : start + _IN_CHUNK]))
                .order_by(customer_tags.c.tag)
            )
            for cid, tag in connection.execute(query):
                tags.setdefault(cid, []).append(tag)
        cipher = self._crm.cipher
        policy = check_policy(unreadable or self._crm.config.unreadable)
        result: list[Customer] = []
        for r in rows:
            try:
                result.append(_from_row(r, tags.get(r.id, ()), cipher))
            except UnreadableError as exc:
                self.unreadable.handle(exc, policy)
        return result

    def search(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        tag: str | None = None,
        stage: str | None = None,
        owner: str | None = None,
        kind: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        sort: str = "id",
        limit: int = 50,
        offset: int = 0,
        unreadable: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Page[Customer]:
        """Find customers; every filter given must match.

        ``name`` matches a case- and accent-insensitive substring; ``email`` and
        ``phone`` match exactly after normalisation (``+1 555-0100`` finds
        ``+15550100``), whatever form the stored key has (plaintext, or a blind
        index under any configured key); ``attributes`` matches custom fields
        by equality. ``sort`` is a field name (id, name, created_at,
        updated_at, stage, owner), ``-`` in front for descending. Returns one
        :class:`Page`; ``total`` counts every match, ``items`` leaves out
        customers whose sealed fields cannot be opened (counted in the page's
        ``skipped``) unless ``unreadable`` (default ``[security] unreadable``)
        is ``"fail"``: see :mod:`crmcore.security.unreadable`. With ``ctx``, reads
        inside that unit of work (a hook sees the operation's own writes).
        """
        check_page(limit, offset)
        conditions = self._conditions(name, email, phone, tag, stage, owner, kind, attributes)
        descending = sort.startswith("-")
        key = sort.removeprefix("-")
        if key not in _SORTABLE:
            raise ValidationError(
                f"sort: {sort!r} is not one of {', '.join(sorted(_SORTABLE))} "
                "(prefix - for descending)",
                field="sort",
            )
        column = customers.c.name_norm if key == "name" else customers.c[key]
        order = [column.desc() if descending else column.asc()]
        if key != "id":
            order.append(customers.c.id.desc() if descending else customers.c.id.asc())
        visible = self._crm.access.visible_condition()
        if visible is not None:
            conditions.append(visible)
        where = and_(True, *conditions)
        with self._crm.reading(ctx) as uow:
            total = uow.connection.execute(
                select(func.count()).select_from(customers).where(where)
            ).scalar_one()
            rows = uow.connection.execute(
                select(customers).where(where).order_by(*order).limit(limit).offset(offset)
            ).all()
            items = self._rows_to_customers(uow.connection, rows, unreadable)
        skipped = len(rows) - len(items)
        return Page(items=items, total=total, limit=limit, offset=offset, skipped=skipped)

    def _conditions(
        self,
        name: str | None,
        email: str | None,
        phone: str | None,
        tag: str | None,
        stage: str | None,
        owner: str | None,
        kind: str | None,
        attributes: Mapping[str, Any] | None,
    ) -> list[ColumnElement[bool]]:
        from crmcore.model.entities import Stage

        conditions: list[ColumnElement[bool]] = []
        if name:
            pattern = (
                normalise_name(name).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            conditions.append(customers.c.name_norm.like(f"%{pattern}%", escape="\\"))
        if email:
            conditions.append(customers.c.email_norm.in_(self.stored_forms("email", email)))
        if phone:
            conditions.append(customers.c.phone_norm.in_(self.stored_forms("phone", phone)))
        if tag:
            conditions.append(
                exists(
                    select(1).where(
                        customer_tags.c.customer_id == customers.c.id,
                        customer_tags.c.tag == tag.strip(),
                    )
                )
            )
        if stage:
            try:
                conditions.append(customers.c.stage == Stage(stage).value)
            except ValueError:
                allowed = ", ".join(s.value for s in Stage)
                raise ValidationError(
                    f"stage: {stage!r} is not one of: {allowed}", field="stage"
                ) from None
        if owner:
            conditions.append(customers.c.owner == owner)
        if kind:
            try:
                conditions.append(customers.c.kind == CustomerKind(kind).value)
            except ValueError:
                raise ValidationError(
                    f"kind: {kind!r} is not one of: person, organization", field="kind"
                ) from None
        for key, value in (attributes or {}).items():
            element = attribute(customers.c.attributes, key)
            if isinstance(value, bool):
                conditions.append(element.as_boolean() == value)
            elif isinstance(value, int):
                conditions.append(element.as_integer() == value)
            elif isinstance(value, float):
                conditions.append(element.as_float() == value)
            elif isinstance(value, str):
                conditions.append(element.as_string() == value)
            else:
                raise ValidationError(
                    f"attributes.{key}: filter by a string, number or boolean, "
                    f"got {type(value).__name__}",
                    field=f"attributes.{key}",
                )
        return conditions

    def stored_forms(self, field: str, value: str) -> tuple[str, ...]:
        """Every value the identity-key column of ``field`` may hold for ``value`` right now.

        ``field`` is ``"email"`` (column ``email_norm`` of ``crm_customers``),
        ``"phone"`` (``phone_norm``) or ``"organisation"`` (``org_norm``);
        ``value`` is normalised first (ValidationError naming the field when it
        cannot be). Without encryption the result is the normalised value; with
        encryption it is the current blind index, the index under every other
        configured key and the plaintext (rows stored before encryption was
        enabled). ``column IN stored_forms(...)`` finds the customer whatever
        state enabling encryption or a key rotation left its row in; plugins
        use it to compare with identity keys without knowing how they are stored.
        """
        normalisers = {
            "email": ("email", normalise_email),
            "phone": ("phone", normalise_phone),
            "organisation": ("org", normalise_org_name),
        }
        if field not in normalisers:
            raise ValidationError(
                f"field: {field!r} is not one of: email, phone, organisation", field="field"
            )
        kind, normalise = normalisers[field]
        try:
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {type(value).__name__}")
            normalised = normalise(value)
            if not normalised:
                raise ValueError("must not be empty")
        except ValueError as exc:
            raise ValidationError(f"{field}: {exc}", field=field, value=value) from None
        return stored_forms(self._crm.cipher, kind, normalised)

    def iter_all(
        self,
        *,
        batch_size: int = 1000,
        unreadable: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Iterator[Customer]:
        """Every customer in id order, read in batches (memory stays flat).

        A customer whose sealed fields cannot be opened is skipped with a
        warning, or raises, by ``unreadable`` (default ``[security]
        unreadable``): see :mod:`crmcore.security.unreadable`.
        """
        last = 0
        seen = self._crm.access.visibility()
        visible = seen.condition
        while True:
            with self._crm.reading(ctx) as uow:
                rows = uow.connection.execute(
                    select(customers)
                    .where(customers.c.id > last, true() if visible is None else visible)
                    .order_by(customers.c.id)
                    .limit(batch_size)
                ).all()
                batch = self._rows_to_customers(uow.connection, rows, unreadable)
                if seen.per_row:  # a crm_authorize policy without a SQL answer: ask per row
                    batch = [c for c in batch if self._crm.access.allowed(Action.READ, c, ctx=uow)]
            if not rows:
                return
            yield from batch
            last = rows[-1].id

    def find_duplicate(
        self, customer: Customer | Mapping[str, Any], *, ctx: UnitOfWork | None = None
    ) -> int | None:
        """The id of a stored customer sharing an identity key with ``customer``, if any.

        When every such customer is hidden from the acting user, a
        ConflictError says that the key is taken without naming who holds it
        (the duplicate is refused all the same on create).
        """
        candidate = _coerce(customer)
        keys, errors = validate_customer(candidate, self._crm.clock(), None)
        if errors:
            raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
        assert keys is not None
        keys = keys.blinded(self._crm.cipher)
        with self._crm.reading(ctx) as uow:
            found = self._find_existing(uow.connection, [keys], exclude_id=candidate.id)
            visible = sorted(i for i in set(found.values()) if self._crm.access.may_see(i, ctx=uow))
        if visible:
            return visible[0]
        if found:
            key = min(found, key=lambda k: found[k])
            raise _duplicate(key, found[key], keys, visible=False)
        return None

    def rotate_encryption(
        self,
        *,
        actor: str | None = None,
        batch_size: int = 1000,
        on_batch: Callable[[RotationProgress], None] | None = None,
        unreadable: str | None = None,
    ) -> int:
        """Re-seal every customer with the current key and recompute the blind indexes.

        Rows sealed with an old key (listed in ``CRM_ENCRYPTION_OLD_KEYS``),
        rows stored in plaintext before encryption was enabled and identity
        keys in an older index form are all brought to the current key and
        scheme, one transaction per ``batch_size`` customers; rows already
        current are left alone, so running it again after a kill resumes.
        Then storage is compacted. Returns the number of customers rewritten.
        See :func:`crmcore.services.key_rotation.rotate_keys` for ``on_batch``,
        ``unreadable`` and the ConflictError naming customers that would
        share a key.
        """
        from crmcore.services.key_rotation import rotate_keys

        result = rotate_keys(
            self._crm,
            actor=actor,
            batch_size=batch_size,
            on_batch=on_batch,
            unreadable=unreadable,
        )
        return result.rewritten

    # --- views and privacy ----------------------------------------------------

    def profile(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
        """The 360° view: customer, recent interactions, lifecycle and every plugin's section."""
        customer = self.get(customer_id, ctx=ctx)
        timeline = self._crm.interactions.timeline(customer_id, limit=20, ctx=ctx)
        sections = self._crm.collect("crm_customer_profile", crm=self._crm, customer=customer)
        return {
            "customer": to_dict(customer),
            "recent_interactions": [to_dict(i) for i in timeline.items],
            "interaction_count": timeline.total,
            "lifecycle": [to_dict(e) for e in self._crm.lifecycle.history(customer_id, ctx=ctx)],
            "plugins": sections,
        }

    def export(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
        """Everything held on one customer, from core and every plugin, JSON-safe."""
        from crmcore.storage.tables import interactions

        with self._crm.reading(ctx) as uow:
            customer = self._get(uow.connection, customer_id)
            self._crm.access.check(Action.EXPORT, customer, ctx=uow)
            rows = uow.connection.execute(
                select(interactions)
                .where(interactions.c.customer_id == customer_id)
                .order_by(interactions.c.occurred_at)
            ).all()
            from crmcore.services.interactions import interaction_from_row

            data = {
                "customer": to_dict(customer),
                "interactions": [to_dict(interaction_from_row(r)) for r in rows],
                "lifecycle": [
                    to_dict(e) for e in self._crm.lifecycle.history(customer_id, ctx=uow)
                ],
                "plugins": self._crm.collect(
                    "crm_export_customer", ctx=uow, customer_id=customer_id
                ),
            }
        return data

    def erase(
        self,
        customer_id: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
        vacuum: str = "auto",
        dry_run: bool = False,
    ) -> None:
        """Right to erasure: every plugin erases its data, then core anonymises the customer.

        The customer row stays (anonymised) so that aggregates such as revenue
        keep adding up; what goes is listed in :func:`crmcore.services.erasure.anonymise`.
        ``vacuum`` says what happens to the old row versions once the erasure
        commits (:func:`crmcore.storage.engine.purge_old_versions`): ``"auto"``
        (vacuum the tables on PostgreSQL, checkpoint the WAL on SQLite),
        ``"full"`` (rewrite every table: VACUUM FULL / VACUUM) or ``"none"``.
        Inside a caller's unit of work (``ctx``) nothing is purged: that
        transaction has not committed yet. ``dry_run=True`` runs the whole
        erasure (access check and plugin hooks included) and rolls it back:
        an unknown or forbidden customer raises as it would, nothing changes.
        """
        check_vacuum_mode(vacuum)
        with unit_or_dry_run(self._crm, actor, ctx, dry_run) as uow:
            customer = self._get(uow.connection, customer_id, lock=True)
            self._crm.access.check(Action.ERASE, customer, ctx=uow)
            self._crm.call_hook("crm_erase_customer", ctx=uow, customer_id=customer_id)
            anonymise(uow, customer_id)
            redact_customer_events(uow, customer_id)
            emitters.customers_removed(uow, "customer.erased", [customer_id])
            self._crm.audit.redact_customer(uow, customer_id)
            self._crm.audit.record(
                uow, [AuditEntry("customer.erase", "customer", customer_id, customer_id)]
            )
        if ctx is None and not dry_run:
            purge_after_erasure(self._crm.engine, customer_id, vacuum)


__all__ = ["CustomerService", "IdentityKeys", "RejectHandler", "validate_customer"]
