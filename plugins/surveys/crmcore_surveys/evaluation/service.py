"""``evaluate``: fuzzy, grey relational, PCA and ACSI evaluation of a survey's answers.

Loads the answers with :mod:`.data` (SQL), computes with the pure modules
(:mod:`.fuzzy`, :mod:`.grey`, :mod:`.pca`, :mod:`.pls`, :mod:`.acsi`) and returns the
typed results of :mod:`.results`. The scope is the one of ``crm surveys report``:
every version of the survey (or ``version``), responses answered in ``period``,
optionally broken down by ``group_by`` (a customer field, ``attributes.<key>``,
``version``, ``channel`` or ``tag``). ``docs/plugins/surveys-evaluation.md`` writes
out every formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from crmcore import CRM, NotFoundError, Period, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore_surveys.evaluation.results import EvaluationResult, Header
from crmcore_surveys.evaluation.run_acsi import evaluate_acsi
from crmcore_surveys.evaluation.run_fuzzy import evaluate_fuzzy
from crmcore_surveys.evaluation.run_scores import evaluate_grey, evaluate_pca
from crmcore_surveys.scorer import Scope, Scorer
from crmcore_surveys.tables import surveys_table

#: The evaluation methods.
METHODS = ("fuzzy", "grey", "pca", "acsi")

#: The options each method takes (besides version, period and group_by).
OPTIONS: Mapping[str, tuple[str, ...]] = {
    "fuzzy": ("weights", "ahp_matrix", "operator", "grades", "criteria", "criteria_weights"),
    "grey": ("rho", "normalisation", "reference"),
    "pca": ("retain",),
    "acsi": ("mapping", "scheme", "bootstrap", "seed", "level"),
}


@requires(Action.REPORT)  # an aggregate over every respondent, as survey_report
def evaluate(
    crm: CRM,
    survey_key: str,
    method: str,
    *,
    version: int | None = None,
    period: Period | None = None,
    group_by: str | None = None,
    ctx: UnitOfWork | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate survey ``survey_key`` with ``method`` (``fuzzy``, ``grey``, ``pca``, ``acsi``).

    Options by method (:data:`OPTIONS`):

    * fuzzy: ``weights`` (``declared``, ``ahp``, ``entropy``; default the survey's
      weighting), ``ahp_matrix``, ``operator`` (``weighted`` M(.,+), default, or
      ``maxmin`` M(^,v)), ``grades`` (membership functions: a list of
      ``{"name", "points": [a, b, c(, d)], "value"}``; default the scale's points),
      ``criteria`` (criterion -> dimensions: two levels), ``criteria_weights``
      (criterion -> weight, or an AHP matrix in the order of ``criteria``);
    * grey: ``rho`` (0 < rho <= 1, default 0.5), ``normalisation`` (``minmax``, default,
      or ``mean``), ``reference`` (with ``group_by``: ``ideal``, default, or ``best``);
    * pca: ``retain`` (``kaiser``, default, or a cumulative share in (0, 1]);
    * acsi: ``mapping`` (latent variable -> question ids; default by dimension name),
      ``scheme`` (``centroid``, default, ``factorial``, ``path``), ``bootstrap`` (resamples,
      default 0), ``seed``, ``level`` (default 0.95).

    Raises NotFoundError for an unknown survey or version, ValidationError for an
    unknown method or option, a bad option value, or answers the method cannot use
    (too few respondents, a dimension without variation ...).
    """
    if method not in METHODS:
        raise ValidationError(
            f"method: {method!r} is not one of: {', '.join(METHODS)}", field="method"
        )
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        raise ValidationError(
            f"{unknown[0]}: not an option of the {method} method "
            f"(it takes: {', '.join(OPTIONS[method])})",
            field=unknown[0],
        )
    with crm.reading(ctx) as uow:
        surveys = surveys_table(crm.metadata)
        known = uow.connection.execute(
            select(surveys.c.version).where(surveys.c.key == survey_key)
        ).scalars()
        versions_known = set(known)
        if not versions_known:
            raise NotFoundError(f"survey: no survey {survey_key!r}")
        if version is not None and version not in versions_known:
            raise NotFoundError(f"survey: no survey {survey_key!r} version {version}")
        scorer = Scorer(crm, uow.connection, Scope(survey_key, version, period))
        grouped = scorer.grouped_by(group_by) if group_by is not None else None
        versions = scorer.versions()
        if not versions:
            raise ValidationError(
                f"responses: survey {survey_key!r} has no responses in scope", field="responses"
            )
        header = Header(survey_key, version, group_by, int(scorer.responses().get(None, 0)))
        if method == "fuzzy":
            return evaluate_fuzzy(scorer, grouped, versions, header, **options)
        if method == "grey":
            return evaluate_grey(scorer, grouped, versions, header, **options)
        if method == "pca":
            return evaluate_pca(scorer, grouped, versions, header, **options)
        return evaluate_acsi(scorer, grouped, versions, header, **options)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
