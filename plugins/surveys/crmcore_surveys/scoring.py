"""Survey reports: every score of a survey, and every survey's figures for a period.

Every figure is one ``GROUP BY`` returning counts, sums and sums of squares (the same
statement on SQLite and PostgreSQL), built on a :class:`~crmcore_surveys.scorer.Scorer`
by :mod:`crmcore_surveys.ratings` (NPS, CSAT, CES, questions),
:mod:`crmcore_surveys.dimensions` (dimensions, index, gaps, drivers) and
:mod:`crmcore_surveys.weighting` (index weights); :mod:`crmcore_surveys.statistics`
only turns them into means, shares and 95% intervals; :mod:`crmcore_surveys.trends`
cuts the trend into calendar buckets. Definitions (a few rows) are read to learn
weights and which question is the overall one. The docs page
``docs/plugins/surveys.md`` states every formula.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from crmcore import CRM, NotFoundError, Period, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.reporting import ReportChart
from crmcore.scoping import enforce_declared, requires
from crmcore_surveys import dimensions, ratings
from crmcore_surveys.definitions import WEIGHTING_METHODS
from crmcore_surveys.scorer import Scope, Scorer
from crmcore_surveys.statistics import proportion_estimate
from crmcore_surveys.tables import surveys_table
from crmcore_surveys.trends import trend_buckets
from crmcore_surveys.weighting import question_weights

#: The most bootstrap resamples a report takes.
MAX_BOOTSTRAP = 100_000


def _one(mapping: Mapping[str | None, Any]) -> Any:
    return mapping.get(None)


@requires(Action.REPORT)
def survey_report(
    crm: CRM,
    key: str,
    *,
    version: int | None = None,
    period: Period | None = None,
    by: str | None = None,
    trend: str | None = "month",
    weighting: str | None = None,
    ahp_matrix: Sequence[Sequence[float]] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """Every score of survey ``key`` (all versions, or ``version``) as JSON-safe data.

    ``period`` limits responses (by ``answered_at``) and invitations (by ``sent_at``);
    ``by`` adds a breakdown (customer field, ``attributes.<key>``, ``version``,
    ``channel`` or ``tag``); ``trend`` is the trend granularity (``None``: no trend);
    ``weighting`` overrides the survey's index weighting (``declared``, ``entropy``,
    ``ahp``), ``ahp_matrix`` its AHP matrix (CR > 0.1 refused). ``importance``
    holds the regression-based driver analysis and the importance-performance
    grid (:mod:`crmcore_surveys.importance`), its intervals from ``bootstrap``
    resamples (0: none) seeded with ``seed``. Raises NotFoundError for an
    unknown survey, ValidationError for a bad option.
    """
    _check_bootstrap(bootstrap, seed)
    if weighting is not None and weighting not in WEIGHTING_METHODS:
        raise ValidationError(
            f"weighting: {weighting!r} is not one of: {', '.join(WEIGHTING_METHODS)}",
            field="weighting",
        )
    if ahp_matrix is not None and weighting not in (None, "ahp"):
        raise ValidationError("ahp_matrix: only with the ahp weighting", field="ahp_matrix")
    with crm.reading(ctx) as uow:
        surveys = surveys_table(crm.metadata)
        known = uow.connection.execute(
            select(surveys.c.version, surveys.c.title)
            .where(surveys.c.key == key)
            .order_by(surveys.c.version)
        ).all()
        if not known:
            raise NotFoundError(f"survey: no survey {key!r}")
        if version is not None and version not in {r.version for r in known}:
            raise NotFoundError(f"survey: no survey {key!r} version {version}")
        scorer = Scorer(crm, uow.connection, Scope(key, version, period))
        versions = scorer.versions()
        invitations = scorer.invitations()
        responses = _one(scorer.responses()) or 0
        report: dict[str, Any] = {
            "survey": {
                "key": key,
                "title": known[-1].title,
                "versions": [r.version for r in known],
                "version": version,
            },
            "period": None
            if period is None
            else {"start": period.start.isoformat(), "end": period.end.isoformat()},
            "invitations": invitations["sent"],
            "invitations_answered": invitations["answered"],
            "response_rate": proportion_estimate(
                invitations["sent"], invitations["answered"]
            ).to_dict()
            if invitations["sent"]
            else None,
            "responses": responses,
            "nps": _one(ratings.nps(scorer)),
            "csat": _one(ratings.csat(scorer)),
            "ces": _one(ratings.ces(scorer)),
            "questions": ratings.questions(scorer) if versions else [],
            "dimensions": _one(dimensions.dimension_means(scorer)) or [],
            "index": None,
            "gaps": dimensions.gaps(scorer) if versions else [],
            "drivers": None,
            "importance": None,
            "trend": [],
            "breakdown": None,
        }
        if not versions:
            return report
        has_dimensions = any(v.definition.dimensions for v in versions)
        latest = max(versions, key=lambda v: v.version)
        method = weighting or latest.definition.weighting.method
        weights: dict[tuple[int, str], float] = {}
        if has_dimensions:
            weights, info = question_weights(scorer, versions, method, ahp_matrix)
            index = _one(dimensions.index(scorer, weights))
            report["index"] = None if index is None else {**index, **info}
            for item in report["dimensions"]:
                item["weight"] = info["weights"].get(item["dimension"])
            overall = {
                v.id: q for v in versions if (q := dimensions.overall_question(v)) is not None
            }
            report["drivers"] = {
                "overall": sorted(set(overall.values())),
                "items": dimensions.drivers(scorer, overall),
            }
            report["importance"] = _importance(
                scorer, overall, report["dimensions"], bootstrap, seed
            )
        if trend is not None:
            span = (period.start, period.end) if period is not None else scorer.answered_range()
            if span is not None:
                start, end = span
                if period is None:
                    end = end + timedelta(microseconds=1)
                buckets = trend_buckets(start, end, trend)
                report["trend"] = _grouped_rows(
                    scorer.by_period(buckets), [b[0] for b in buckets], weights, has_dimensions
                )
                report["trend_granularity"] = trend
        if by is not None:
            grouped = scorer.grouped_by(by)
            counts = grouped.responses()
            report["breakdown"] = {
                "by": by,
                "groups": _grouped_rows(
                    grouped, sorted(k for k in counts if k is not None), weights, has_dimensions
                ),
            }
    return report


def _check_bootstrap(bootstrap: Any, seed: Any) -> None:
    for name, value, low in (("bootstrap", bootstrap, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(
                f"{name}: must be a whole number >= {low}, got {value!r}", field=name
            )
    if bootstrap > MAX_BOOTSTRAP:
        raise ValidationError(
            f"bootstrap: at most {MAX_BOOTSTRAP} resamples, got {bootstrap}", field="bootstrap"
        )


def _importance(
    scorer: Scorer,
    overall: Mapping[int, str],
    dimension_rows: Sequence[Mapping[str, Any]],
    bootstrap: int,
    seed: int,
) -> dict[str, Any] | None:
    """Relative importance (regression) and the importance-performance grid."""
    from crmcore_surveys import importance  # numpy: only when a report needs it

    names = [str(d["dimension"]) for d in dimension_rows]
    if not overall or not names:
        return None
    data = importance.driver_matrix(scorer, overall, names)
    result = importance.relative_importance(data, names, resamples=bootstrap, seed=seed)
    result["overall"] = sorted(set(overall.values()))
    result["grid"] = importance.ipa_grid(
        {item["dimension"]: item["importance"] for item in result["items"]},
        {str(d["dimension"]): d["score"] for d in dimension_rows},
    )
    return result


def _grouped_rows(
    scorer: Scorer,
    labels: Sequence[str],
    weights: Mapping[tuple[int, str], float],
    has_dimensions: bool,
) -> list[dict[str, Any]]:
    counts = scorer.responses()
    nps, csat, ces = ratings.nps(scorer), ratings.csat(scorer), ratings.ces(scorer)
    index = dimensions.index(scorer, weights) if has_dimensions else {}
    rows = []
    for label in labels:
        rows.append(
            {
                "group": label,
                "responses": counts.get(label, 0),
                "nps": nps.get(label),
                "csat": csat.get(label),
                "ces": ces.get(label),
                "index": index.get(label),
            }
        )
    return rows


@requires(Action.REPORT)
def overall_metrics(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> dict[str, Any]:
    """Every survey's figures for ``period``: NPS, CSAT %, CES, responses, response rate."""
    with crm.reading(ctx) as uow:
        scorer = Scorer(crm, uow.connection, Scope(period=period))
        nps, csat, ces = (
            _one(ratings.nps(scorer)),
            _one(ratings.csat(scorer)),
            _one(ratings.ces(scorer)),
        )
        invitations = scorer.invitations()
        responses = _one(scorer.responses()) or 0
        low = uow.connection.execute(
            select(func.count())
            .select_from(scorer.r)
            .where(
                scorer.r.c.alert_metric.is_not(None),
                scorer.r.c.answered_at >= period.start,
                scorer.r.c.answered_at < period.end,
            )
        ).scalar_one()
    sent = invitations["sent"]
    return {
        "responses": responses,
        "invitations_sent": sent,
        "response_rate_pct": None if not sent else 100.0 * invitations["answered"] / sent,
        "nps": None if nps is None else nps["value"],
        "nps_responses": 0 if nps is None else nps["n"],
        "csat_pct": None if csat is None else csat["value"],
        "ces": None if ces is None else ces["value"],
        "low_scores": int(low),
    }


