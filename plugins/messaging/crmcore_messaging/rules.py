"""The rules every message to a customer obeys, checked at enqueue and again at claim time.

In this order (the first that applies decides):

1. ``erased``: the customer was erased (core's audit log holds its
   ``customer.erase``) or no longer exists;
2. ``no_consent``: the channel's ``consent`` flag is off, or, for purpose
   ``survey``, ``surveys`` is off too;
3. ``no_address``: the customer has no address on the channel;
4. quiet hours: the customer's local time is within them: *deferred* to
   their end (not refused);
5. ``frequency_cap``: a cap would be exceeded: *refused* (not postponed).

Staff messages obey none of them. Every formula is in docs/plugins/messaging.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones
from sqlalchemy import Connection, func, select

from crmcore.storage.tables import audit_log, customers
from crmcore_messaging.settings import Cap, ChannelConfig, Settings
from crmcore_messaging.tables import messages_table

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from crmcore import Customer

#: Longest address (``messaging_messages.recipient``).
ADDRESS_LIMIT = 320
#: States a frequency cap counts.
COUNTED_STATES = ("sending", "sent")


def customer_zone(customer: Customer, settings: Settings) -> str:
    """The customer's IANA time zone name.

    ``attributes[timezone_attribute]`` when it names a known zone; else the
    zone of the phone number when ``phonenumbers`` gives exactly one; else
    ``default_timezone``.
    """
    given = customer.attributes.get(settings.timezone_attribute)
    if isinstance(given, str) and given:
        try:
            ZoneInfo(given)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return given
    if customer.phone:
        try:
            number = phonenumbers.parse(customer.phone, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            zones = phone_zones.time_zones_for_number(number)
            if len(zones) == 1 and zones[0] != phone_zones.UNKNOWN_TIMEZONE:
                return str(zones[0])
    return settings.default_timezone


def address_of(customer: Customer, channel: ChannelConfig, kind: str) -> str | None:
    """The customer's address on ``channel`` (``kind``: the channel's address kind).

    ``address_attribute`` (a key of ``customer.attributes``) wins (its value
    as text, stripped; empty or longer than 320 characters: no address); else
    ``email``, ``phone`` (E.164, as core stores it) or ``customer`` (the id).
    """
    if channel.address_attribute:
        value = customer.attributes.get(channel.address_attribute)
        text = "" if value is None else str(value).strip()
        return text if 0 < len(text) <= ADDRESS_LIMIT else None  # longer: not an address
    if kind == "email":
        return customer.email or None
    if kind == "phone":
        return customer.phone or None
    return str(customer.id)


def quiet_until(now: datetime, zone: str, settings: Settings) -> datetime | None:
    """The end of the quiet hours ``now`` falls in, in the zone (aware UTC); ``None`` if outside.

    Quiet hours are ``[start, end)`` in local wall-clock time; when ``start``
    is later than ``end`` they span midnight; ``start == end`` means none.
    """
    start, end = settings.quiet_start, settings.quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(zone))
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        if not start <= clock < end:
            return None
        day = today
    else:
        if end <= clock < start:
            return None
        day = today + timedelta(days=1) if clock >= start else today
    return _local_moment(day, end, zone)


def _local_moment(day: date, clock: time, zone: str) -> datetime:
    moment = datetime.combine(day, clock, tzinfo=ZoneInfo(zone))
    # A wall-clock time skipped by a DST change exists once converted: normalise through UTC.
    return moment.astimezone(ZoneInfo("UTC"))


def consent_refusal(consent: Mapping[str, bool], channel: ChannelConfig, purpose: str) -> bool:
    """Whether the consent flags forbid a ``purpose`` message on ``channel``."""
    if not consent.get(channel.consent, False):
        return True
    return purpose == "survey" and not consent.get("surveys", False)


def erased_ids(connection: Connection, customer_ids: Iterable[int]) -> set[int]:
    """Which of these customers were erased (core's audit log holds their ``customer.erase``).

    A customer that no longer exists has no consent row: :func:`first_refusal`
    refuses it as ``erased`` too.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return set()
    return set(
        connection.execute(
            select(audit_log.c.customer_id)
            .where(audit_log.c.action == "customer.erase", audit_log.c.customer_id.in_(ids))
            .distinct()
        ).scalars()
    )


def consents_of(connection: Connection, customer_ids: Iterable[int]) -> dict[int, dict[str, bool]]:
    """The stored consent flags of these customers, read from ``crm_customers``."""
    from crmcore_messaging.settings import CONSENT_FIELDS

    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    columns = [customers.c[f"consent_{name}"] for name in CONSENT_FIELDS]
    rows = connection.execute(select(customers.c.id, *columns).where(customers.c.id.in_(ids)))
    return {
        int(row[0]): {
            name: bool(value) for name, value in zip(CONSENT_FIELDS, row[1:], strict=True)
        }
        for row in rows
    }


def cap_window_counts(
    connection: Connection,
    metadata: MetaData,
    cap: Cap,
    customer_ids: Sequence[int],
    now: datetime,
    exclude: Sequence[int] = (),
) -> dict[int, int]:
    """Per customer, messages counted by ``cap`` in the window ``(now - days, now]``.

    Counted: the customer's messages in state ``sending`` or ``sent`` whose
    ``sent_at`` (else ``claimed_at``) is later than ``now - days`` (nothing is
    later than now but what another process claimed with a clock slightly
    ahead, which counts too), of the cap's channel
    (all channels for ``*``) and one of its purposes; ``exclude`` ids are
    left out (the claim counts its own batch itself).
    """
    if not customer_ids:
        return {}
    table = messages_table(metadata)
    when = func.coalesce(table.c.sent_at, table.c.claimed_at)
    query = (
        select(table.c.customer_id, func.count())
        .where(
            table.c.customer_id.in_(sorted(set(customer_ids))),
            table.c.state.in_(COUNTED_STATES),
            table.c.purpose.in_(cap.purposes),
            when > now - timedelta(days=cap.days),
        )
        .group_by(table.c.customer_id)
    )
    if cap.channel != "*":
        query = query.where(table.c.channel == cap.channel)
    if exclude:
        query = query.where(table.c.id.not_in(list(exclude)))
    return {int(cid): int(n) for cid, n in connection.execute(query)}


class CapCounter:
    """Counts per customer and cap while a batch is checked, so the batch cannot pass a cap."""

    def __init__(
        self,
        connection: Connection,
        metadata: MetaData,
        settings: Settings,
        customer_ids: Sequence[int],
        now: datetime,
        exclude: Sequence[int] = (),
    ) -> None:
        self.caps = settings.caps
        self.counts: list[dict[int, int]] = [
            cap_window_counts(connection, metadata, cap, customer_ids, now, exclude)
            for cap in self.caps
        ]

    def applying(self, channel: str, purpose: str) -> list[int]:
        """Indexes of the caps that count a ``purpose`` message on ``channel``."""
        return [
            i
            for i, cap in enumerate(self.caps)
            if purpose in cap.purposes and cap.channel in ("*", channel)
        ]

    def fits(self, customer_id: int, channel: str, purpose: str) -> bool:
        """Whether one more message fits every cap (nothing is counted: enqueue's check)."""
        caps = self.applying(channel, purpose)
        return all(self.counts[i].get(customer_id, 0) + 1 <= self.caps[i].max for i in caps)

    def admit(self, customer_id: int, channel: str, purpose: str) -> bool:
        """Whether one more message fits every cap; if so it is counted."""
        caps = self.applying(channel, purpose)
        if any(self.counts[i].get(customer_id, 0) + 1 > self.caps[i].max for i in caps):
            return False
        for i in caps:
            self.counts[i][customer_id] = self.counts[i].get(customer_id, 0) + 1
        return True


def first_refusal(
    *,
    customer_id: int,
    erased: set[int],
    consents: Mapping[int, Mapping[str, bool]],
    channel: ChannelConfig,
    purpose: str,
    recipient: Any,
) -> str | None:
    """The reason of rules 1-3 that refuses a message, or ``None``."""
    if customer_id in erased or customer_id not in consents:
        return "erased"
    if consent_refusal(consents[customer_id], channel, purpose):
        return "no_consent"
    if not recipient:
        return "no_address"
    return None


__all__ = [
    "ADDRESS_LIMIT",
    "COUNTED_STATES",
    "CapCounter",
    "address_of",
    "cap_window_counts",
    "consent_refusal",
    "consents_of",
    "customer_zone",
    "erased_ids",
    "first_refusal",
    "quiet_until",
]
