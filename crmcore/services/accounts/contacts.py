"""Contacts: the people who work at an organisation, their roles, the primary contact, dates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import attrs
from sqlalchemy import ColumnElement, Connection, Row, case, delete, insert, select, update

from crmcore.access import Action
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.model.accounts import CONTACT_FIELDS, Contact, is_current
from crmcore.model.entities import CustomerKind, Interaction
from crmcore.services.accounts.common import (
    AccountsBase,
    check_code,
    check_day,
    check_id,
    check_text,
    report_changes,
    today,
    utc_day,
    visible,
)
from crmcore.storage.filters import among
from crmcore.storage.ids import allocate_ids
from crmcore.storage.tables import contact_is_current, contacts
from crmcore.unit_of_work import UnitOfWork

ORG = CustomerKind.ORGANIZATION
PERSON = CustomerKind.PERSON


def contact_from_row(row: Row[Any]) -> Contact:
    """The Contact of a ``crm_contacts`` row."""
    return Contact(
        id=row.id,
        person_id=row.person_id,
        organisation_id=row.organisation_id,
        job_title=row.job_title,
        department=row.department,
        role=row.role,
        primary=bool(row.is_primary),
        start_date=row.start_date,
        end_date=row.end_date,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def contact_change(action: str, contact: Contact, changed: Sequence[str] = ()) -> dict[str, Any]:
    """The ``crm_relationships_changed`` mapping of a contact (see the package docstring)."""
    change: dict[str, Any] = {
        "kind": "contact",
        "action": action,
        "contact_id": contact.id,
        "person_id": contact.person_id,
        "organisation_id": contact.organisation_id,
        "role": contact.role,
        "primary": contact.primary,
    }
    if action == "updated":
        change["changed"] = list(changed)
    return change


def clear_primary(connection: Connection, organisation_id: int, keep: int | None) -> list[Contact]:
    """Take the primary flag from the organisation's contacts (but ``keep``); return them."""
    query = select(contacts).where(
        contacts.c.organisation_id == organisation_id, contacts.c.is_primary.is_(True)
    )
    if keep is not None:
        query = query.where(contacts.c.id != keep)
    cleared = [contact_from_row(r) for r in connection.execute(query)]
    if cleared:
        connection.execute(
            update(contacts)
            .where(contacts.c.id.in_([c.id for c in cleared]))
            .values(is_primary=False)
        )
    return cleared


def contact_problems(connection: Connection, items: Sequence[Interaction]) -> dict[int, str]:
    """Why each interaction naming a ``contact_id`` may not name it, by position in ``items``.

    The contact must be a contact of the interaction's customer (an
    organisation) on the UTC day of ``occurred_at``. One query for the batch.
    """
    named = [(i, x) for i, x in enumerate(items) if x.contact_id is not None]
    if not named:
        return {}
    organisations = sorted({x.customer_id for _, x in named})
    persons = sorted({x.contact_id for _, x in named if x.contact_id is not None})
    query = select(
        contacts.c.organisation_id, contacts.c.person_id, contacts.c.start_date, contacts.c.end_date
    ).where(
        among(connection, contacts.c.organisation_id, organisations),
        among(connection, contacts.c.person_id, persons),
    )
    spans = {(org, person): (start, end) for org, person, start, end in connection.execute(query)}
    problems: dict[int, str] = {}
    for index, item in named:
        span = spans.get((item.customer_id, item.contact_id))
        day = utc_day(item.occurred_at)
        if span is None:
            problems[index] = (
                f"contact_id: customer {item.contact_id} is not a contact of "
                f"customer {item.customer_id}"
            )
        elif not is_current(*span, day):
            problems[index] = (
                f"contact_id: customer {item.contact_id} was not a current contact of "
                f"customer {item.customer_id} on {day.isoformat()}"
            )
    return problems


