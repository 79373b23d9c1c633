"""Data portability, the right to erasure, deletion and merges for the plugin's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, and_, cast, delete, exists, literal, select, update

from crmcore import UnitOfWork
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_sales import store
from crmcore_sales.contracts import payment_json
from crmcore_sales.tables import (
    contracts_table,
    deal_contacts_table,
    deals_table,
    instalments_table,
    payments_table,
)

_CHUNK = 400


@requires(Action.EXPORT, customer="customer_id")
def export(ctx: UnitOfWork, customer_id: int) -> dict[str, Any] | None:
    """Everything the plugin holds on the customer: deals with history, contracts, payments.

    Deals where the customer is a contact person are listed by id and role.
    Read through ``ctx.connection`` (the export's snapshot); ``None`` when there is nothing.
    """
    metadata = ctx.crm.metadata
    deals, dc = deals_table(metadata), deal_contacts_table(metadata)
    contracts, instalments = contracts_table(metadata), instalments_table(metadata)
    payments = payments_table(metadata)
    rows = ctx.connection.execute(
        store.deal_query(ctx.crm.metadata, ctx.connection.dialect.name)
        .where(deals.c.customer_id == customer_id)
        .order_by(deals.c.id)
    ).all()
    own = store.deals_from_rows(ctx, rows)
    as_contact = ctx.connection.execute(
        select(dc.c.deal_id, dc.c.role).where(dc.c.contact_id == customer_id).order_by(dc.c.id)
    ).all()
    signed = ctx.connection.execute(
        select(contracts).where(contracts.c.customer_id == customer_id).order_by(contracts.c.id)
    ).all()
    schedule = ctx.connection.execute(
        select(instalments)
        .where(instalments.c.customer_id == customer_id)
        .order_by(instalments.c.contract_id, instalments.c.seq)
    ).all()
    paid = ctx.connection.execute(
        select(payments).where(payments.c.customer_id == customer_id).order_by(payments.c.id)
    ).all()
    if not (own or as_contact or signed):
        return None
    return {
        "deals": [
            {**d.to_json(), "history": [h.to_json() for h in store.history_of(ctx, d.id)]}
            for d in own
        ],
        "contact_in_deals": [{"deal_id": r.deal_id, "role": r.role} for r in as_contact],
        "contracts": [
            {
                "id": c.id,
                "deal_id": c.deal_id,
                "value": str(c.value),
                "currency": c.currency,
                "start_date": c.start_date.isoformat(),
                "end_date": c.end_date.isoformat(),
                "renewal_date": None if c.renewal_date is None else c.renewal_date.isoformat(),
                "payment_terms_days": c.payment_terms_days,
                "instalments": [
                    {"seq": i.seq, "due_date": i.due_date.isoformat(), "amount": str(i.amount)}
                    for i in schedule
                    if i.contract_id == c.id
                ],
            }
            for c in signed
        ],
        "payments": [payment_json(p) for p in paid],
    }


@requires(Action.ERASE, customer="customer_id")
def erase(ctx: UnitOfWork, customer_id: int) -> None:
    """Forget the customer: detach their deals, contracts and payments, strip every free text.

    What stays is anonymous: pipelines, stages, amounts, dates, probabilities,
    reasons and the history of those fields, with ``customer_id`` set to
    ``NULL``, so that forecasts, funnels and revenue keep adding up. Titles
    become ``deal <id>``; notes, next steps, competitors and campaign ids are
    removed; payment references become ``erased-<id>``; the customer is taken
    off every deal they were a contact person in.
    """
    metadata = ctx.crm.metadata
    deals, dc = deals_table(metadata), deal_contacts_table(metadata)
    ctx.connection.execute(delete(dc).where(dc.c.contact_id == customer_id))
    ids = list(
        ctx.connection.execute(
            select(deals.c.id).where(deals.c.customer_id == customer_id)
        ).scalars()
    )
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        ctx.connection.execute(delete(dc).where(dc.c.deal_id.in_(chunk)))
        ctx.connection.execute(
            update(deals)
            .where(deals.c.id.in_(chunk))
            .values(
                customer_id=None,
                title=literal("deal ", String) + cast(deals.c.id, String),
                notes=None,
                next_step=None,
                competitor=None,
                campaign_id=None,
            )
        )
    payments = payments_table(metadata)
    ctx.connection.execute(
        update(payments)
        .where(payments.c.customer_id == customer_id)
        .values(
            customer_id=None, reference=literal("erased-", String) + cast(payments.c.id, String)
        )
    )
    for table in (instalments_table(metadata), contracts_table(metadata)):
        ctx.connection.execute(
            update(table).where(table.c.customer_id == customer_id).values(customer_id=None)
        )


@requires(Action.DELETE, customer="customer_ids")
def forget(ctx: UnitOfWork, customer_ids: Sequence[int]) -> None:
    """Delete the deals and contracts of customers about to be deleted (children cascade)."""
    metadata = ctx.crm.metadata
    wanted = sorted(set(customer_ids))
    dc = deal_contacts_table(metadata)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        ctx.connection.execute(delete(dc).where(dc.c.contact_id.in_(chunk)))
        for table in (
            payments_table(metadata),
            instalments_table(metadata),
            contracts_table(metadata),
            deals_table(metadata),
        ):
            ctx.connection.execute(delete(table).where(table.c.customer_id.in_(chunk)))


@requires(Action.WRITE, customer=lambda crm, ctx, a: [a["keep_id"], a["duplicate_id"]])
def merge_rows(ctx: UnitOfWork, keep_id: int, duplicate_id: int) -> None:
    """Move the duplicate's deals, contracts, instalments and payments to ``keep_id``.

    A deal keeps its id, stage, history and contract; where the duplicate was
    a contact person of a deal, the kept customer takes that place (once: a
    deal already listing the kept customer drops the duplicate's row).
    """
    metadata = ctx.crm.metadata
    for table in (
        deals_table(metadata),
        contracts_table(metadata),
        instalments_table(metadata),
        payments_table(metadata),
    ):
        ctx.connection.execute(
            update(table).where(table.c.customer_id == duplicate_id).values(customer_id=keep_id)
        )
    dc = deal_contacts_table(metadata)
    kept = dc.alias("kept")
    ctx.connection.execute(
        delete(dc).where(
            dc.c.contact_id == duplicate_id,
            exists().where(and_(kept.c.deal_id == dc.c.deal_id, kept.c.contact_id == keep_id)),
        )
    )
    ctx.connection.execute(
        update(dc).where(dc.c.contact_id == duplicate_id).values(contact_id=keep_id)
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
