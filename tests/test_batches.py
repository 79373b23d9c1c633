"""numbered_batches: the batching every bulk write path shares."""

from __future__ import annotations

import pytest

from crmcore import CRM, ValidationError
from crmcore.storage.batches import numbered_batches


def test_positions_run_across_batches_and_input_is_read_lazily() -> None:
    read: list[int] = []

    def items() -> object:
        for n in range(5):
            read.append(n)
            yield f"item{n}"

    batches = numbered_batches(items(), 2)  # type: ignore[arg-type]
    assert read == []
    assert next(batches) == [(0, "item0"), (1, "item1")]
    assert read == [0, 1]
    assert list(batches) == [[(2, "item2"), (3, "item3")], [(4, "item4")]]
    assert list(numbered_batches([], 3)) == []


@pytest.mark.parametrize("size", [0, -1, True, 2.5, "10"])
def test_a_bad_batch_size_is_refused_before_anything_is_read(size: object) -> None:
    with pytest.raises(ValidationError, match="batch_size: must be at least 1") as info:
        numbered_batches(iter(()), size)  # type: ignore[arg-type]
    assert info.value.field == "batch_size"


def test_the_bulk_apis_refuse_a_bad_batch_size_and_store_nothing(crm: CRM) -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        crm.customers.create_many([{"name": "a"}], batch_size=0)
    with pytest.raises(ValidationError, match="batch_size"):
        crm.interactions.record_many([], batch_size=True)  # type: ignore[arg-type]
    assert crm.customers.search().total == 0
