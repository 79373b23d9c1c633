"""The example plugin's one table, ``example_touches``, defined on core's shared MetaData."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, text

from crmcore.storage.types import IdType, UTCDateTime

#: Every table of a plugin is prefixed with the plugin's name.
TOUCHES = "example_touches"

#: The type of ``crm_customers.id`` (BIGINT on PostgreSQL, INTEGER on SQLite).
CustomerId = IdType


def touches_table(metadata: MetaData) -> Table:
    """Return ``example_touches`` on ``metadata``, defining it the first time.

    One row per customer: ``touches`` (interactions recorded),
    ``last_touch_at`` (the latest ``occurred_at`` among them), ``moves``
    (lifecycle moves, creation excluded) and ``updates`` (customer updates).
    The row goes away with the customer (``ON DELETE CASCADE``).
    """
    if TOUCHES in metadata.tables:
        return metadata.tables[TOUCHES]
    return Table(
        TOUCHES,
        metadata,
        Column(
            "customer_id",
            CustomerId,
            ForeignKey("crm_customers.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("touches", Integer, nullable=False, server_default=text("0")),
        Column("last_touch_at", UTCDateTime),
        Column("moves", Integer, nullable=False, server_default=text("0")),
        Column("updates", Integer, nullable=False, server_default=text("0")),
    )
