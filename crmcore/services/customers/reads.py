"""Reading customers: get, exists, search, iteration and duplicate lookup."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    select,
    true,
)

from crmcore.access import Action
from crmcore.errors import (
    NotFoundError,
    ValidationError,
    ValidationErrors,
)
from crmcore.model.entities import (
    Customer,
    CustomerKind,
)
from crmcore.model.identity import (
    normalise_email,
    normalise_name,
    normalise_org_name,
    normalise_phone,
)
from crmcore.model.limits import (
    INT64_MAX,
)
from crmcore.model.pagination import Page, check_page
from crmcore.security.stored_keys import phone_forms, stored_forms
from crmcore.storage.attributes import attribute
from crmcore.storage.records import merged_into
from crmcore.storage.tables import customer_tags, customers
from crmcore.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    pass
from crmcore.services.customers.base import IN_CHUNK, CustomerServiceBase
from crmcore.services.customers.keys import duplicate_error, find_existing
from crmcore.services.customers.validation import coerce_customer, validate_customer

if TYPE_CHECKING:
    pass


#: Fields ``search`` may sort by.
_SORTABLE = {"id", "name", "created_at", "updated_at", "stage", "owner"}


class CustomerReads(CustomerServiceBase):
    """Reading customers (part of ``CustomerService``)."""

    def get(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> Customer:
        """The customer with this id; NotFoundError when there is none.

        The id of a customer merged into another resolves to the kept customer
        (:meth:`merge`), whose ``id`` differs from the one asked for.
        AccessDeniedError when the acting user may not read it.
        """
        with self._crm.reading(ctx) as uow:
            try:
                customer = self._get(uow.connection, customer_id)
            except NotFoundError:
                kept = merged_into(uow.connection, customer_id)
                if kept is None:
                    raise
                customer = self._get(uow.connection, kept)
            self._crm.access.check(Action.READ, customer, ctx=uow)
        return customer

    def resolve(self, customer_id: int, *, ctx: UnitOfWork | None = None) -> int:
        """The id a customer has now: itself, or the customer it was merged into.

        NotFoundError when no customer ever had it. Reveals nothing the
        acting user may not read (the resolved customer is access-checked).
        """
        customer = self.get(customer_id, ctx=ctx)
        assert customer.id is not None
        return customer.id

    def exists(self, customer_ids: Iterable[int], *, ctx: UnitOfWork | None = None) -> set[int]:
        """Which of these ids belong to stored customers the acting user may read.

        A customer hidden from the user is left out exactly like one that
        does not exist, so the answer reveals nothing about it.
        """
        wanted = sorted({i for i in customer_ids if isinstance(i, int) and 0 < i <= INT64_MAX})
        found: set[int] = set()
        with self._crm.reading(ctx) as uow:
            visible = self._crm.access.visible_condition(ctx=uow) if wanted else None
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                query = select(customers.c.id).where(customers.c.id.in_(chunk))
                if visible is not None:
                    query = query.where(visible)
                found.update(uow.connection.execute(query).scalars())
        return found

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
        ``phone`` match exactly after normalisation (``+1 555-010-0100`` finds
        ``+15550100100``; a national form is read in ``[customers]
        default_region``), whatever form the stored key has (plaintext, or a
        blind index under any configured key); ``attributes`` matches custom fields
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
        region = self._crm.config.default_region
        normalisers: dict[str, tuple[str, Callable[[str], str]]] = {
            "email": ("email", normalise_email),
            "phone": ("phone", lambda v: normalise_phone(v, region)),
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
        if kind == "phone":  # with encryption, also the indexes of the pre-E.164 key
            return phone_forms(self._crm.cipher, normalised, value)
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
        candidate = coerce_customer(customer)
        keys, errors = validate_customer(
            candidate, self._crm.clock(), None, region=self._crm.config.default_region
        )
        if errors:
            raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
        assert keys is not None
        keys = keys.blinded(self._crm.cipher)
        with self._crm.reading(ctx) as uow:
            found = find_existing(uow.connection, [keys], exclude_id=candidate.id)
            visible = sorted(i for i in set(found.values()) if self._crm.access.may_see(i, ctx=uow))
        if visible:
            return visible[0]
        if found:
            key = min(found, key=lambda k: found[k])
            raise duplicate_error(key, found[key], keys, visible=False)
        return None
