"""Probable duplicates: customers the unique identity keys do not catch, scored with reasons.

``crm.customers.duplicates(min_score=0.85, limit=100)`` reads the customers
the acting user may see (in id batches, sealed fields opened when
encryption is on), builds one :class:`~.matching.MatchRecord` each and
scores the pairs their blocks propose (:mod:`.matching`; never all pairs).
Pairs recorded in ``crm_identity_collisions`` (customers whose keys collided
when the keys were re-normalised, crmcore_0010) come first with score 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import attrs
from sqlalchemy import ColumnElement, Row, select, true

from crmcore.access import Action
from crmcore.audit import AuditEntry
from crmcore.dry_run import rolled_back
from crmcore.errors import ValidationError
from crmcore.model.entities import CustomerKind
from crmcore.model.identity import normalise_org_name, normalise_phone
from crmcore.security.encryption import UnreadableError, is_blind_index
from crmcore.services.customers.base import CustomerServiceBase
from crmcore.services.customers.matching import (
    MatchRecord,
    canonical_email,
    city_of,
    scored_pairs,
)
from crmcore.storage.rekey import RekeyReport, rekey_identity
from crmcore.storage.tables import customers, identity_collisions
from crmcore.unit_of_work import UnitOfWork

#: Most pairs one call returns.
MAX_LIMIT = 1_000_000
_BATCH = 5000
_COLLISION_REASON = {
    "phone_norm": "same phone key (found when keys were re-normalised)",
    "org_norm": "same organisation key (found when keys were re-normalised)",
    "email_norm": "same email key (found when keys were re-normalised)",
}
_COLUMNS: tuple[ColumnElement[Any], ...] = (
    customers.c.id,
    customers.c.kind,
    customers.c.name,
    customers.c.name_norm,
    customers.c.email,
    customers.c.email_norm,
    customers.c.phone,
    customers.c.phone_norm,
    customers.c.company_name,
    customers.c.org_norm,
    customers.c.address,
    customers.c.sealed,
)


@attrs.frozen
class DuplicatePair:
    """Two customers that are probably one, the score (0-1) and why."""

    #: The two ids, lower first.
    customer_ids: tuple[int, int]
    score: float
    reasons: tuple[str, ...]
    #: Their names, in the order of ``customer_ids``.
    names: tuple[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The pair as JSON-ready data."""
        return {
            "customer_ids": list(self.customer_ids),
            "score": self.score,
            "reasons": list(self.reasons),
            "names": list(self.names),
        }


def _plain(value: str | None) -> str | None:
    return None if value is None or is_blind_index(value) else value


