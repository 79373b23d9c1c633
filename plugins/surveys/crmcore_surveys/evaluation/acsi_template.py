"""The ``acsi`` survey template: the standard ACSI question set (Fornell et al., 1996).

Fifteen 1-10 ratings and a yes/no complaint question, each question's ``dimension``
naming its latent variable (:data:`crmcore_surveys.evaluation.acsi.LATENT`), so that
``crm surveys evaluate KEY --method acsi`` maps them without a mapping. The overall
satisfaction question is the survey's overall question. Plain data: importing this
module loads nothing else (``templates.py`` merges it into ``TEMPLATES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_LOW_HIGH = {"1": "very low", "10": "very high"}


def _ten(qid: str, dimension: str, text: str, labels: Mapping[str, str] | None = None) -> Any:
    return {
        "id": qid,
        "type": "rating",
        "text": text,
        "scale": {"min": 1, "max": 10, "labels": dict(labels or _LOW_HIGH)},
        "dimension": dimension,
    }


ACSI: Mapping[str, Any] = {
    "key": "acsi",
    "title": "Customer satisfaction index (ACSI model)",
    "description": (
        "The ACSI question set: expectations, perceived quality, perceived value, "
        "satisfaction, complaints and loyalty, on 1-10 scales (complaints yes/no)."
    ),
    "questions": [
        _ten(
            "exp_overall",
            "expectations",
            "Before you became a customer, what did you expect of our overall quality?",
        ),
        _ten(
            "exp_customization",
            "expectations",
            "Before you became a customer, how well did you expect us to meet your "
            "personal requirements?",
        ),
        _ten(
            "exp_reliability",
            "expectations",
            "Before you became a customer, how reliable did you expect us to be "
            "(how often would things go wrong)?",
        ),
        _ten("pq_overall", "perceived quality", "How do you rate our overall quality?"),
        _ten(
            "pq_customization",
            "perceived quality",
            "How well have we met your personal requirements?",
        ),
        _ten(
            "pq_reliability",
            "perceived quality",
            "How reliable have we been (how often have things gone wrong)?",
            {"1": "things went wrong very often", "10": "nothing ever went wrong"},
        ),
        _ten(
            "pv_price_given_quality",
            "perceived value",
            "Given the quality, how do you rate the price you pay?",
            {"1": "very poor value", "10": "very good value"},
        ),
        _ten(
            "pv_quality_given_price",
            "perceived value",
            "Given the price you pay, how do you rate our quality?",
            {"1": "very poor value", "10": "very good value"},
        ),
        {
            **_ten(
                "satisfaction",
                "satisfaction",
                "Overall, how satisfied are you with us?",
                {"1": "very dissatisfied", "10": "very satisfied"},
            ),
            "overall": True,
        },
        _ten(
            "confirmation",
            "satisfaction",
            "To what extent have we fallen short of or exceeded your expectations?",
            {"1": "fallen far short", "10": "far exceeded"},
        ),
        _ten(
            "ideal",
            "satisfaction",
            "Imagine an ideal company of our kind: how close to it are we?",
            {"1": "very far", "10": "very close"},
        ),
        {
            "id": "complained",
            "type": "rating",
            "text": "Have you complained to us, formally or informally, in the last year?",
            "scale": {"min": 0, "max": 1, "labels": {"0": "no", "1": "yes"}},
            "dimension": "complaints",
        },
        _ten(
            "repurchase",
            "loyalty",
            "How likely are you to buy from us again?",
            {"1": "very unlikely", "10": "very likely"},
        ),
        _ten(
            "price_tolerance",
            "loyalty",
            "If our prices rose by 5%, how likely would you still be to buy from us?",
            {"1": "very unlikely", "10": "very likely"},
        ),
        {"id": "comment", "type": "text", "text": "What should we improve first?"},
    ],
}
