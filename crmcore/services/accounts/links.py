"""Typed links between customers: ``A referred_by B``, ``A partner_of B`` ... (configurable)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select

from crmcore.access import Action
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.model.accounts import CustomerLink
from crmcore.services.accounts.common import AccountsBase, check_code, report_changes, visible
from crmcore.storage.ids import allocate_ids
from crmcore.storage.tables import customer_links
from crmcore.unit_of_work import UnitOfWork


def link_from_row(row: Row[Any]) -> CustomerLink:
    """The CustomerLink of a ``crm_customer_links`` row."""
    return CustomerLink(
        id=row.id, from_id=row.from_id, to_id=row.to_id, type=row.type, created_at=row.created_at
    )


def link_change(action: str, link: CustomerLink) -> dict[str, Any]:
    """The ``crm_relationships_changed`` mapping of a link."""
    return {
        "kind": "link",
        "action": action,
        "link_id": link.id,
        "from_id": link.from_id,
        "to_id": link.to_id,
        "type": link.type,
    }


class LinksPart(AccountsBase):
    """Typed links (part of ``crm.accounts``)."""

    def _ends(self, uow: UnitOfWork, from_id: Any, to_id: Any, type: Any) -> tuple[int, int, str]:
        link_type = check_code(type, "type", self.settings.link_types, "link_types")
        source = self._load(uow, from_id, Action.WRITE, "from_id")
        target = self._load(uow, to_id, Action.READ, "to_id")
        assert source.id is not None and target.id is not None
        if source.id == target.id:
            raise ValidationError(
                f"to_id: customer {source.id} cannot be linked to itself", field="to_id"
            )
        return source.id, target.id, link_type

    def link(
        self,
        from_id: int,
        to_id: int,
        type: str,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> CustomerLink:
        """Link two customers: ``from_id`` is ``type`` of ``to_id`` (``5 referred_by 9``).

        ``type`` is one of ``[accounts] link_types``. The acting user must
        write ``from_id`` and read ``to_id``. ConflictError when the same link
        exists already; a customer cannot be linked to itself.
        """
        with self._crm.unit_of_work(actor, ctx) as uow:
            source, target, link_type = self._ends(uow, from_id, to_id, type)
            existing = uow.connection.execute(
                select(customer_links.c.id).where(
                    customer_links.c.from_id == source,
                    customer_links.c.to_id == target,
                    customer_links.c.type == link_type,
                )
            ).first()
            if existing is not None:
                raise ConflictError(f"customer {source} already is {link_type} customer {target}")
            [new_id] = allocate_ids(uow.connection, customer_links, 1)
            link = CustomerLink(source, target, link_type, id=new_id, created_at=uow.now)
            uow.connection.execute(
                insert(customer_links),
                [
                    {
                        "id": new_id,
                        "from_id": source,
                        "to_id": target,
                        "type": link_type,
                        "created_at": uow.now,
                    }
                ],
            )
            report_changes(uow, [link_change("added", link)])
        return link

    def unlink(
        self,
        from_id: int,
        to_id: int,
        type: str,
        *,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> CustomerLink:
        """Remove the link ``from_id -type-> to_id``; return it. NotFoundError when there is none.

        The acting user must write ``from_id`` and read ``to_id``, as for :meth:`link`.
        """
        with self._crm.unit_of_work(actor, ctx) as uow:
            source, target, link_type = self._ends(uow, from_id, to_id, type)
            row = uow.connection.execute(
                select(customer_links).where(
                    customer_links.c.from_id == source,
                    customer_links.c.to_id == target,
                    customer_links.c.type == link_type,
                )
            ).first()
            if row is None:
                raise NotFoundError(f"customer {source} is not {link_type} customer {target}")
            link = link_from_row(row)
            uow.connection.execute(delete(customer_links).where(customer_links.c.id == link.id))
            report_changes(uow, [link_change("removed", link)])
        return link

    def links(
        self, customer_id: int, *, type: str | None = None, ctx: UnitOfWork | None = None
    ) -> list[CustomerLink]:
        """Every link from or to a customer (of ``type``, when given), oldest first.

        Links whose other end the acting user may not read are left out.
        """
        with self._crm.reading(ctx) as uow:
            customer = self._load(uow, customer_id, Action.READ, "customer_id")
            seen = self._seen(uow)
            query = select(customer_links).where(
                or_(
                    and_(
                        customer_links.c.from_id == customer.id,
                        visible(customer_links.c.to_id, seen),
                    ),
                    and_(
                        customer_links.c.to_id == customer.id,
                        visible(customer_links.c.from_id, seen),
                    ),
                )
            )
            if type is not None:
                link_type = check_code(type, "type", self.settings.link_types, "link_types")
                query = query.where(customer_links.c.type == link_type)
            rows = uow.connection.execute(query.order_by(customer_links.c.id)).all()
        return [link_from_row(r) for r in rows]


__all__ = ["LinksPart", "link_change", "link_from_row"]