def check_duplicates_input(min_score: object, limit: object) -> tuple[float, int]:
    """``min_score`` and ``limit`` checked; ValidationError naming the field otherwise."""
    if isinstance(min_score, bool) or not isinstance(min_score, int | float):
        raise ValidationError(
            f"min_score: expected a number from 0 to 1, got {min_score!r}", field="min_score"
        )
    if not 0 <= min_score <= 1:
        raise ValidationError(
            f"min_score: must be from 0 to 1, got {min_score!r}", field="min_score"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(
            f"limit: expected an integer from 1 to {MAX_LIMIT}, got {limit!r}", field="limit"
        )
    return float(min_score), limit


class CustomerDuplicates(CustomerServiceBase):
    """Probable duplicates (part of ``CustomerService``)."""

    def duplicates(
        self,
        *,
        min_score: float = 0.85,
        limit: int = 100,
        ctx: UnitOfWork | None = None,
    ) -> list[DuplicatePair]:
        """Pairs of customers that are probably one person or organisation, best first.

        Only pairs whose two customers the acting user may read are
        considered (an agent sees pairs among their own and granted
        customers). ``min_score`` (0-1, default 0.85) is the least score
        listed; ``limit`` (1 to 1,000,000) the most pairs returned. The score and
        the blocking keys are described in ``docs/data-quality.md``.
        Customers whose sealed fields cannot be opened are left out.
        """
        min_score, limit = check_duplicates_input(min_score, limit)
        seen = self._crm.access.visibility()
        with self._crm.reading(ctx) as uow:
            records = self._match_records(uow, seen.condition)
            names = {r.id: r.name for r in records}
            collided = self._collisions(uow, names)
            scored = scored_pairs(records, min_score)
            found: dict[tuple[int, int], DuplicatePair] = {}
            raw_names = self._names(uow, {i for pair, _ in collided for i in pair})
            for pair, reason in collided:
                found.setdefault(pair, self._pair(pair, 1.0, (reason,), raw_names))
            wanted = [item for item in scored if item[1] not in found][: limit + len(found)]
            raw_names.update(self._names(uow, {i for _, pair, _ in wanted for i in pair}))
            for score, pair, reasons in wanted:
                found[pair] = self._pair(pair, score, reasons, raw_names)
            result = list(found.values())
            if seen.per_row:  # a crm_authorize policy without a SQL answer: ask per customer
                ids = {i for p in result for i in p.customer_ids}
                allowed = {i for i in ids if self._crm.access.may_see(i, ctx=uow)}
                result = [p for p in result if set(p.customer_ids) <= allowed]
        result.sort(key=lambda p: (-p.score, p.customer_ids))
        return result[:limit]

    def rekey(
        self,
        *,
        dry_run: bool = False,
        actor: str | None = None,
        ctx: UnitOfWork | None = None,
    ) -> RekeyReport:
        """Re-normalise the stored phone and organisation keys (administrators only).

        What migration crmcore_0010 did, again, in ``[customers] default_region``
        as configured now: run it after changing the region. Collisions are
        recorded for :meth:`duplicates`, never raised; blind-indexed keys are
        left to ``crm security rotate-key`` (see ``docs/data-quality.md``).
        ``dry_run=True`` reports what it would do and rolls everything back.
        Audited (``customers.rekey``, counts only).
        """
        if not isinstance(dry_run, bool):
            raise ValidationError(
                f"dry_run: expected true or false, got {dry_run!r}", field="dry_run"
            )
        self._crm.access.check(Action.ADMINISTER, ctx=ctx)
        opened: AbstractContextManager[UnitOfWork] = (
            rolled_back(self._crm, actor, ctx) if dry_run else self._crm.unit_of_work(actor, ctx)
        )
        with opened as uow:
            region = self._crm.config.default_region
            report = rekey_identity(uow.connection, region, source="rekey", now=uow.now)
            details = {
                "region": region,
                "rekeyed": dict(report.rekeyed),
                "collisions": len(report.collisions),
            }
            self._crm.audit.record(
                uow, [AuditEntry("customers.rekey", "customer", None, None, details)]
            )
        return report

    @staticmethod
    def _pair(
        pair: tuple[int, int], score: float, reasons: tuple[str, ...], names: Mapping[int, str]
    ) -> DuplicatePair:
        return DuplicatePair(pair, score, reasons, (names[pair[0]], names[pair[1]]))

    def _names(self, uow: UnitOfWork, ids: set[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        ordered = sorted(ids)
        for start in range(0, len(ordered), _BATCH):
            query = select(customers.c.id, customers.c.name).where(
                customers.c.id.in_(ordered[start : start + _BATCH])
            )
            found.update({cid: name for cid, name in uow.connection.execute(query)})
        return found

    def _collisions(
        self, uow: UnitOfWork, visible: Mapping[int, str]
    ) -> list[tuple[tuple[int, int], str]]:
        rows = uow.connection.execute(
            select(
                identity_collisions.c.customer_id,
                identity_collisions.c.holder_id,
                identity_collisions.c.key_column,
            ).order_by(identity_collisions.c.id)
        ).all()
        result = []
        for customer_id, holder_id, column in rows:
            if customer_id in visible and holder_id in visible:
                pair = (min(customer_id, holder_id), max(customer_id, holder_id))
                result.append((pair, _COLLISION_REASON.get(column, "same identity key")))
        return result

    def _match_records(self, uow: UnitOfWork, condition: Any) -> list[MatchRecord]:
        records: list[MatchRecord] = []
        last = 0
        while True:
            rows = uow.connection.execute(
                select(*_COLUMNS)
                .where(customers.c.id > last, true() if condition is None else condition)
                .order_by(customers.c.id)
                .limit(_BATCH)
            ).all()
            if not rows:
                return records
            for row in rows:
                record = self._record(row)
                if record is not None:
                    records.append(record)
            last = rows[-1].id

    def _record(self, row: Row[Any]) -> MatchRecord | None:
        """The comparison keys of one row; None for an erased or unreadable customer."""
        if row.name_norm == f"erased customer {row.id}":
            return None
        values: dict[str, Any] = {
            "email": row.email,
            "phone": row.phone,
            "company_name": row.company_name,
            "address": row.address,
        }
        cipher = self._crm.cipher
        if row.sealed is not None and cipher is not None:
            try:
                opened = cipher.open(row.id, row.sealed)
            except UnreadableError:
                return None
            values.update({k: v for k, v in opened.items() if v is not None})
        organisation = row.kind == CustomerKind.ORGANIZATION.value
        phone = _plain(row.phone_norm)
        if phone is None and values["phone"]:
            try:
                phone = normalise_phone(str(values["phone"]), self._crm.config.default_region)
            except ValueError:
                phone = None
        email = _plain(row.email_norm) or values["email"]
        company = values["company_name"]
        if organisation:
            name = _plain(row.org_norm) or normalise_org_name(company or row.name) or row.name_norm
            company = None
        else:
            name = row.name_norm
            company = normalise_org_name(company) or None if company else None
        return MatchRecord(
            id=row.id,
            organisation=organisation,
            name=name,
            phone=phone,
            email=canonical_email(email) if email else None,
            company=company,
            city=city_of(values["address"]),
        )


__all__ = ["MAX_LIMIT", "CustomerDuplicates", "DuplicatePair", "check_duplicates_input"]
