"""Shared test data of the segmentation plugin: the CDNOW sample of the literature.

The CDNOW files ship in the ``lifetimes`` package (MIT licence; the data set itself
is the one Fader and Hardie publish for research use). It is a test-only dependency
(``plugins/segmentation[test]``, installed by ``make install``); the files are
located with ``importlib.util.find_spec`` without importing ``lifetimes``, which is
unmaintained and need not import on current numpy/scipy.
"""

from __future__ import annotations

import csv
import importlib.util
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from crmcore import CRM

#: Published BG/NBD and Gamma-Gamma parameters on the CDNOW sample (Fader, Hardie, Lee 2005).
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
#: The last day of the 39-week calibration period.
CALIBRATION_END = date(1997, 9, 30)


def cdnow_dir() -> Path:
    """``lifetimes/datasets`` (found without importing lifetimes)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise RuntimeError("the test dependency lifetimes is missing: run `make install`")
    return Path(spec.origin).parent / "datasets"


def cdnow_sample() -> list[tuple[int, date, str]]:
    """``(sample customer id 1..2357, date, dollar value)`` of CDNOW_sample.txt."""
    rows = []
    for line in (cdnow_dir() / "CDNOW_sample.txt").read_text().splitlines():
        if line.strip():
            _, sample_id, day, _, dollars = line.split()
            rows.append((int(sample_id), date(int(day[:4]), int(day[4:6]), int(day[6:])), dollars))
    return rows


def cdnow_reference() -> dict[int, dict[str, float]]:
    """The published calibration summary (x, t_x, T in weeks, zbar) by sample id."""
    path = cdnow_dir() / "cdnow_customers_summary_with_transactions.csv"
    with path.open() as handle:
        return {
            int(r["ID"]): {k: float(v) for k, v in r.items() if k != "ID"}
            for r in csv.DictReader(handle)
        }


def load_cdnow(crm: CRM) -> dict[int, int]:
    """Load the CDNOW sample as purchases (noon UTC); the CRM id of each sample id."""
    rows = cdnow_sample()
    sample_ids = sorted({r[0] for r in rows})
    created = crm.customers.create_many([{"name": f"CDNOW {i}"} for i in sample_ids])
    ids = {s: int(c.id) for s, c in zip(sample_ids, created, strict=True) if c.id is not None}
    purchases: list[dict[str, Any]] = [
        {
            "customer_id": ids[sample],
            "kind": "purchase",
            "occurred_at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC).isoformat(),
            "amount": dollars,
            "currency": "USD",
        }
        for sample, day, dollars in rows
    ]
    crm.interactions.record_many(purchases)
    return ids


class CDNOW:
    """The helpers above, for tests (conftest modules are not importable by name)."""

    published_bgnbd = PUBLISHED_BGNBD
    published_gamma_gamma = PUBLISHED_GAMMA_GAMMA
    calibration_end = CALIBRATION_END
    dir = staticmethod(cdnow_dir)
    sample = staticmethod(cdnow_sample)
    reference = staticmethod(cdnow_reference)
    load = staticmethod(load_cdnow)


@pytest.fixture
def cdnow() -> type[CDNOW]:
    """The CDNOW helpers: ``cdnow.load(crm)``, ``cdnow.reference()``, the published values."""
    return CDNOW
