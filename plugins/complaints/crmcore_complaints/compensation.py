"""Compensation granted on resolution: parsing it and issuing it (refunds, points, vouchers).

Points go through the loyalty plugin's hook, which checks WRITE on the
customer again and audits them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import insert, select

from crmcore import UnitOfWork
from crmcore.audit import acting_user
from crmcore.storage.ids import allocate_ids
from crmcore.storage.types import money_problem
from crmcore_complaints.entities import Complaint
from crmcore_complaints.store import (
    COMPENSATION_KINDS,
    ComplaintStore,
    bad,
    id_field,
    text_field,
)

_CURRENCY = re.compile(r"^[A-Z]{3}$")


__all__ = ["ComplaintCompensation"]


class ComplaintCompensation(ComplaintStore):
    """Compensation methods of :class:`~crmcore_complaints.service.ComplaintService`."""

    # --- compensation ------------------------------------------------------------

    def _parse_compensation(
        self, uow: UnitOfWork, complaint: Complaint, item: Mapping[str, Any], index: int
    ) -> dict[str, Any]:
        where = f"compensations.{index}"
        if not isinstance(item, Mapping):
            raise bad(where, f"expected a mapping, got {type(item).__name__}")
        kind = item.get("kind")
        if kind not in COMPENSATION_KINDS:
            raise bad(
                f"{where}.kind", f"{kind!r} is not one of: {', '.join(COMPENSATION_KINDS)}", kind
            )
        points = item.get("points")
        if points is not None and (
            isinstance(points, bool) or not isinstance(points, int) or points <= 0
        ):
            raise bad(f"{where}.points", f"must be a positive integer, got {points!r}", points)
        if kind == "points" and points is None:
            raise bad(f"{where}.points", "required for a points compensation")
        amount = item.get("amount")
        if amount is not None:
            if isinstance(amount, float | bool):
                raise bad(f"{where}.amount", f"expected a Decimal or string, got {amount!r}")
            try:
                amount = Decimal(str(amount))
            except InvalidOperation:
                raise bad(f"{where}.amount", f"not a decimal number: {amount!r}") from None
            problem = money_problem(amount)
            if problem is None and amount <= 0:
                problem = f"must be positive, got {amount}"
            if problem:
                raise bad(f"{where}.amount", problem, amount)
        currency = item.get("currency")
        if amount is not None and currency is None:
            raise bad(f"{where}.currency", "required when an amount is given")
        if currency is not None and (
            not isinstance(currency, str) or not _CURRENCY.match(currency)
        ):
            raise bad(f"{where}.currency", f"must be a 3-letter ISO 4217 code, got {currency!r}")
        if kind in {"refund", "voucher"} and amount is None:
            raise bad(f"{where}.amount", f"required for a {kind} compensation")
        reason = text_field(item, "reason", 2000) or f"complaint {complaint.id}"
        refund_of = item.get("refund_of")
        if refund_of is not None:
            if kind != "refund":
                raise bad(f"{where}.refund_of", "only a refund refers to a purchase")
            refund_of = id_field(refund_of, f"{where}.refund_of")
            interactions = self._crm.metadata.tables["crm_interactions"]
            purchase = uow.connection.execute(
                select(interactions.c.customer_id, interactions.c.kind).where(
                    interactions.c.id == refund_of
                )
            ).first()
            if (
                purchase is None
                or purchase.customer_id != complaint.customer_id
                or purchase.kind != "purchase"
            ):
                raise bad(
                    f"{where}.refund_of",
                    f"interaction {refund_of} is not a purchase of customer "
                    f"{complaint.customer_id}",
                    refund_of,
                )
        unknown = sorted(
            set(item) - {"kind", "points", "amount", "currency", "reason", "refund_of"}
        )
        if unknown:
            raise bad(f"{where}.{unknown[0]}", "unknown field")
        return {
            "kind": kind,
            "points": points,
            "amount": amount,
            "currency": currency,
            "reason": reason,
            "refund_of": refund_of,
        }

    def _issue(
        self, uow: UnitOfWork, complaint: Complaint, grants: Sequence[dict[str, Any]]
    ) -> None:
        assert complaint.customer_id is not None and complaint.resolved_at is not None
        ids = allocate_ids(uow.connection, self.compensations_table, len(grants))
        refunds = [g for g in grants if g["refund_of"] is not None]
        recorded = self._crm.interactions.record_many(
            (
                {
                    "customer_id": complaint.customer_id,
                    "kind": "refund",
                    "channel": complaint.channel,
                    "direction": "outbound",
                    "occurred_at": complaint.resolved_at,
                    "amount": g["amount"],
                    "currency": g["currency"],
                    "payload": {"refund_of": g["refund_of"], "complaint_id": complaint.id},
                }
                for g in refunds
            ),
            ctx=uow,
        )
        refund_ids = iter(i.id for i in recorded)
        rows = []
        for new_id, grant in zip(ids, grants, strict=True):
            rows.append(
                {
                    "id": new_id,
                    "complaint_id": complaint.id,
                    "customer_id": complaint.customer_id,
                    "kind": grant["kind"],
                    "points": grant["points"],
                    "amount": grant["amount"],
                    "currency": grant["currency"],
                    "reason": grant["reason"],
                    "idempotency_key": f"complaints:compensation:{new_id}",
                    "refund_interaction_id": (
                        next(refund_ids) if grant["refund_of"] is not None else None
                    ),
                    "issued_at": complaint.resolved_at,
                    "actor": acting_user(uow),
                }
            )
        uow.connection.execute(insert(self.compensations_table), rows)
        payload = [
            {
                key: row[key]
                for key in (
                    "complaint_id",
                    "customer_id",
                    "kind",
                    "points",
                    "amount",
                    "currency",
                    "reason",
                    "idempotency_key",
                )
            }
            for row in rows
        ]
        self._crm.call_hook("complaints_compensation_issued", ctx=uow, compensations=payload)
