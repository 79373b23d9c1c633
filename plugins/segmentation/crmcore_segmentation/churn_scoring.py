"""Churn scoring in Python: the exact score and the reasons of each candidate row.

The definitions are in :mod:`.churn`; the SQL there picks the candidates and this
module scores them exactly, asking the plugins for their signals once per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from crmcore import CRM
from crmcore_segmentation.intervals import MIN_INTERVALS, overdue
from crmcore_segmentation.settings import ChurnSettings

_SLACK = 1e-9


@frozen
class ChurnAssessment:
    """One customer's churn score, its parts and the reasons, strongest first."""

    customer_id: int
    stage: str
    score: float
    frequency_drop: float
    inactivity: float
    plugins: float
    recency_days: int
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "customer_id": self.customer_id,
            "stage": self.stage,
            "score": self.score,
            "frequency_drop": self.frequency_drop,
            "inactivity": self.inactivity,
            "plugins": self.plugins,
            "recency_days": self.recency_days,
            "reasons": list(self.reasons),
        }


def _drop(recent: int, baseline: int, churn: ChurnSettings) -> float:
    if baseline < churn.min_baseline_purchases:
        return 0.0
    drop = 1.0 - (recent / churn.recent_days) / (baseline / churn.baseline_days)
    return drop if drop >= churn.drop_threshold else 0.0


def _inactivity(recency: int, churn: ChurnSettings) -> float:
    if recency < churn.inactivity_days:
        return 0.0
    return min(1.0, recency / (2 * churn.inactivity_days))


def assess_rows(rows: Sequence[Any], crm: CRM, churn: ChurnSettings) -> list[ChurnAssessment]:
    """Exact scores of one batch of candidate rows (one ``crm.churn_signals`` call)."""
    signals: dict[int, list[tuple[float, str]]] = defaultdict(list)
    if churn.weight_plugins > 0 and rows:
        for signal in crm.churn_signals([int(r.customer_id) for r in rows]):
            signals[signal.customer_id].append((signal.weight, f"{signal.source}: {signal.reason}"))
    found = []
    for row in rows:
        cid = int(row.customer_id)
        by_interval = row.intervals is not None and int(row.intervals) >= MIN_INTERVALS
        if by_interval:
            drop = overdue(int(row.recency_days), float(row.median_interval_days))
        else:
            drop = _drop(int(row.recent), int(row.baseline), churn)
        inactive = _inactivity(int(row.recency_days), churn)
        plugin = min(1.0, sum(w for w, _ in signals.get(cid, [])))
        score = (
            churn.weight_frequency_drop * drop
            + churn.weight_inactivity * inactive
            + churn.weight_plugins * plugin
        )
        if score + _SLACK < churn.threshold:
            continue
        reasons: list[tuple[float, str]] = []
        if inactive:
            reasons.append(
                (churn.weight_inactivity * inactive, f"no purchase for {row.recency_days} days")
            )
        if drop and by_interval:
            reasons.append(
                (
                    churn.weight_frequency_drop * drop,
                    f"overdue: {row.recency_days} days since the last purchase, "
                    f"{int(row.recency_days) / float(row.median_interval_days):.1f} x the usual "
                    f"{float(row.median_interval_days):g} days between purchases",
                )
            )
        elif drop:
            reasons.append(
                (
                    churn.weight_frequency_drop * drop,
                    f"purchase rate down {drop * 100:.0f}% vs own baseline ({row.recent} in "
                    f"{churn.recent_days} d, {row.baseline} in the {churn.baseline_days} d before)",
                )
            )
        for weight, text in sorted(signals.get(cid, []), key=lambda s: (-s[0], s[1])):
            reasons.append((churn.weight_plugins * weight, text))
        reasons.sort(key=lambda r: -r[0])
        found.append(
            ChurnAssessment(
                customer_id=cid,
                stage=str(row.stage),
                score=round(score, 4),
                frequency_drop=round(drop, 4),
                inactivity=round(inactive, 4),
                plugins=round(plugin, 4),
                recency_days=int(row.recency_days),
                reasons=tuple(text for _, text in reasons),
            )
        )
    return found
