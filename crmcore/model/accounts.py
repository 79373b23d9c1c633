"""Accounts: contacts of organisations, typed links, account teams and relationship scores.

The entities :mod:`crmcore.services.accounts` stores and returns, and
:class:`AccountSettings`, the ``[accounts]`` section of ``crm.toml``. All are
immutable attrs classes; :func:`crmcore.model.serialization.to_dict` turns
them into JSON-safe dicts.

Days (``start_date``, ``end_date``) are calendar days in UTC. A contact is
*current* on day ``d`` when ``start_date <= d`` (or no start date) and
``d < end_date`` (or no end date): the end date is the first day the person
no longer holds the role, so a contact ended today is no longer current.

Relationship scores are on a 0-100 scale (see :data:`SCORE_MIN`,
:data:`SCORE_MAX`); a survey's 1-7 answer ``v`` is ``(v - 1) / 6 * 100``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from attrs import field, frozen

from crmcore.errors import ValidationError

#: The six dimensions of the B2B relationship assessment, in the order they are shown.
DIMENSIONS: tuple[str, ...] = (
    "acceptance_recognition",
    "activity_participation",
    "information_flow",
    "daily_guidance",
    "project_support",
    "competitive_preference",
)

#: Relationship scores run from 0 (no relationship) to 100 (the strongest).
SCORE_MIN = 0.0
SCORE_MAX = 100.0

#: Default ``[accounts] contact_roles``: roles in the customer's decision chain.
DEFAULT_CONTACT_ROLES: tuple[str, ...] = (
    "decision_maker",
    "influencer",
    "technical_evaluator",
    "user",
    "gatekeeper",
    "champion",
)
#: Default ``[accounts] link_types``: a link ``A -type-> B`` reads "A <type> B".
DEFAULT_LINK_TYPES: tuple[str, ...] = (
    "referred_by",
    "partner_of",
    "supplier_of",
    "reseller_of",
    "competitor_of",
)
#: Default ``[accounts] team_roles``: the roles of our people on an account team.
DEFAULT_TEAM_ROLES: tuple[str, ...] = (
    "account_manager",
    "pre_sales",
    "service",
    "executive_sponsor",
)
#: Default ``[accounts] team_write_roles``: team roles that may also change the account.
DEFAULT_TEAM_WRITE_ROLES: tuple[str, ...] = ("account_manager",)
#: Default ``[accounts] weak_score``: a latest score below it is a churn signal.
DEFAULT_WEAK_SCORE = 40.0
#: Default ``[accounts] falling_drop``: a fall of at least this many points is a churn signal.
DEFAULT_FALLING_DROP = 15.0

#: What a configured role or link type must look like (stored in 40 characters).
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
_CODE = re.compile(CODE_PATTERN)


def _codes(value: Any) -> tuple[str, ...]:
    return tuple(value)


@frozen
class AccountSettings:
    """The ``[accounts]`` section of ``crm.toml`` (validated by :mod:`crmcore.config`).

    ``team_write_roles`` must be among ``team_roles``; ``weak_score`` and
    ``falling_drop`` are on the 0-100 score scale.
    """

    contact_roles: tuple[str, ...] = field(default=DEFAULT_CONTACT_ROLES, converter=_codes)
    link_types: tuple[str, ...] = field(default=DEFAULT_LINK_TYPES, converter=_codes)
    team_roles: tuple[str, ...] = field(default=DEFAULT_TEAM_ROLES, converter=_codes)
    team_write_roles: tuple[str, ...] = field(default=DEFAULT_TEAM_WRITE_ROLES, converter=_codes)
    weak_score: float = field(default=DEFAULT_WEAK_SCORE, converter=float)
    falling_drop: float = field(default=DEFAULT_FALLING_DROP, converter=float)

    def __attrs_post_init__(self) -> None:
        """Refuse codes that cannot be stored and write roles that are no team role."""
        for name in ("contact_roles", "link_types", "team_roles", "team_write_roles"):
            for code in getattr(self, name):
                if not isinstance(code, str) or not _CODE.match(code):
                    raise ValidationError(
                        f"accounts.{name}: {code!r} must be lower case letters, digits and _ "
                        "(at most 40 characters)",
                        field=f"accounts.{name}",
                    )
        unknown = sorted(set(self.team_write_roles) - set(self.team_roles))
        if unknown:
            raise ValidationError(
                f"accounts.team_write_roles: {unknown[0]!r} is not one of team_roles",
                field="accounts.team_write_roles",
            )
        if not SCORE_MIN <= self.weak_score <= SCORE_MAX:
            raise ValidationError(
                f"accounts.weak_score: must be between 0 and 100, got {self.weak_score}",
                field="accounts.weak_score",
            )
        if not 0 < self.falling_drop <= SCORE_MAX:
            raise ValidationError(
                f"accounts.falling_drop: must be above 0 and at most 100, got {self.falling_drop}",
                field="accounts.falling_drop",
            )


def is_current(start: date | None, end: date | None, day: date) -> bool:
    """Whether a contact with these dates holds the role on ``day`` (see the module docstring)."""
    return (start is None or start <= day) and (end is None or day < end)


@frozen
class Contact:
    """A person (``person_id``) working at an organisation (``organisation_id``).

    ``role`` is the person's place in the decision chain (one of
    ``[accounts] contact_roles``, or ``None``); at most one current contact
    per organisation is ``primary``.
    """

    person_id: int
    organisation_id: int
    id: int | None = None
    job_title: str | None = None
    department: str | None = None
    role: str | None = None
    primary: bool = False
    start_date: date | None = None
    end_date: date | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def current_on(self, day: date) -> bool:
        """Whether the person holds the role on ``day``."""
        return is_current(self.start_date, self.end_date, day)


#: Fields of :class:`Contact` that ``update_contact`` may change.
CONTACT_FIELDS = ("job_title", "department", "role", "primary", "start_date", "end_date")


@frozen
class CustomerLink:
    """A typed link ``from_id -type-> to_id`` between two customers (``A referred_by B``)."""

    from_id: int
    to_id: int
    type: str
    id: int | None = None
    created_at: datetime | None = None


@frozen
class TeamMember:
    """Someone on our side (``user``) working on an account, in a ``role`` of ``team_roles``."""

    account_id: int
    user: str
    role: str
    added_at: datetime | None = None


@frozen
class AccountNode:
    """One organisation of a group tree, with its subsidiaries."""

    id: int
    name: str
    children: tuple[AccountNode, ...] = ()

    def ids(self) -> list[int]:
        """Every id of the tree below and including this node, depth first."""
        found = [self.id]
        for child in self.children:
            found.extend(child.ids())
        return found


@frozen
class RelationshipScore:
    """One measurement of one dimension of an account's relationship (0-100).

    ``contact_id`` names the decision maker it was measured for (``None``:
    the account as a whole); ``source`` where it came from (``manual``,
    ``survey`` ...).
    """

    account_id: int
    dimension: str
    score: float
    measured_at: datetime
    source: str = "manual"
    contact_id: int | None = None
    actor: str | None = None
    id: int | None = None


@frozen
class ScoreTrend:
    """The latest score of one dimension and how it moved since the measurement before.

    ``change`` is ``score - previous`` (``None`` when there is no earlier measurement).
    """

    dimension: str
    score: float
    measured_at: datetime
    source: str
    previous: float | None = None
    change: float | None = None


__all__ = [
    "CONTACT_FIELDS",
    "DEFAULT_CONTACT_ROLES",
    "DEFAULT_LINK_TYPES",
    "DEFAULT_TEAM_ROLES",
    "DIMENSIONS",
    "SCORE_MAX",
    "SCORE_MIN",
    "AccountNode",
    "AccountSettings",
    "Contact",
    "CustomerLink",
    "RelationshipScore",
    "ScoreTrend",
    "TeamMember",
    "is_current",
]
