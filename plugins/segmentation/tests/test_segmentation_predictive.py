"""BG/NBD + Gamma-Gamma fitted in place: CDNOW reproduces the literature; holdout validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import crmcore_segmentation.plugin
import pytest
from crmcore_segmentation import predictive, validation
from crmcore_segmentation.predictive_summary import customer_summaries

from crmcore import CRM
from crmcore.pytest_plugin import CRMFactory

NOW = datetime(1998, 7, 1, tzinfo=UTC)


@pytest.fixture
def shop(crm_factory: CRMFactory, clock: Any, cdnow: Any) -> tuple[CRM, dict[int, int]]:
    clock.set(NOW)
    crm = crm_factory(plugins=[crmcore_segmentation.plugin])
    return crm, cdnow.load(crm)


def test_cdnow_summary_fit_and_holdout(shop: tuple[CRM, dict[int, int]], cdnow: Any) -> None:
    """SQL summary = the published one; fits within 1 % of the published parameters."""
    crm, ids = shop
    summary = customer_summaries(crm, calibration_end=cdnow.calibration_end)
    reference = cdnow.reference()
    assert len(summary) == len(reference) == 2357
    by_crm = {crm_id: sample for sample, crm_id in ids.items()}
    for i, cid in enumerate(summary.customer_id):
        ref = reference[by_crm[int(cid)]]
        assert summary.frequency[i] == ref["x"]
        assert summary.recency[i] == pytest.approx(ref["t_x"], abs=0.006)
        assert summary.age[i] == pytest.approx(ref["T"], abs=0.006)
        assert summary.mean_value[i] == pytest.approx(ref["zbar"], abs=0.006)

    # An exclusive instant (as as_of everywhere) at the midnight after gives the same.
    instant = customer_summaries(crm, calibration_end=datetime(1997, 10, 1, tzinfo=UTC))
    assert (instant.frequency == summary.frequency).all() and (instant.age == summary.age).all()
    assert instant.end == summary.end == cdnow.calibration_end

    fits = predictive.fit_models(crm, calibration_end=cdnow.calibration_end)
    for name, published in cdnow.published_bgnbd.items():
        assert fits.purchases.fit[name] == pytest.approx(published, rel=0.01), name
    assert fits.spend is not None
    for name, published in cdnow.published_gamma_gamma.items():
        assert fits.spend.fit[name] == pytest.approx(published, rel=0.01), name
    assert all(se is not None and se > 0 for se in fits.purchases.fit.standard_errors)
    assert fits.purchases.fit.standard_errors[0] == pytest.approx(0.0126, rel=0.05)
    stored = predictive.latest_fit(crm, "bgnbd")
    assert stored is not None and stored.calibration_end == cdnow.calibration_end
    assert stored.fit.values == pytest.approx(fits.purchases.fit.values)
    assert stored.fitted_at == NOW and stored.time_unit_days == 7
    assert fits.scored == 2357

    result = validation.validate_models(
        crm, calibration_end=cdnow.calibration_end, horizon_days=273
    )
    assert result.actual_total == 1882
    model, formula = result.models["bgnbd"], result.models["formula"]
    assert model["predicted_total"] == pytest.approx(1653, abs=2)
    assert abs(model["predicted_total"] - 1882) < abs(formula["predicted_total"] - 1882)
    assert model["mae"] < formula["mae"]
    assert [row["frequency"] for row in result.calibration_plot][:3] == ["0", "1", "2"]
    assert sum(row["customers"] for row in result.calibration_plot) == 2357


def test_plugin_migrations_match_the_tables(db_url: str) -> None:
    """segmentation_0001 + 0002 create exactly the plugin's tables (both backends)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    crm = CRM.open(db_url, discover=False, plugins=[crmcore_segmentation.plugin], upgrade=True)
    try:
        assert crm.pending_migrations() == set()
        mine = MetaData(naming_convention=crm.metadata.naming_convention)
        for table in crm.metadata.tables.values():
            if table.name.startswith(("crm_", "segmentation_")):
                table.to_metadata(mine)
        with crm.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), mine)
        relevant = [d for d in diff if "segmentation_" in repr(d)]
        assert relevant == []
        names = set(crm.metadata.tables)
        assert {"segmentation_model_fits", "segmentation_predictions"} <= names
    finally:
        crm.close()
