"""Customers whose sealed fields cannot be opened: skipped with a warning, or an error.

A row sealed with a key that is not configured (or whose sealed value fails
authentication) must not stop a listing, an iteration or an export at that
row. What happens is chosen by ``[security] unreadable`` (or the
``unreadable=`` argument of the listing): ``"skip"`` (the default) leaves the
customer out, logs a warning on the ``crmcore.security.encryption`` logger and counts
it in :class:`UnreadableRows` (``crm.customers.unreadable``, which the CLI
reports after the command); ``"fail"`` raises the
:class:`~crmcore.security.encryption.UnreadableError` naming the customer.
"""

from __future__ import annotations

import logging

import attrs

from crmcore.errors import ValidationError
from crmcore.security.encryption import UnreadableError

#: The accepted values of ``[security] unreadable`` and of ``unreadable=``.
UNREADABLE_POLICIES = ("skip", "fail")
_KEPT_IDS = 100

logger = logging.getLogger("crmcore.security.encryption")


def check_policy(policy: str) -> str:
    """``policy`` when it is one of :data:`UNREADABLE_POLICIES`; ValidationError otherwise."""
    if policy not in UNREADABLE_POLICIES:
        raise ValidationError(
            f"unreadable: {policy!r} is not one of: {', '.join(UNREADABLE_POLICIES)}",
            field="unreadable",
            value=policy,
        )
    return policy


@attrs.define
class UnreadableRows:
    """The customers skipped so far because their sealed fields could not be opened.

    ``count`` counts every skip (a customer met twice counts twice), ``ids``
    holds the first 100 distinct ids, ``last_error`` the latest reason.
    """

    count: int = 0
    ids: list[int] = attrs.field(factory=list)
    last_error: str | None = None

    def handle(self, error: UnreadableError, policy: str) -> None:
        """Raise ``error`` under the ``"fail"`` policy; else log it and count the skip."""
        if policy == "fail":
            raise error
        logger.warning("skipped %s", error)
        self.count += 1
        self.last_error = str(error)
        if error.customer_id not in self.ids and len(self.ids) < _KEPT_IDS:
            self.ids.append(error.customer_id)

    def reset(self) -> None:
        """Forget what was counted (e.g. before a new command)."""
        self.count = 0
        self.ids.clear()
        self.last_error = None

    def summary(self) -> str | None:
        """One line for the operator, or ``None`` when nothing was skipped."""
        if not self.count:
            return None
        shown = ", ".join(map(str, self.ids[:10])) + (", ..." if len(self.ids) > 10 else "")
        return (
            f"{self.count} customer row(s) skipped because their sealed fields cannot be "
            f"opened (customers {shown}; last: {self.last_error}); "
            '[security] unreadable = "fail" makes this an error'
        )


__all__ = ["UNREADABLE_POLICIES", "UnreadableRows", "check_policy"]
