"""The typed results of :func:`crmcore_surveys.evaluation.service.evaluate` (``to_dict()``).

Every value is a plain Python value (floats, strings, tuples, mappings), so
``to_dict()`` is JSON-safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (tuples become lists)."""
        return attrs.asdict(self)  # type: ignore[arg-type]


@frozen
class Header(_Dict):
    """What was evaluated: the survey, its version (``None``: all), breakdown, respondents."""

    survey: str
    version: int | None
    by: str | None
    responses: int


# --- fuzzy -----------------------------------------------------------------------------


@frozen
class Grade(_Dict):
    """A grade of the evaluation set: its name, value on 0-100, and label or function."""

    name: str
    value: float
    label: str | None = None
    membership: tuple[float, ...] | None = None


@frozen
class FuzzyDimension(_Dict):
    """A dimension's answers, weight and membership row ``r_i``."""

    name: str
    answers: int
    weight: float
    membership: tuple[float, ...]
    criterion: str | None = None


@frozen
class FuzzyCriterion(_Dict):
    """A criterion of the two-level evaluation: weight, dimensions, ``B_k``, grade, score."""

    name: str
    weight: float
    dimensions: tuple[str, ...]
    within_weights: tuple[float, ...]
    vector: tuple[float, ...]
    grade: str
    score: float


@frozen
class FuzzyEvaluation(_Dict):
    """``B`` (``raw`` before normalisation), its maximum-membership grade and 0-100 score."""

    answers: int
    vector: tuple[float, ...]
    raw: tuple[float, ...]
    grade: str
    score: float
    dimensions: tuple[FuzzyDimension, ...]
    criteria: tuple[FuzzyCriterion, ...] = ()


@frozen
class FuzzyResult(_Dict):
    """Fuzzy comprehensive evaluation of a survey (and of each group with a breakdown)."""

    header: Header
    operator: str
    weighting: Mapping[str, Any]
    grades: tuple[Grade, ...]
    overall: FuzzyEvaluation
    groups: Mapping[str, FuzzyEvaluation] = field(factory=dict)
    incomplete_groups: tuple[str, ...] = ()
    method: str = "fuzzy"


# --- grey ------------------------------------------------------------------------------


@frozen
class GreyItem(_Dict):
    """A compared sequence (a dimension, or a group): grade, rank (1: most related), score.

    ``score`` is its mean 0-100 score; ``coefficients`` (group mode) the relational
    coefficient and ``scores`` the score on each dimension.
    """

    name: str
    grade: float
    rank: int
    score: float
    n: int
    coefficients: Mapping[str, float] | None = None
    scores: Mapping[str, float] | None = None


@frozen
class GreyResult(_Dict):
    """Grey relational grades: of the dimensions to the overall answer, or of groups to a reference.

    ``mode`` is ``dimensions`` (reference: the overall question ``reference``) or
    ``groups`` (reference ``ideal``: 100 on every dimension, or ``best``: the best group's).
    """

    header: Header
    mode: str
    reference: str
    rho: float
    normalisation: str
    delta_min: float
    delta_max: float
    items: tuple[GreyItem, ...]
    incomplete_groups: tuple[str, ...] = ()
    method: str = "grey"


# --- pca -------------------------------------------------------------------------------


@frozen
class PCAComponent(_Dict):
    """One principal component: eigenvalue, explained and cumulative share, loadings."""

    number: int
    eigenvalue: float
    explained: float
    cumulative: float
    retained: bool
    loadings: Mapping[str, float]
    vector: Mapping[str, float]


@frozen
class PCADimension(_Dict):
    """A dimension's mean, SD, composite coefficient ``c_i`` and weight ``w_i``."""

    name: str
    mean: float
    sd: float
    coefficient: float
    weight: float


@frozen
class PCARespondent(_Dict):
    """A respondent's composite ``F`` (standardised) and 0-100 score ``S``."""

    response_id: int
    customer_id: int | None
    composite: float
    score: float


@frozen
class PCAGroup(_Dict):
    """Mean composite and score of a group's respondents."""

    group: str
    n: int
    composite: float
    score: float


@frozen
class PCAResult(_Dict):
    """Principal component analysis of the dimension scores, its weights and composite scores."""

    header: Header
    retain: str | float
    retained: int
    components: tuple[PCAComponent, ...]
    dimensions: tuple[PCADimension, ...]
    respondents: tuple[PCARespondent, ...]
    groups: tuple[PCAGroup, ...] = ()
    method: str = "pca"


# --- acsi ------------------------------------------------------------------------------


@frozen
class Interval(_Dict):
    """A bootstrap percentile interval and standard error."""

    low: float
    high: float
    se: float


@frozen
class ACSIIndicator(_Dict):
    """A question measuring a latent variable: outer weight, rescaled weight, loading."""

    question: str
    latent: str
    weight: float
    rescaled_weight: float
    loading: float
    mean: float
    sd: float
    scale_min: int
    scale_max: int
    loading_ci: Interval | None = None


@frozen
class ACSILatent(_Dict):
    """A latent variable: its questions, R^2 (``None``: exogenous), AVE and 0-100 index."""

    name: str
    questions: tuple[str, ...]
    r2: float | None
    ave: float
    index: float
    index_ci: Interval | None = None
    r2_ci: Interval | None = None


@frozen
class ACSIPath(_Dict):
    """A path coefficient with its total effect and bootstrap interval."""

    source: str
    target: str
    coefficient: float
    total_effect: float
    ci: Interval | None = None


@frozen
class ACSIGroup(_Dict):
    """The indices of a group's respondents (with the whole sample's weights)."""

    group: str
    n: int
    indices: Mapping[str, float]


@frozen
class ACSIResult(_Dict):
    """The ACSI model estimated by PLS path modelling, and its indices."""

    header: Header
    scheme: str
    iterations: int
    satisfaction_index: float
    latent: tuple[ACSILatent, ...]
    indicators: tuple[ACSIIndicator, ...]
    paths: tuple[ACSIPath, ...]
    bootstrap: Mapping[str, Any] | None = None
    groups: tuple[ACSIGroup, ...] = ()
    method: str = "acsi"


EvaluationResult = FuzzyResult | GreyResult | PCAResult | ACSIResult