@requires(Action.REPORT)
def survey_drivers(
    crm: CRM,
    key: str,
    *,
    version: int | None = None,
    period: Period | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    ctx: UnitOfWork | None = None,
) -> dict[str, Any]:
    """The driver analysis of survey ``key``: Pearson drivers, relative importance, IPA grid.

    The parts of :func:`survey_report` about drivers (``survey``, ``period``,
    ``responses``, ``dimensions``, ``drivers``, ``importance``), same options.
    """
    report = survey_report(
        crm,
        key,
        version=version,
        period=period,
        trend=None,
        bootstrap=bootstrap,
        seed=seed,
        ctx=ctx,
    )
    return {
        name: report[name]
        for name in ("survey", "period", "responses", "dimensions", "drivers", "importance")
    }


@requires(Action.REPORT)
def report_charts(crm: CRM, period: Period, *, ctx: UnitOfWork | None = None) -> list[ReportChart]:
    """An importance-performance grid per survey with dimension answers in ``period``.

    x = the dimension's score (0-100), y = its importance (relative-weight share of
    R^2, %), guides at the means; point estimates only (no bootstrap).
    """
    with crm.reading(ctx) as uow:
        scorer = Scorer(crm, uow.connection, Scope(period=period))
        keys = uow.connection.execute(
            select(scorer.s.c.key)
            .distinct()
            .select_from(scorer.answers_from())
            .where(*scorer.conditions(), scorer.index_question())
            .order_by(scorer.s.c.key)
        ).scalars()
        charts = []
        for key in list(keys):
            report = survey_report(crm, key, period=period, trend=None, bootstrap=0, ctx=uow)
            grid = (report["importance"] or {}).get("grid") or {}
            if not grid.get("items"):
                continue
            quadrants: dict[str, list[str]] = {}
            for item in grid["items"]:
                quadrants.setdefault(item["quadrant"], []).append(item["dimension"])
            charts.append(
                ReportChart(
                    title=f"Importance-performance grid: {key} ({report['survey']['title']})",
                    kind="scatter",
                    x_labels=(),
                    points=[
                        (item["dimension"], item["performance"], item["importance"])
                        for item in grid["items"]
                    ],
                    axes=("performance: dimension score 0-100", "importance: % of R^2"),
                    guides=(grid["performance_split"], grid["importance_split"]),
                    unit="%",
                    note="; ".join(f"{q}: {', '.join(names)}" for q, names in quadrants.items())
                    + f" (n = {report['importance']['n']} complete responses, "
                    "relative weights; split at the means)",
                )
            )
    return charts


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
