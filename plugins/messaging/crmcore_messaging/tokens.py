"""Signed links: tracked clicks and one-click unsubscribe (itsdangerous).

A message's links are built from its random ``token`` (``messaging_messages.token``):

* a tracked link is ``{base_url}/c/{signed}``, ``signed`` the
  ``URLSafeSerializer(secret, salt="crmcore.messaging.click")`` form of
  ``[token, url]``; :func:`resolve_click` checks it, records a
  ``messaging_clicks`` row and returns ``url`` (the embedding application's
  web endpoint redirects there);
* the unsubscribe link is ``{base_url}/u/{signed}`` with the salt
  ``crmcore.messaging.unsubscribe`` and the payload ``[token]``;
  :func:`unsubscribe` turns the consent flag of the message's channel off
  through core (``crm.customers.update``).

The secret is ``[plugins.messaging] secret`` or, when none is configured, a
random one stored in ``messaging_secrets`` (row ``signing``) on first use.
The signature is the authority: the web endpoint calls these functions on the
trusted system view, with no principal. Called on a user's view they also
require that the user may write the message's customer.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote, urlsplit
from weakref import WeakKeyDictionary

from attrs import frozen
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crmcore import CRM, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.tables import customers
from crmcore_messaging.rules import erased_ids
from crmcore_messaging.settings import settings_of
from crmcore_messaging.tables import (
    clicks_table,
    messages_table,
    secrets_table,
    unsubscribes_table,
)

CLICK_SALT = "crmcore.messaging.click"
UNSUBSCRIBE_SALT = "crmcore.messaging.unsubscribe"
#: The ``messaging_secrets`` row holding the generated signing secret.
SECRET_NAME = "signing"
#: Who core's audit log names for an unsubscribe applied on the trusted view.
UNSUBSCRIBE_ACTOR = "unsubscribe"
#: The events emitted (``ctx.emit``) by :func:`unsubscribe` and :func:`resolve_click`.
UNSUBSCRIBED_EVENT = "messaging.unsubscribed"
CLICKED_EVENT = "messaging.link_clicked"
#: URL schemes a tracked link may lead to.
SCHEMES = ("http", "https")
MAX_URL = 2000
_MAX_SIGNED = 4000

_found_secrets: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


def check_url(url: Any, field: str = "link") -> str:
    """``url`` stripped if it is an absolute http(s) URL; else ValidationError naming it.

    A tracked link may only lead to ``http://`` or ``https://`` with a host:
    ``javascript:``, ``data:``, relative and scheme-less URLs are refused.
    """
    if not isinstance(url, str):
        raise ValidationError(f"{field}: expected a URL, got {type(url).__name__}", field=field)
    stripped = url.strip()
    if len(stripped) > MAX_URL:
        raise ValidationError(f"{field}: URL longer than {MAX_URL} characters", field=field)
    parts = urlsplit(stripped)
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        raise ValidationError(
            f"{field}: only http(s) URLs can be tracked, got {stripped[:80]!r}",
            field=field,
            value=stripped[:80],
        )
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in stripped):
        raise ValidationError(f"{field}: a URL may not contain spaces or controls", field=field)
    return stripped


def _insert_if_absent(uow: UnitOfWork, values: dict[str, Any]) -> None:
    table = secrets_table(uow.crm.metadata)
    dialect = uow.connection.dialect.name
    if dialect == "postgresql":
        uow.connection.execute(
            postgresql_insert(table).values(values).on_conflict_do_nothing(index_elements=["name"])
        )
    elif dialect == "sqlite":
        uow.connection.execute(
            sqlite_insert(table).values(values).on_conflict_do_nothing(index_elements=["name"])
        )
    elif _stored(uow) is None:  # another database: a concurrent first use is a ConflictError
        uow.connection.execute(insert(table).values(values))


def _stored(uow: UnitOfWork) -> str | None:
    table = secrets_table(uow.crm.metadata)
    query = select(table.c.value).where(table.c.name == SECRET_NAME)
    value = uow.connection.execute(query).scalar()
    return None if value is None else str(value)


def _known_secret(crm: CRM) -> str | None:
    """The configured secret, or the stored one this process has already read."""
    return settings_of(crm).secret or _found_secrets.get(crm.engine)


def _secret(uow: UnitOfWork, *, create: bool) -> str | None:
    """The signing secret: configured, else stored (created first when ``create``)."""
    known = _known_secret(uow.crm)
    if known is not None:
        return known
    value = _stored(uow)
    if value is not None:  # committed before this unit of work: safe to remember
        _found_secrets[uow.crm.engine] = value
        return value
    if not create:
        return None
    _insert_if_absent(
        uow, {"name": SECRET_NAME, "value": secrets.token_urlsafe(32), "created_at": uow.now}
    )
    return _stored(uow)  # ours, or the one a concurrent first use committed


def _signing_secret(source: UnitOfWork | CRM) -> str:
    """The secret to sign with; a CRM opens a unit of work only the first time (to create it)."""
    crm = source.crm if isinstance(source, UnitOfWork) else source
    secret = _known_secret(crm)
    if secret is None:
        with crm.unit_of_work(None, source if isinstance(source, UnitOfWork) else None) as uow:
            secret = _secret(uow, create=True)
    assert secret is not None
    return secret


class SignedLinks:
    """The link builders of one message: ``link(url)`` and ``unsubscribe_url``."""

    def __init__(self, source: UnitOfWork | CRM, token: str) -> None:
        """Sign with the CRM's secret (created on first use) for message ``token``.

        ``source`` is the unit of work the message is made in, or a CRM (a
        unit of work is then opened only to create the secret on first use).
        """
        if not isinstance(token, str) or not token:
            raise ValidationError("token: a message token is required", field="token")
        secret = _signing_secret(source)
        crm = source.crm if isinstance(source, UnitOfWork) else source
        self._base = settings_of(crm).base_url
        self._token = token
        self._click = URLSafeSerializer(secret, salt=CLICK_SALT)
        self.unsubscribe_url = (
            f"{self._base}/u/{URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT).dumps([token])}"
        )

    def link(self, url: str) -> str:
        """The tracked form of ``url`` (an http(s) URL, else ValidationError)."""
        return f"{self._base}/c/{self._click.dumps([self._token, check_url(url)])}"


class PreviewLinks:
    """Link builders for a preview: nothing is signed or stored, the links do not work.

    ``link(url)`` is ``{base_url}/c/preview?to={url, percent-encoded}``, the
    unsubscribe URL ``{base_url}/u/preview``.
    """

    def __init__(self, base_url: str) -> None:
        """Build preview links under ``base_url``."""
        self._base = base_url
        self.unsubscribe_url = f"{base_url}/u/preview"

    def link(self, url: str) -> str:
        """A placeholder link showing the destination (checked like a real one)."""
        return f"{self._base}/c/preview?to={quote(check_url(url), safe='')}"


def tracked_url(ctx_or_crm: UnitOfWork | CRM, token: str, url: str) -> str:
    """``{base_url}/c/{signed}``: the tracked link to ``url`` in message ``token``."""
    return SignedLinks(ctx_or_crm, token).link(url)


def unsubscribe_url(ctx_or_crm: UnitOfWork | CRM, token: str) -> str:
    """``{base_url}/u/{signed}``: the one-click unsubscribe link of message ``token``.

    Cheap to call per message with a CRM (as delivery does): once the secret
    is known to the process, no transaction is opened.
    """
    return SignedLinks(ctx_or_crm, token).unsubscribe_url


def _payload(uow: UnitOfWork, signed: Any, salt: str, size: int) -> list[str]:
    """The verified payload of ``signed`` (a bare signed value or a whole link)."""
    bad = ValidationError("link: not a valid link (its signature does not match)", field="link")
    if not isinstance(signed, str) or not signed.strip() or len(signed) > _MAX_SIGNED:
        raise bad
    value = signed.strip().split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    secret = _secret(uow, create=False)
    if secret is None:  # nothing was ever signed here
        raise bad
    try:
        payload = URLSafeSerializer(secret, salt=salt).loads(value)
    except BadData:
        raise bad from None
    if (
        not isinstance(payload, list)
        or len(payload) != size
        or not all(isinstance(p, str) for p in payload)
    ):
        raise bad
    return payload


def _message(uow: UnitOfWork, token: str) -> Any:
    table = messages_table(uow.crm.metadata)
    query = select(table.c.id, table.c.customer_id, table.c.channel).where(table.c.token == token)
    row = uow.connection.execute(query).first()
    if row is None or (
        row.customer_id is not None and erased_ids(uow.connection, [row.customer_id])
    ):
        raise ValidationError(
            "link: this link no longer works (its message was deleted)", field="link"
        )
    return row


@requires(Action.WRITE, scoped=True)  # the signature is the authority (public endpoint)
def resolve_click(crm: CRM, signed: str, *, ctx: UnitOfWork | None = None) -> str:
    """Check a tracked link, record the click and return its destination URL.

    ``signed`` is the part after ``/c/`` (or the whole link). Every call
    records one ``messaging_clicks`` row (the first click of a message is its
    earliest row) and emits ``messaging.link_clicked``. A bad or tampered
    signature and a link whose message no longer exists (erased customer)
    are a ValidationError that reveals nothing more. A user's view must also
    be allowed to write the message's customer.
    """
    with crm.unit_of_work(None, ctx) as uow:
        token, url = _payload(uow, signed, CLICK_SALT, 2)
        url = check_url(url)
        message = _message(uow, token)
        if message.customer_id is not None:
            crm.access.guard(uow, message.customer_id, Action.WRITE)
        clicks = clicks_table(crm.metadata)
        earlier = uow.connection.execute(
            select(clicks.c.id).where(clicks.c.message_id == message.id).limit(1)
        ).first()
        inserted = uow.connection.execute(
            insert(clicks).values(message_id=message.id, url=url, clicked_at=uow.now)
        ).inserted_primary_key
        assert inserted is not None
        click_id = int(inserted[0])
        uow.emit(
            CLICKED_EVENT,
            message.customer_id,
            {"message_id": message.id, "click_id": click_id, "first": earlier is None},
        )
    return url


@frozen
class Unsubscribed:
    """What :func:`unsubscribe` did: ``already`` True when the consent was already off."""

    customer_id: int
    channel: str
    consent_field: str
    already: bool
    message_id: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "customer_id": self.customer_id,
            "channel": self.channel,
            "consent_field": self.consent_field,
            "already": self.already,
            "message_id": self.message_id,
        }


def _consent_field(uow: UnitOfWork, channel: str) -> str:
    configured = settings_of(uow.crm).channels.get(channel)
    if configured is None:
        raise ValidationError(
            f"channel: {channel!r} is no longer configured, so its consent flag is unknown",
            field="channel",
        )
    return configured.consent


def _lock_customer(uow: UnitOfWork, customer_id: int) -> None:
    """Serialise concurrent unsubscribes of one customer (PostgreSQL; SQLite writes serially)."""
    if uow.connection.dialect.name == "postgresql":
        uow.connection.execute(
            select(customers.c.id).where(customers.c.id == customer_id).with_for_update()
        )


@requires(Action.WRITE, scoped=True)  # the signature is the authority (public endpoint)
def unsubscribe(crm: CRM, signed: str, *, ctx: UnitOfWork | None = None) -> Unsubscribed:
    """Apply a one-click unsubscribe link: the channel's consent flag of the customer goes off.

    ``signed`` is the part after ``/u/`` (or the whole link). The consent
    flag is the one configured for the message's channel (``consent``); it is
    turned off through ``crm.customers.update`` (validated, audited as
    ``customer.update`` with the actor ``unsubscribe`` on the trusted view),
    a ``messaging_unsubscribes`` row is written and ``messaging.unsubscribed``
    emitted, all in one unit of work. Idempotent: when the flag is already
    off nothing is written and ``already`` is True. Bad signatures, messages
    that no longer exist and staff messages are a ValidationError.
    """
    with crm.unit_of_work(UNSUBSCRIBE_ACTOR, ctx) as uow:
        (token,) = _payload(uow, signed, UNSUBSCRIBE_SALT, 1)
        message = _message(uow, token)
        if message.customer_id is None:
            raise ValidationError(
                "link: this message went to a user, not a customer: nothing to unsubscribe",
                field="link",
            )
        crm.access.guard(uow, message.customer_id, Action.WRITE)
        field = _consent_field(uow, message.channel)
        _lock_customer(uow, message.customer_id)
        customer = crm.customers.get(message.customer_id, ctx=uow)
        assert customer.id is not None
        done = Unsubscribed(customer.id, message.channel, field, True, message.id)
        if not getattr(customer.consent, field):
            return done
        crm.customers.update(customer.id, {"consent": {field: False}}, ctx=uow)
        uow.connection.execute(
            insert(unsubscribes_table(crm.metadata)).values(
                message_id=message.id,
                customer_id=customer.id,
                channel=message.channel,
                consent_field=field,
                at=uow.now,
            )
        )
        uow.emit(
            UNSUBSCRIBED_EVENT,
            customer.id,
            {"message_id": message.id, "channel": message.channel, "consent_field": field},
        )
        return Unsubscribed(customer.id, message.channel, field, False, message.id)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)

__all__ = [
    "CLICKED_EVENT",
    "CLICK_SALT",
    "SECRET_NAME",
    "UNSUBSCRIBED_EVENT",
    "UNSUBSCRIBE_ACTOR",
    "UNSUBSCRIBE_SALT",
    "PreviewLinks",
    "SignedLinks",
    "Unsubscribed",
    "check_url",
    "resolve_click",
    "tracked_url",
    "unsubscribe",
    "unsubscribe_url",
]
