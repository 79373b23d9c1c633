"""The core entities: customers, their interactions and their lifecycle.

All entities are immutable attrs classes. :mod:`crmcore.model.serialization` turns
them into JSON-safe dicts and back. Amounts are :class:`~decimal.Decimal`,
timestamps are timezone-aware :class:`~datetime.datetime` values.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from attrs import field, frozen

from crmcore.model.identity import fold_phone


class CustomerKind(enum.StrEnum):
    """Whether a customer is a natural person or an organisation."""

    PERSON = "person"
    ORGANIZATION = "organization"


class Gender(enum.StrEnum):
    """Self-declared gender of a person customer."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNDISCLOSED = "undisclosed"


class Stage(enum.StrEnum):
    """Lifecycle stage of a customer; see :mod:`crmcore.services.lifecycle` for the graph."""

    PROSPECT = "prospect"
    NEW = "new"
    ACTIVE = "active"
    LOYAL = "loyal"
    AT_RISK = "at_risk"
    CHURNED = "churned"


class Channel(enum.StrEnum):
    """A channel through which a customer is reached or reaches the company."""

    WEB = "web"
    STORE = "store"
    PHONE = "phone"
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    SOCIAL = "social"
    FIELD_SALES = "field_sales"
    PARTNER = "partner"
    REFERRAL = "referral"
    EVENT = "event"
    APP = "app"
    OTHER = "other"


class InteractionKind(enum.StrEnum):
    """What happened in an interaction."""

    PURCHASE = "purchase"
    REFUND = "refund"
    INQUIRY = "inquiry"
    CALL = "call"
    EMAIL = "email"
    VISIT = "visit"
    CHAT = "chat"
    SOCIAL = "social"
    COMPLAINT = "complaint"
    SURVEY = "survey"
    CARE = "care"
    MEETING = "meeting"
    NOTE = "note"


