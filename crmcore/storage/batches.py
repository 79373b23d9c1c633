"""Reading a stream of inputs in numbered batches, as every bulk write path does.

``create_many``, ``record_many``, ``update_many`` and the plugins' bulk
functions consume their input lazily, a batch at a time, and name a bad item
by its position in the whole input (``customers[1203]: ...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from crmcore.errors import ValidationError

T = TypeVar("T")


def numbered_batches(items: Iterable[T], batch_size: int) -> Iterator[list[tuple[int, T]]]:
    """``items`` as lists of ``(position, item)``, at most ``batch_size`` each, read lazily.

    ``batch_size`` is checked at once (ValidationError naming it unless it is
    an integer of at least 1), before the first item is read.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            f"batch_size: must be at least 1, got {batch_size!r}", field="batch_size"
        )
    return _batches(items, batch_size)


def _batches(items: Iterable[T], batch_size: int) -> Iterator[list[tuple[int, T]]]:
    batch: list[tuple[int, T]] = []
    for position, item in enumerate(items):
        batch.append((position, item))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["numbered_batches"]
