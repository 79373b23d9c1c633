"""The loyalty programme's Python API: the ledger (earn, redeem, adjust), tiers, expiry.

Every write runs in one unit of work (``crm.unit_of_work(actor, ctx)``;
pass ``ctx=`` to join an open one): the ledger entry, the lots it consumes
and any hook it fires commit together or not at all. Bad input raises
``ValidationError`` naming the field, unknown members ``NotFoundError``,
reused idempotency keys naming another operation ``ConflictError``.

Access: each function declares what it needs with
:func:`crmcore.scoping.requires` (WRITE on the customer for ledger
operations; WRITE on everything for programme-wide runs such as
:func:`expire`); the entries are audited through core by
:func:`crmcore_loyalty.ledger.append`. The functions live by concern and are
re-exported here: the ledger operations and expiry in :mod:`crmcore_loyalty.points`,
tiers in :mod:`crmcore_loyalty.tiers`, :func:`backfill` in
:mod:`crmcore_loyalty.earning`, enrolment in :mod:`crmcore_loyalty.membership`,
reading in :mod:`crmcore_loyalty.statements`, privacy in :mod:`crmcore_loyalty.privacy`.

Times: ``at`` is when an entry takes effect (default: the clock's now);
``as_of`` accepts an aware datetime, or a date meaning the *end* of that day
in UTC.
"""

from __future__ import annotations

from crmcore.scoping import enforce_declared
from crmcore_loyalty.checks import MAX_POINTS, resolve_as_of
from crmcore_loyalty.earning import backfill
from crmcore_loyalty.membership import LEFT, enroll, enroll_many, get_member, leave
from crmcore_loyalty.points import adjust, credit_compensations, earn, expire, redeem
from crmcore_loyalty.privacy import erase, export, forget
from crmcore_loyalty.programme import PLUGIN_NAME
from crmcore_loyalty.statements import balance, history, profile_section, tier_history
from crmcore_loyalty.tiers import evaluate_tiers, qualifying_values

__all__ = [
    "LEFT",
    "MAX_POINTS",
    "PLUGIN_NAME",
    "adjust",
    "backfill",
    "balance",
    "credit_compensations",
    "earn",
    "enroll",
    "enroll_many",
    "erase",
    "evaluate_tiers",
    "expire",
    "export",
    "forget",
    "get_member",
    "history",
    "leave",
    "profile_section",
    "qualifying_values",
    "redeem",
    "resolve_as_of",
    "tier_history",
]


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
