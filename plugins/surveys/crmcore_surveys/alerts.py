"""Low-score alerts: a response's satisfaction index and the alert it fires, if any."""

from __future__ import annotations

from collections.abc import Mapping

from crmcore_surveys.definitions import Definition
from crmcore_surveys.settings import Settings

#: Order in which a response's alert candidates win (one alert per response).
ALERT_PRIORITY = ("nps", "csat", "ces", "overall", "index", "rating")


def response_index(definition: Definition, ratings: Mapping[str, int]) -> float | None:
    """A response's weighted satisfaction index (0-100) over its answered index questions.

    ``sum v_q x_q / sum v_q`` with ``x_q = 100 (r - min) / (max - min)`` and the
    weights of :meth:`Definition.index_weights` (AHP weights when the survey declares
    them, else the declared ones). ``None`` when no index question was answered.
    """
    weights = definition.index_weights(definition.ahp_dimension_weights())
    total = weighted = 0.0
    for question in definition.index_questions:
        if question.id in ratings and weights.get(question.id, 0.0) > 0:
            assert question.scale_min is not None and question.scale_max is not None
            span = question.scale_max - question.scale_min
            x = 100.0 * (ratings[question.id] - question.scale_min) / span
            weighted += weights[question.id] * x
            total += weights[question.id]
    return weighted / total if total > 0 else None


def low_score(
    definition: Definition, ratings: Mapping[str, int], settings: Settings
) -> tuple[str, float, float] | None:
    """The (metric, score, threshold) of the response's alert, or ``None``.

    Candidates, each firing when ``score < threshold``: an ``nps`` answer (threshold
    ``alert_below`` or ``nps_threshold``); a ``csat``, ``ces`` or overall answer
    (``alert_below`` or ``min + low_score_percent% of the scale span``); the response's
    index (``index_threshold``); any other rating with ``alert_below``. The first
    firing in :data:`ALERT_PRIORITY` order wins (an overall answer reports metric
    ``rating``).
    """
    if not settings.low_score_alerts:
        return None
    found: dict[str, tuple[str, float, float]] = {}
    for question in definition.questions:
        if question.type != "rating" or question.id not in ratings:
            continue
        assert question.scale_min is not None and question.scale_max is not None
        score = float(ratings[question.id])
        span = question.scale_max - question.scale_min
        relative = question.scale_min + settings.low_score_percent / 100.0 * span
        if question.metric == "nps":
            slot, metric = "nps", "nps"
            threshold = (
                question.alert_below if question.alert_below is not None else settings.nps_threshold
            )
        elif question.metric in ("csat", "ces"):
            slot = metric = str(question.metric)
            threshold = question.alert_below if question.alert_below is not None else relative
        elif question.role == "overall":
            slot, metric = "overall", "rating"
            threshold = question.alert_below if question.alert_below is not None else relative
        elif question.alert_below is not None:
            slot, metric, threshold = "rating", "rating", question.alert_below
        else:
            continue
        if score < threshold and slot not in found:
            found[slot] = (metric, score, float(threshold))
    index = response_index(definition, ratings)
    if index is not None and index < settings.index_threshold:
        found["index"] = ("index", index, float(settings.index_threshold))
    for slot in ALERT_PRIORITY:
        if slot in found:
            return found[slot]
    return None
