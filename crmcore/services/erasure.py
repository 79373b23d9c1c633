"""What core removes when a customer is erased, and the purge of old row versions afterwards.

:meth:`crmcore.services.customers.CustomerService.erase` runs the plugins'
``crm_erase_customer`` hooks, then :func:`anonymise`, then redacts the audit
log (:meth:`crmcore.audit.AuditLog.redact_customer`), in one transaction;
after it commits, :func:`purge_after_erasure` removes the old row versions
from the database files.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, delete, update

from crmcore.errors import ValidationError
from crmcore.services.accounts import erase_account_rows
from crmcore.storage.engine import VACUUM_MODES, purge_old_versions
from crmcore.storage.tables import (
    customer_external_ids,
    customer_tags,
    customers,
    interactions,
    lifecycle_events,
)
from crmcore.unit_of_work import UnitOfWork

_log = logging.getLogger("crmcore.services.erasure")

#: Lifecycle reasons core writes itself; they carry no personal data and survive erasure.
AUTOMATIC_REASONS = ("first purchase", "won back: purchase after churn")


def check_vacuum_mode(vacuum: object) -> None:
    """ValidationError unless ``vacuum`` is one of :data:`~crmcore.storage.engine.VACUUM_MODES`."""
    if vacuum not in VACUUM_MODES:
        raise ValidationError(
            f"vacuum: {vacuum!r} is not one of: {', '.join(VACUUM_MODES)}",
            field="vacuum",
            value=vacuum,
        )


def anonymise(uow: UnitOfWork, customer_id: int) -> None:
    """Remove the customer's personal data from core's tables, inside ``uow``.

    The customer row keeps its id, kind, stage, source channel, consent
    flags, timestamps and organisation size fields; the name becomes
    ``erased customer <id>``; contact points, person fields, company name,
    owner, attributes and sealed fields are emptied; tags are deleted;
    interactions keep kind, channel, time, amount, currency and their
    external id (an order number or content hash, which lets a re-run import
    recognise them) but lose text, payload, items and handler; lifecycle
    events keep their stages and times, and their free-text reasons are
    removed except :data:`AUTOMATIC_REASONS`; every accounts row involving
    the customer goes (:func:`~crmcore.services.accounts.erase_account_rows`:
    a person's contact rows, links and scores, an organisation's contacts,
    hierarchy, links, team and scores; the other customers stay); its
    external ids go (they link the person to other systems, and a later
    import must not match the erased customer by them).
    """
    connection = uow.connection
    erase_account_rows(uow, customer_id)
    connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(
            name=f"erased customer {customer_id}",
            name_norm=f"erased customer {customer_id}",
            email=None,
            email_norm=None,
            phone=None,
            phone_norm=None,
            address=None,
            gender=None,
            birth_date=None,
            company_name=None,
            org_norm=None,
            owner=None,
            attributes={},
            sealed=None,
            updated_at=uow.now,
        )
    )
    connection.execute(delete(customer_tags).where(customer_tags.c.customer_id == customer_id))
    connection.execute(
        delete(customer_external_ids).where(customer_external_ids.c.customer_id == customer_id)
    )
    connection.execute(
        update(interactions)
        .where(interactions.c.customer_id == customer_id)
        .values(text=None, payload={}, items=[], handled_by=None)
    )
    connection.execute(
        update(lifecycle_events)
        .where(
            lifecycle_events.c.customer_id == customer_id,
            lifecycle_events.c.reason.is_not(None),
            lifecycle_events.c.reason.not_in(AUTOMATIC_REASONS),
        )
        .values(reason=None)
    )


def purge_after_erasure(engine: Engine, customer_id: int, vacuum: str) -> None:
    """Purge old row versions after an erasure committed (``vacuum``: auto, full or none)."""
    if vacuum == "none":
        return
    if not purge_old_versions(engine, full=vacuum == "full"):
        _log.warning(
            "customer %s erased; an older transaction was still running, so some old row "
            "versions stay in the database files until the next vacuum",
            customer_id,
        )
