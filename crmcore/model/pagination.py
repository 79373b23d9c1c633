"""Pages of results for listing and search calls."""

from __future__ import annotations

from typing import Generic, TypeVar

from attrs import frozen

from crmcore.errors import ValidationError

T = TypeVar("T")

#: The largest page a listing call returns.
MAX_PAGE_SIZE = 1000


@frozen
class Page(Generic[T]):
    """One page of results: ``items``, the ``total`` matching, and where the page starts."""

    items: list[T]
    total: int
    limit: int
    offset: int
    #: Rows of this page left out because they cannot be read
    #: (see :mod:`crmcore.security.unreadable`).
    skipped: int = 0

    @property
    def next_offset(self) -> int:
        """The ``offset`` of the next page: past the items and the skipped rows."""
        return self.offset + len(self.items) + self.skipped

    @property
    def has_more(self) -> bool:
        """Whether results remain after this page."""
        return self.next_offset < self.total


def check_page(limit: int, offset: int) -> None:
    """Refuse page sizes outside 1..MAX_PAGE_SIZE and negative offsets."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"limit: must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}", field="limit"
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(
            f"offset: must be a non-negative integer, got {offset!r}", field="offset"
        )