class Direction(enum.StrEnum):
    """Who started the interaction: the customer (inbound) or the company (outbound)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


E = TypeVar("E", bound=enum.StrEnum)


def enum_member(cls: type[E], value: Any) -> E:
    """``value`` as a member of ``cls``; ValueError listing the allowed values otherwise."""
    if type(value) is cls:
        return value
    try:
        # The value-to-member map is what cls(value) consults first, minus the call overhead.
        return cls._value2member_map_[value]  # type: ignore[return-value]
    except (KeyError, TypeError):
        pass
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ValueError(f"{value!r} is not one of: {allowed}") from None


# attrs converters must be named functions for mypy's attrs plugin to understand them.
def _customer_kind(value: Any) -> CustomerKind:
    return enum_member(CustomerKind, value)


def _stage(value: Any) -> Stage:
    return enum_member(Stage, value)


def _optional_stage(value: Any) -> Stage | None:
    return None if value is None else enum_member(Stage, value)


def _gender(value: Any) -> Gender | None:
    return None if value is None else enum_member(Gender, value)


def _channel(value: Any) -> Channel:
    return enum_member(Channel, value)


def _optional_channel(value: Any) -> Channel | None:
    return None if value is None else enum_member(Channel, value)


def _interaction_kind(value: Any) -> InteractionKind:
    return enum_member(InteractionKind, value)


def _direction(value: Any) -> Direction:
    return enum_member(Direction, value)


def _phone(value: Any) -> Any:
    return fold_phone(value) if isinstance(value, str) else value


S = TypeVar("S")


def stamped(entity: S, fresh: bool, **changes: Any) -> S:
    """``entity`` with ``changes`` (already converted values) applied, as stored.

    Entities are immutable to their users, so a caller's instance is copied
    (``attrs.evolve``). ``fresh=True`` says crmcore built the instance itself
    (from a mapping) and has not handed it out yet: it is completed in place,
    which saves a second construction per row on the bulk paths.
    """
    if not fresh:
        return attrs.evolve(entity, **changes)  # type: ignore[misc]
    for name, value in changes.items():
        object.__setattr__(entity, name, value)
    return entity


#: Interaction kinds that carry money and therefore require an amount and a currency.
MONETARY_KINDS = frozenset({InteractionKind.PURCHASE, InteractionKind.REFUND})


def _tags(value: Any) -> tuple[str, ...]:
    """Normalise tags to a sorted tuple of unique, stripped, non-empty strings."""
    if isinstance(value, str):
        value = [value]
    return tuple(sorted({str(t).strip() for t in value if str(t).strip()}))


@frozen
class Consent:
    """What the customer agreed to. Everything defaults to *not* consented."""

    marketing_email: bool = False
    marketing_sms: bool = False
    marketing_phone: bool = False
    surveys: bool = False
    data_processing: bool = False


@frozen
class Customer:
    """A person or organisation the company does business with.

    ``id`` is ``None`` until the customer is stored. ``stage`` changes only
    through :class:`crmcore.services.lifecycle.LifecycleService`. ``attributes`` holds
    the deployment's custom fields, validated against the JSON Schema in
    ``crm.toml``. ``phone`` is stored with full-width and other non-ASCII
    digits folded to ASCII (:func:`crmcore.model.identity.fold_phone`).
    """

    name: str
    kind: CustomerKind = field(default=CustomerKind.PERSON, converter=_customer_kind)
    id: int | None = None
    email: str | None = None
    phone: str | None = field(default=None, converter=_phone)
    address: str | None = None
    gender: Gender | None = field(default=None, converter=_gender)
    birth_date: date | None = None
    company_name: str | None = None
    industry: str | None = None
    size: int | None = None
    registered_capital: Decimal | None = None
    founding_date: date | None = None
    owner: str | None = None
    stage: Stage = field(default=Stage.PROSPECT, converter=_stage)
    source_channel: Channel | None = field(default=None, converter=_optional_channel)
    tags: tuple[str, ...] = field(default=(), converter=_tags)
    attributes: dict[str, Any] = field(factory=dict, hash=False)
    consent: Consent = field(factory=Consent)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@frozen
class Item:
    """One line of a purchase: what, how many, at what unit price."""

    sku: str
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    name: str | None = None
    category: str | None = None


@frozen
class Interaction:
    """Something that happened between the company and a customer.

    ``amount`` and ``currency`` are required for purchases and refunds and
    optional otherwise. ``response_seconds`` is how long the company took to
    answer, when that is known.

    ``external_id`` is an idempotency key: the id the interaction has in the
    system it came from (an order number, a ticket id, or the content hash an
    import derives). An interaction whose ``(source, external_id)`` is already
    stored is not stored again. ``source`` names that system; it is
    ``"default"`` when an external id is given without one.

    ``contact_id`` names the contact person involved when the customer is an
    organisation: a person who is its contact on the (UTC) day of
    ``occurred_at`` (:mod:`crmcore.services.accounts`).
    """

    customer_id: int
    kind: InteractionKind = field(converter=_interaction_kind)
    occurred_at: datetime
    channel: Channel = field(default=Channel.OTHER, converter=_channel)
    direction: Direction = field(default=Direction.INBOUND, converter=_direction)
    id: int | None = None
    amount: Decimal | None = None
    currency: str | None = None
    items: tuple[Item, ...] = ()
    text: str | None = None
    payload: dict[str, Any] = field(factory=dict, hash=False)
    handled_by: str | None = None
    response_seconds: float | None = None
    source: str | None = None
    external_id: str | None = None
    contact_id: int | None = None


@frozen
class LifecycleEvent:
    """One move of a customer from a stage to another (``from_stage`` is ``None`` at creation)."""

    customer_id: int
    to_stage: Stage = field(converter=_stage)
    at: datetime
    from_stage: Stage | None = field(default=None, converter=_optional_stage)
    reason: str | None = None
    actor: str | None = None
    id: int | None = None


@frozen
class CustomerChange:
    """The result of an update: the customer before and after, and what changed."""

    before: Customer
    after: Customer
    changed: tuple[str, ...]


#: Fields of :class:`Customer` a caller may set through ``update``.
UPDATABLE_FIELDS = tuple(
    f.name
    for f in attrs.fields(Customer)
    if f.name not in {"id", "stage", "created_at", "updated_at"}
)
