"""The demo data set: deterministic, synthetic but realistic customers and their history.

``load_demo(crm, seed, customers)`` writes through the public services, so it
exercises the same paths (and plugin hooks) as a real application.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from attrs import frozen
from sqlalchemy import func, select

from crmcore.app import CRM
from crmcore.model.entities import Stage
from crmcore.storage.tables import customers as customers_table
from crmcore.storage.tables import interactions as interactions_table

#: The demo's "today": fixed so that every run prints the same figures.
DEMO_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

_FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "John",
    "Sophie",
    "Tim",
    "Hedy",
    "Claude",
    "Katherine",
    "Donald",
    "Mary",
    "Niklaus",
    "Anita",
    "Guido",
    "Shafi",
    "Leslie",
    "Karen",
    "Bjarne",
    "Lin",
    "Wei",
    "Amara",
    "Kofi",
    "Yuki",
    "Hiro",
    "Priya",
    "Arjun",
    "Elena",
    "Mateo",
    "Chloe",
    "Lucas",
    "Fatima",
    "Omar",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "McCarthy",
    "Wilson",
    "Berners-Lee",
    "Lamarr",
    "Shannon",
    "Johnson",
    "Knuth",
    "Wirth",
    "Borg",
    "Rossum",
    "Goldwasser",
    "Lamport",
    "Jones",
    "Stroustrup",
    "Chen",
    "Zhang",
    "Okafor",
    "Mensah",
    "Tanaka",
    "Sato",
    "Patel",
    "Sharma",
    "Rossi",
    "Garcia",
    "Martin",
    "Dubois",
    "Haddad",
    "Nasser",
]
_ORG_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Oscorp",
    "Aperture",
    "Massive",
    "Dynamic",
    "Blue",
    "Sun",
    "Nakatomi",
    "Gringotts",
    "Monarch",
    "Weyland",
    "Pied",
    "Piper",
]
# Every ordered pair of distinct words, in a fixed shuffled order: unique organisation names.
_ORG_PAIRS = [(a, b) for a in _ORG_WORDS for b in _ORG_WORDS if a != b]
random.Random(0).shuffle(_ORG_PAIRS)
_ORG_SUFFIX = ["Ltd", "GmbH", "Inc.", "S.A.", "LLC", "Group", "Holdings", "Partners"]
_INDUSTRIES = [
    "retail",
    "manufacturing",
    "software",
    "logistics",
    "healthcare",
    "finance",
    "hospitality",
]
_OWNERS = ["alice", "bob", "carmen", "deepak", "emma"]
_CITIES = ["Berlin", "Lyon", "Milan", "Madrid", "Leeds", "Porto", "Gdansk", "Utrecht"]
_TAGS = ["newsletter", "vip", "b2b", "wholesale", "event-2025", "referral", "student"]
_PURCHASE_CHANNELS = ["web", "store", "app", "phone", "field_sales"]
_CONTACT_KINDS = [
    ("inquiry", "email"),
    ("call", "phone"),
    ("chat", "chat"),
    ("visit", "store"),
    ("email", "email"),
    ("social", "social"),
    ("care", "phone"),
]


@frozen
class DemoSummary:
    """What the demo loaded."""

    customers: int
    interactions: int
    lifecycle_moves: int


def _customer(rng: random.Random, index: int) -> dict[str, Any]:
    created = DEMO_NOW - timedelta(days=rng.randint(30, 730), minutes=rng.randint(0, 1440))
    channel = rng.choice(["web", "store", "referral", "event", "social", "field_sales", "partner"])
    tags = rng.sample(_TAGS, k=rng.choice([0, 0, 1, 1, 2]))
    if rng.random() < 0.25:
        first, second = _ORG_PAIRS[index % len(_ORG_PAIRS)]
        round_ = index // len(_ORG_PAIRS)
        numbered = f"{first} {second} {round_ + 1}" if round_ else f"{first} {second}"
        org = f"{numbered} {_ORG_SUFFIX[index % len(_ORG_SUFFIX)]}"
        return {
            "kind": "organization",
            "name": org,
            "company_name": org,
            "email": f"purchasing{index}@{org.split()[0].lower()}-{index}.example",
            "phone": f"+49 30 {5_000_000 + index:07d}",
            "industry": rng.choice(_INDUSTRIES),
            "size": rng.choice([8, 25, 60, 240, 1200, 5400]),
            "registered_capital": str(Decimal(rng.choice([25_000, 100_000, 1_000_000, 5_000_000]))),
            "founding_date": date(
                rng.randint(1950, 2020), rng.randint(1, 12), rng.randint(1, 28)
            ).isoformat(),
            "address": f"{rng.randint(1, 200)} Industriestrasse, {rng.choice(_CITIES)}",
            "owner": rng.choice(_OWNERS),
            "source_channel": channel,
            "tags": sorted({*tags, "b2b"}),
            "consent": {
                "marketing_email": True,
                "surveys": rng.random() < 0.8,
                "data_processing": True,
            },
            "created_at": created.isoformat(),
        }
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "kind": "person",
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}.{index}@mail.example",
        "phone": f"+44 7700 {100_000 + index:06d}",
        "gender": rng.choice(["female", "male", "female", "male", "other", "undisclosed"]),
        "birth_date": date(
            rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)
        ).isoformat(),
        "address": f"{rng.randint(1, 300)} High Street, {rng.choice(_CITIES)}",
        "owner": rng.choice(_OWNERS),
        "source_channel": channel,
        "tags": tags,
        "consent": {
            "marketing_email": rng.random() < 0.6,
            "marketing_sms": rng.random() < 0.3,
            "surveys": rng.random() < 0.7,
            "data_processing": True,
        },
        "created_at": created.isoformat(),
    }


def _history(
    rng: random.Random, customer_id: int, created: datetime, is_org: bool
) -> Iterator[dict[str, Any]]:
    """Purchases at a customer-specific rate, with some drifting away, plus contacts."""
    rate_per_year = rng.choice([0, 1, 2, 4, 6, 12, 24]) * (2 if is_org else 1)
    drift_stop = (
        DEMO_NOW - timedelta(days=rng.randint(150, 400)) if rng.random() < 0.25 else DEMO_NOW
    )
    mean_ticket = rng.choice([25, 60, 120, 400]) * (8 if is_org else 1)
    moment = created
    while rate_per_year:
        moment += timedelta(days=rng.expovariate(rate_per_year / 365.0))
        if moment >= drift_stop:
            break
        amount = Decimal(str(round(rng.lognormvariate(0, 0.5) * mean_ticket, 2)))
        yield {
            "customer_id": customer_id,
            "kind": "purchase",
            "channel": rng.choice(_PURCHASE_CHANNELS),
            "occurred_at": moment.isoformat(),
            "amount": str(amount),
            "currency": "EUR",
            "items": [{"sku": f"SKU-{rng.randint(100, 999)}", "quantity": str(rng.randint(1, 3))}],
        }
    for _ in range(rng.randint(0, 6)):
        kind, channel = rng.choice(_CONTACT_KINDS)
        when = created + timedelta(
            seconds=rng.randint(0, int((DEMO_NOW - created).total_seconds()))
        )
        yield {
            "customer_id": customer_id,
            "kind": kind,
            "channel": channel,
            "direction": rng.choice(["inbound", "inbound", "outbound"]),
            "occurred_at": when.isoformat(),
            "handled_by": rng.choice(_OWNERS),
            "response_seconds": float(rng.randint(30, 6 * 3600)),
        }


def load_demo(crm: CRM, *, seed: int = 7, customers: int = 400) -> DemoSummary:
    """Load the demo data set into ``crm`` (expected empty) and derive lifecycle stages.

    Stages follow the purchase history as of :data:`DEMO_NOW`: two purchases
    make a customer active, six and a purchase in the last 90 days loyal, no
    purchase for 120 days at risk, none for 300 days churned.
    """
    rng = random.Random(seed)
    created = crm.customers.create_many((_customer(rng, i) for i in range(customers)), actor="demo")
    history = (
        row
        for c in created
        for row in _history(
            rng, c.id or 0, c.created_at or DEMO_NOW, c.kind.value == "organization"
        )
    )
    count = len(crm.interactions.record_many(history, actor="demo", keep=True))
    moves = crm.lifecycle.move_many(_derived_moves(crm), actor="demo")
    return DemoSummary(customers=len(created), interactions=count, lifecycle_moves=len(moves))


def _derived_moves(crm: CRM) -> list[tuple[int, str, str | None]]:
    stats = (
        select(
            interactions_table.c.customer_id,
            func.count().label("purchases"),
            func.max(interactions_table.c.occurred_at).label("last"),
        )
        .where(interactions_table.c.kind == "purchase")
        .group_by(interactions_table.c.customer_id)
        .order_by(interactions_table.c.customer_id)
    )
    moves: list[tuple[int, str, str | None]] = []
    with crm.reading() as uow:
        rows = uow.connection.execute(stats).all()
    for customer_id, purchases, last in rows:
        last_dt = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
        idle = (DEMO_NOW - last_dt.replace(tzinfo=last_dt.tzinfo or UTC)).days
        if purchases < 2:
            continue
        moves.append((customer_id, Stage.ACTIVE, "second purchase"))
        if idle > 120:
            moves.append((customer_id, Stage.AT_RISK, f"no purchase for {idle} days"))
            if idle > 300:
                moves.append((customer_id, Stage.CHURNED, f"no purchase for {idle} days"))
        elif purchases >= 6 and idle <= 90:
            moves.append((customer_id, Stage.LOYAL, f"{purchases} purchases, last {idle} days ago"))
    return moves


def top_customers(crm: CRM, limit: int = 5) -> list[dict[str, Any]]:
    """The customers with the highest purchase revenue, with their revenue and purchase count."""
    revenue = func.sum(interactions_table.c.amount)
    query = (
        select(
            customers_table.c.id,
            customers_table.c.name,
            customers_table.c.stage,
            func.count().label("purchases"),
            revenue.label("revenue"),
        )
        .join(interactions_table, interactions_table.c.customer_id == customers_table.c.id)
        .where(interactions_table.c.kind == "purchase")
        .group_by(customers_table.c.id, customers_table.c.name, customers_table.c.stage)
        .order_by(revenue.desc(), customers_table.c.id)
        .limit(limit)
    )
    with crm.reading() as uow:
        return [dict(r._mapping) for r in uow.connection.execute(query)]


#: SQLite ``PRAGMA application_id`` of a database ``crm demo`` created ("CRMD"):
#: how ``crm demo`` tells a file it may replace from one holding real data.
DEMO_APPLICATION_ID = 0x43524D44


def mark_demo_database(crm: CRM) -> None:
    """Mark ``crm``'s SQLite file as a demo database (:data:`DEMO_APPLICATION_ID`)."""
    if crm.engine.dialect.name != "sqlite":
        return
    with crm.engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")


def is_replaceable(path: Path) -> bool:
    """Whether ``crm demo`` may replace ``path`` without asking.

    True when there is no file, an empty one, or a SQLite database marked by
    :func:`mark_demo_database`; False for anything else (a real crmcore
    database, another SQLite database, a file that is not SQLite). The file
    is opened read-only and never created.
    """
    if not path.exists():
        return True
    if path.is_file() and path.stat().st_size == 0:
        return True
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = connection.execute("PRAGMA application_id").fetchone()
    except sqlite3.Error:  # not a database
        return False
    finally:
        connection.close()
    return row is not None and row[0] == DEMO_APPLICATION_ID
