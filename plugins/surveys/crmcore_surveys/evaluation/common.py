"""Helpers the evaluation methods share: the versions and dimensions in scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crmcore import ValidationError
from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.evaluation.results import Header


def latest_version(versions: Sequence[SurveyVersion]) -> SurveyVersion:
    """The latest of the versions in scope."""
    return max(versions, key=lambda v: v.version)


def index_dimensions(versions: Sequence[SurveyVersion]) -> list[str]:
    """The index dimensions: the latest version's in order, then older versions' new ones."""
    ordered = sorted(versions, key=lambda v: -v.version)
    found: list[str] = []
    for v in ordered:
        for d in v.definition.dimensions:
            if d not in found:
                found.append(d)
    if not found:
        raise ValidationError(
            f"survey: {ordered[0].key!r} has no dimensions (rating questions with a dimension)",
            field="survey",
        )
    return found


def floats(values: Any) -> tuple[float, ...]:
    """An array (any shape) as a flat tuple of Python floats."""
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def with_responses(header: Header, n: int) -> Header:
    """``header`` counting ``n`` responses (those the method used)."""
    return Header(header.survey, header.version, header.by, n)
