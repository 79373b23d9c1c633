"""The accounts service: the Python API behind ``crm accounts``, one class built of its parts."""

from __future__ import annotations

from crmcore.services.accounts.links import LinksPart
from crmcore.services.accounts.view import ViewPart


class AccountService(ViewPart, LinksPart):
    """Accounts: contacts, hierarchy, links, team, relationship scores and the account view.

    Get it as ``crm.accounts``. Every method checks the acting principal
    (``crm.as_user(...)``) through :mod:`crmcore.access`; ``ctx=`` joins a
    caller's unit of work. The parts live in :mod:`.contacts`,
    :mod:`.hierarchy`, :mod:`.links`, :mod:`.team`, :mod:`.scores` and
    :mod:`.view`; the shared helpers in :mod:`.common`.
    """


__all__ = ["AccountService"]
