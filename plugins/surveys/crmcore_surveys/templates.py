"""Built-in survey templates: NPS, CSAT, CES, multi-dimension, SERVQUAL and B2B relationship.

``template(name)`` returns a fresh, valid definition (a plain dict) that
:func:`crmcore_surveys.catalog.create_survey` accepts; change ``key`` to create
several surveys from one template.

Templates are versioned (:data:`TEMPLATE_VERSIONS`); ``template(name, version=v)``
returns an earlier edition. A survey made from an earlier edition moves to the
current one with :func:`~crmcore_surveys.catalog.update_survey`: once it has
responses that stores a new survey version, and the old responses keep the
version (and the wording) they answered.

* ``b2b`` version 2 (issue 18): the acceptance/recognition item asks for the
  customer's recognition of our products and services, as the dimension is
  defined; version 1 asked whether *we* value the customer as a partner.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from crmcore.errors import NotFoundError
from crmcore_surveys.evaluation.acsi_template import ACSI

_AGREE_7 = {"1": "strongly disagree", "4": "neutral", "7": "strongly agree"}

NPS: Mapping[str, Any] = {
    "key": "nps",
    "title": "Net Promoter Score",
    "description": "How likely customers are to recommend us (0-10), and why.",
    "questions": [
        {
            "id": "recommend",
            "type": "rating",
            "text": "How likely are you to recommend us to a friend or colleague?",
            "scale": {"min": 0, "max": 10, "labels": {"0": "not at all likely", "10": "extremely"}},
            "metric": "nps",
        },
        {"id": "reason", "type": "text", "text": "What is the main reason for your score?"},
    ],
}

CSAT: Mapping[str, Any] = {
    "key": "csat",
    "title": "Customer satisfaction (CSAT)",
    "questions": [
        {
            "id": "satisfaction",
            "type": "rating",
            "text": "How satisfied were you with your recent experience?",
            "scale": {
                "min": 1,
                "max": 5,
                "labels": {"1": "very dissatisfied", "5": "very satisfied"},
            },
            "metric": "csat",
        },
        {"id": "comment", "type": "text", "text": "Anything we could do better?"},
    ],
}

CES: Mapping[str, Any] = {
    "key": "ces",
    "title": "Customer effort score (CES 2.0)",
    "description": "Agreement on a 1-7 scale: higher means less effort.",
    "questions": [
        {
            "id": "easy",
            "type": "rating",
            "text": "The company made it easy for me to handle my issue.",
            "scale": {"min": 1, "max": 7, "labels": _AGREE_7},
            "metric": "ces",
        },
        {"id": "comment", "type": "text", "text": "What made it easy or hard?"},
    ],
}


def _rating(qid: str, text: str, dimension: str, weight: float, top: int = 5) -> dict[str, Any]:
    return {
        "id": qid,
        "type": "rating",
        "text": text,
        "scale": {"min": 1, "max": top},
        "dimension": dimension,
        "weight": weight,
    }


SATISFACTION: Mapping[str, Any] = {
    "key": "satisfaction",
    "title": "Customer satisfaction by dimension",
    "description": "Overall satisfaction and five dimensions on a 1-5 scale, weighted.",
    "questions": [
        {
            "id": "overall",
            "type": "rating",
            "text": "Overall, how satisfied are you with us?",
            "scale": {"min": 1, "max": 5},
            "metric": "csat",
            "overall": True,
        },
        _rating("product_quality", "Quality of the products", "product quality", 0.30),
        _rating("service", "Friendliness and competence of our staff", "service", 0.25),
        _rating("communication", "Clarity of our communication", "communication", 0.15),
        _rating("response_speed", "Speed of our responses", "response speed", 0.15),
        _rating("price", "Value for money", "price", 0.15),
        {
            "id": "channel",
            "type": "single_choice",
            "text": "How do you usually buy from us?",
            "options": ["web", "store", "app", "phone", "sales representative"],
        },
        {
            "id": "improve",
            "type": "multiple_choice",
            "text": "What should we improve first? (up to two)",
            "options": ["product range", "delivery", "support", "prices", "website"],
            "max_choices": 2,
        },
        {"id": "comment", "type": "text", "text": "Anything else?"},
    ],
}

_SERVQUAL_ITEMS = [
    ("tangibles", "t1", "modern-looking equipment and facilities"),
    ("tangibles", "t2", "neat, professional-looking employees"),
    ("reliability", "r1", "doing what was promised by the promised time"),
    ("reliability", "r2", "performing the service right the first time"),
    ("responsiveness", "s1", "prompt service"),
    ("responsiveness", "s2", "willingness to help"),
    ("assurance", "a1", "employees who instil confidence"),
    ("assurance", "a2", "courteous employees"),
    ("empathy", "e1", "individual attention"),
    ("empathy", "e2", "understanding of specific needs"),
]

SERVQUAL: Mapping[str, Any] = {
    "key": "servqual",
    "title": "Service quality (SERVQUAL): expectations vs perceptions",
    "description": "Five dimensions, each item asked as expectation and as perception (1-7).",
    "questions": [
        *(
            {
                "id": f"exp_{code}",
                "type": "rating",
                "text": f"An excellent company would offer {text}.",
                "scale": {"min": 1, "max": 7, "labels": _AGREE_7},
                "dimension": dimension,
            }
            for dimension, code, text in _SERVQUAL_ITEMS
        ),
        *(
            {
                "id": f"per_{code}",
                "type": "rating",
                "text": f"We offer {text}.",
                "scale": {"min": 1, "max": 7, "labels": _AGREE_7},
                "dimension": dimension,
            }
            for dimension, code, text in _SERVQUAL_ITEMS
        ),
    ],
    "pairs": [
        {"expectation": f"exp_{code}", "perception": f"per_{code}"}
        for _, code, _ in _SERVQUAL_ITEMS
    ],
}

#: (question id, dimension, text) of the six B2B relationship dimensions, each item
#: asking what its dimension is defined as (docs/plugins/surveys.md, Templates).
_B2B_DIMENSIONS = [
    (
        "acceptance",
        "acceptance/recognition",
        "Your company recognises the value of our products and services.",
    ),
    ("participation", "activity participation", "Your company takes part in our joint activities."),
    ("information", "information flow", "Information flows timely and completely between us."),
    ("guidance", "day-to-day guidance", "Our day-to-day guidance helps your team."),
    ("project_support", "project support", "We support your projects effectively."),
    ("preference", "competitive preference", "You prefer us over competing suppliers."),
]


def _b2b(dimensions: list[tuple[str, str, str]]) -> Mapping[str, Any]:
    return {
        "key": "b2b",
        "title": "B2B relationship assessment",
        "description": "Six relationship dimensions on a 1-7 agreement scale, AHP-weighted.",
        "questions": [
            {
                "id": "overall",
                "type": "rating",
                "text": "Overall, how satisfied are you with the relationship?",
                "scale": {"min": 1, "max": 7},
                "overall": True,
            },
            *(
                {
                    "id": qid,
                    "type": "rating",
                    "text": text,
                    "scale": {"min": 1, "max": 7, "labels": _AGREE_7},
                    "dimension": dimension,
                }
                for qid, dimension, text in dimensions
            ),
            {"id": "comment", "type": "text", "text": "What should change in our relationship?"},
        ],
        # Pairwise importance of the dimensions (Saaty's 1-9 scale), consistency ratio < 0.1.
        "weighting": {
            "method": "ahp",
            "dimensions": [d for _, d, _ in dimensions],
            "matrix": [
                [1, 1 / 2, 1 / 3, 1, 1 / 3, 1 / 2],
                [2, 1, 1 / 2, 2, 1 / 2, 1],
                [3, 2, 1, 3, 1, 2],
                [1, 1 / 2, 1 / 3, 1, 1 / 3, 1 / 2],
                [3, 2, 1, 3, 1, 2],
                [2, 1, 1 / 2, 2, 1 / 2, 1],
            ],
        },
    }


B2B: Mapping[str, Any] = _b2b(_B2B_DIMENSIONS)
#: The b2b template's version 1 (before issue 18): its acceptance item asked the wrong way round.
B2B_V1: Mapping[str, Any] = _b2b(
    [
        (
            "acceptance",
            "acceptance/recognition",
            "We value and recognise your company as a partner.",
        ),
        *_B2B_DIMENSIONS[1:],
    ]
)

#: Every built-in template by name.
TEMPLATES: Mapping[str, Mapping[str, Any]] = {
    "nps": NPS,
    "csat": CSAT,
    "ces": CES,
    "satisfaction": SATISFACTION,
    "servqual": SERVQUAL,
    "b2b": B2B,
    "acsi": ACSI,
}


#: The current version of each built-in template.
TEMPLATE_VERSIONS: Mapping[str, int] = {name: 1 for name in TEMPLATES} | {"b2b": 2}

#: Earlier editions of the templates, by (name, version).
EDITIONS: Mapping[tuple[str, int], Mapping[str, Any]] = {("b2b", 1): B2B_V1}


def template(name: str, version: int | None = None) -> dict[str, Any]:
    """A fresh copy of the built-in template ``name`` (its current version, or ``version``).

    NotFoundError lists the names, or the versions of ``name``.
    """
    if name not in TEMPLATES:
        raise NotFoundError(f"template: no template {name!r}; choose one of {', '.join(TEMPLATES)}")
    current = TEMPLATE_VERSIONS.get(name, 1)
    if version is None or version == current:
        return copy.deepcopy(dict(TEMPLATES[name]))
    if (name, version) not in EDITIONS:
        versions = sorted({v for n, v in EDITIONS if n == name} | {current})
        raise NotFoundError(
            f"template: {name!r} has no version {version}; "
            f"its versions are {', '.join(map(str, versions))}"
        )
    return copy.deepcopy(dict(EDITIONS[(name, version)]))