class ContactsPart(AccountsBase):
    """Contacts of organisations (part of ``crm.accounts``)."""

    def _values(self, fields: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(CONTACT_FIELDS))
        if unknown:
            raise ValidationError(
                f"{unknown[0]}: unknown contact field; known: {', '.join(CONTACT_FIELDS)}",
                field=unknown[0],
            )
        values: dict[str, Any] = {}
        for name in ("job_title", "department"):
            if name in fields:
                values[name] = check_text(fields[name], name)
        if "role" in fields:
            role = fields["role"]
            values["role"] = (
                None
                if role is None
                else check_code(role, "role", self.settings.contact_roles, "contact_roles")
            )
        if "primary" in fields:
            if not isinstance(fields["primary"], bool):
                raise ValidationError(
                    f"primary: expected true or false, got {fields['primary']!r}", field="primary"
                )
            values["primary"] = fields["primary"]
        for name in ("start_date", "end_date"):
            if name in fields:
                values[name] = check_day(fields[name], name)
        if not partial:
            values = {**dict.fromkeys(CONTACT_FIELDS), "primary": False, **values}
        return values

    def _checked(self, contact: Contact, day: date) -> None:
        start, end = contact.start_date, contact.end_date
        if start is not None and end is not None and end < start:
            raise ValidationError(
                f"end_date: {end.isoformat()} is before start_date {start.isoformat()}",
                field="end_date",
            )
        if contact.primary and not contact.current_on(day):
            raise ValidationError(
                "primary: only a current contact can be the primary contact "
                f"(this one is current from {start} until {end}, today is {day.isoformat()})",
                field="primary",
            )

    def _row(self, uow: UnitOfWork, organisation_id: int, person_id: Any) -> Contact:
        person_id = check_id(person_id, "person_id")
        row = uow.connection.execute(
            select(contacts).where(
                contacts.c.organisation_id == organisation_id, contacts.c.person_id == person_id
            )
        ).first()
        if row is None:
            raise NotFoundError(
                f"customer {person_id} is not a contact of organisation {organisation_id}"
            )
        return contact_from_row(row)

    def add_contact(
        self,
        organisation_id: int,
        person_id: int,
        *,
        job_title: str | None = None,
        department: str | None = None,
        role: str | None = None,
        primary: bool = False,
        start_date: date | str | None = None,
        end_date: date | str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Contact:
        """Make person ``person_id`` a contact of organisation ``organisation_id``.

        ``role`` is one of ``[accounts] contact_roles``. ``primary=True`` makes
        them the organisation's primary contact (the previous one loses the
        flag: reported as an update); only a current contact can be primary.
        The acting user must write both customers. ConflictError when the
        person already is a contact of the organisation (update it instead).
        """
        fields = {
            "job_title": job_title,
            "department": department,
            "role": role,
            "primary": primary,
            "start_date": start_date,
            "end_date": end_date,
        }
        values = self._values(fields, partial=False)
        with self._crm.unit_of_work(actor, ctx) as uow:
            org = self._load(uow, organisation_id, Action.WRITE, "organisation_id", ORG, lock=True)
            person = self._load(uow, person_id, Action.WRITE, "person_id", PERSON)
            assert org.id is not None and person.id is not None
            contact = Contact(
                person_id=person.id,
                organisation_id=org.id,
                created_at=uow.now,
                updated_at=uow.now,
                **values,
            )
            self._checked(contact, today(uow))
            exists = uow.connection.execute(
                select(contacts.c.id).where(
                    contacts.c.organisation_id == org.id, contacts.c.person_id == person.id
                )
            ).first()
            if exists is not None:
                raise ConflictError(
                    f"customer {person.id} already is a contact of organisation {org.id} "
                    "(update the contact instead)"
                )
            changes = []
            if contact.primary:
                cleared = clear_primary(uow.connection, org.id, None)
                changes += [contact_change("updated", _unflagged(c), ["primary"]) for c in cleared]
            [new_id] = allocate_ids(uow.connection, contacts, 1)
            contact = _with(contact, id=new_id)
            uow.connection.execute(insert(contacts), [_to_row(contact)])
            changes.append(contact_change("added", contact))
            report_changes(uow, changes)
        return contact

    def update_contact(
        self,
        organisation_id: int,
        person_id: int,
        changes: Mapping[str, Any],
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Contact:
        """Change some of a contact's fields (:data:`~crmcore.model.accounts.CONTACT_FIELDS`).

        Setting ``primary`` takes the flag from the previous primary contact;
        dates that end the contact today or earlier take it from this one.
        The acting user must write the organisation. NotFoundError when the
        person is no contact of it.
        """
        if not isinstance(changes, Mapping):
            raise ValidationError(
                f"changes: expected a mapping of field to value, got {type(changes).__name__}"
            )
        values = self._values(changes, partial=True)
        with self._crm.unit_of_work(actor, ctx) as uow:
            org = self._load(uow, organisation_id, Action.WRITE, "organisation_id", ORG, lock=True)
            assert org.id is not None
            before = self._row(uow, org.id, person_id)
            after = _with(before, **values)
            day = today(uow)
            if after.primary and not after.current_on(day) and "primary" not in values:
                after = _with(after, primary=False)  # ended: no longer the primary contact
            self._checked(after, day)
            changed = [n for n in CONTACT_FIELDS if getattr(after, n) != getattr(before, n)]
            if not changed:
                return before
            after = _with(after, updated_at=uow.now)
            reported = []
            if after.primary and not before.primary:
                cleared = clear_primary(uow.connection, org.id, after.id)
                reported += [contact_change("updated", _unflagged(c), ["primary"]) for c in cleared]
            row = _to_row(after)
            del row["id"], row["created_at"]
            uow.connection.execute(update(contacts).where(contacts.c.id == after.id).values(row))
            reported.append(contact_change("updated", after, changed))
            report_changes(uow, reported)
        return after

    def end_contact(
        self,
        organisation_id: int,
        person_id: int,
        *,
        on: date | str | None = None,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Contact:
        """End a contact: ``end_date`` becomes ``on`` (default today, UTC).

        The contact stays in the history (``contacts(..., include_ended=True)``);
        from ``on`` it is no longer current, so no longer primary.
        """
        with self._crm.unit_of_work(actor, ctx) as uow:
            day = today(uow) if on is None else on
            return self.update_contact(
                organisation_id, person_id, {"end_date": day}, actor=actor, ctx=uow
            )

    def remove_contact(
        self,
        organisation_id: int,
        person_id: int,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> Contact:
        """Delete a contact (no history kept: :meth:`end_contact` keeps it); return it."""
        with self._crm.unit_of_work(actor, ctx) as uow:
            org = self._load(uow, organisation_id, Action.WRITE, "organisation_id", ORG, lock=True)
            assert org.id is not None
            contact = self._row(uow, org.id, person_id)
            uow.connection.execute(delete(contacts).where(contacts.c.id == contact.id))
            report_changes(uow, [contact_change("removed", contact)])
        return contact

    def contacts(
        self, organisation_id: int, *, include_ended: bool = False, ctx: UnitOfWork | None = None
    ) -> list[Contact]:
        """The organisation's current contacts (all with ``include_ended``), primary first.

        Only persons the acting user may read are listed.
        """
        with self._crm.reading(ctx) as uow:
            org = self._load(uow, organisation_id, Action.READ, "organisation_id", ORG)
            assert org.id is not None
            return self._contacts_of(uow, org.id, self._seen(uow), include_ended)

    def _contacts_of(
        self,
        uow: UnitOfWork,
        organisation_id: int,
        seen: ColumnElement[bool] | None,
        include_ended: bool = False,
    ) -> list[Contact]:
        query = select(contacts).where(
            contacts.c.organisation_id == organisation_id, visible(contacts.c.person_id, seen)
        )
        if not include_ended:
            query = query.where(contact_is_current(today(uow)))
        primary_first = case((contacts.c.is_primary.is_(True), 0), else_=1)
        rows = uow.connection.execute(query.order_by(primary_first, contacts.c.id)).all()
        return [contact_from_row(r) for r in rows]

    def organisations(
        self, person_id: int, *, include_ended: bool = False, ctx: UnitOfWork | None = None
    ) -> list[Contact]:
        """The organisations a person currently is a contact of (all with ``include_ended``).

        Only organisations the acting user may read are listed.
        """
        with self._crm.reading(ctx) as uow:
            person = self._load(uow, person_id, Action.READ, "person_id", PERSON)
            query = select(contacts).where(
                contacts.c.person_id == person.id,
                visible(contacts.c.organisation_id, self._seen(uow)),
            )
            if not include_ended:
                query = query.where(contact_is_current(today(uow)))
            rows = uow.connection.execute(query.order_by(contacts.c.id)).all()
        return [contact_from_row(r) for r in rows]


def _with(contact: Contact, **changes: Any) -> Contact:
    return attrs.evolve(contact, **changes)


def _unflagged(contact: Contact) -> Contact:
    return _with(contact, primary=False)


def _to_row(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "person_id": contact.person_id,
        "organisation_id": contact.organisation_id,
        "job_title": contact.job_title,
        "department": contact.department,
        "role": contact.role,
        "is_primary": contact.primary,
        "start_date": contact.start_date,
        "end_date": contact.end_date,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


__all__ = [
    "ContactsPart",
    "clear_primary",
    "contact_change",
    "contact_from_row",
    "contact_problems",
]
