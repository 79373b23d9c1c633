"""The ACSI model of a survey: mapping, PLS estimation, indices, bootstrap, groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crmcore import ValidationError
from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.evaluation import acsi, data, pls
from crmcore_surveys.evaluation.common import (
    latest_version,
    with_responses,
)
from crmcore_surveys.evaluation.results import (
    ACSIGroup,
    ACSIIndicator,
    ACSILatent,
    ACSIPath,
    ACSIResult,
    Header,
    Interval,
)
from crmcore_surveys.scorer import Scorer

#: Fewest complete respondents the ACSI model accepts.
ACSI_MIN_RESPONDENTS = 10
#: Largest bootstrap accepted.
MAX_BOOTSTRAP = 100_000


def _mapping(version: SurveyVersion, spec: Any) -> dict[str, list[str]]:
    """Latent variable -> question ids (model order), from ``spec`` or the dimensions."""
    definition = version.definition
    blocks: dict[str, list[str]] = {}
    if spec is None:
        for q in definition.questions:
            latent = acsi.latent_of(q.dimension) if q.type == "rating" else None
            if latent is not None:
                blocks.setdefault(latent, []).append(q.id)
        if not blocks:
            raise ValidationError(
                f"mapping: no question of {version.key!r} has a dimension naming an ACSI "
                f"latent variable ({', '.join(acsi.LATENT)}); give a mapping",
                field="mapping",
            )
    else:
        if not isinstance(spec, Mapping) or not spec:
            raise ValidationError(
                "mapping: expected an object of latent variable -> question ids", field="mapping"
            )
        used: dict[str, str] = {}
        for name, questions in spec.items():
            latent = acsi.latent_of(str(name))
            where = f"mapping.{name}"
            if latent is None:
                raise ValidationError(
                    f"{where}: not an ACSI latent variable ({', '.join(acsi.LATENT)})",
                    field=where,
                )
            if latent in blocks:
                raise ValidationError(f"{where}: {latent!r} is mapped twice", field=where)
            if not isinstance(questions, list | tuple) or not questions:
                raise ValidationError(f"{where}: expected a list of question ids", field=where)
            for qid in questions:
                question = definition.question(str(qid))
                if question is None or question.type != "rating":
                    raise ValidationError(
                        f"{where}: {qid!r} is not a rating question of {version.key!r}",
                        field=where,
                    )
                if qid in used:
                    raise ValidationError(
                        f"{where}: {qid!r} already measures {used[qid]!r}", field=where
                    )
                used[str(qid)] = latent
            blocks[latent] = [str(q) for q in questions]
    return {name: blocks[name] for name in acsi.LATENT if name in blocks}


def evaluate_acsi(
    scorer: Scorer,
    grouped: Scorer | None,
    versions: Sequence[SurveyVersion],
    header: Header,
    *,
    mapping: Any = None,
    scheme: str = pls.DEFAULT_SCHEME,
    bootstrap: Any = 0,
    seed: Any = None,
    level: Any = 0.95,
) -> ACSIResult:
    """The ACSI model by PLS path modelling, its indices and bootstrap intervals."""
    if scheme not in pls.SCHEMES:
        raise ValidationError(
            f"scheme: {scheme!r} is not one of: {', '.join(pls.SCHEMES)}", field="scheme"
        )
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int):
        raise ValidationError(
            f"bootstrap: expected a whole number of resamples, got {bootstrap!r}",
            field="bootstrap",
        )
    if not 0 <= bootstrap <= MAX_BOOTSTRAP or bootstrap == 1:
        raise ValidationError(
            f"bootstrap: 0 (none) or 2 to {MAX_BOOTSTRAP} resamples, got {bootstrap}",
            field="bootstrap",
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValidationError(f"seed: expected a non-negative integer, got {seed!r}", field="seed")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ValidationError(f"level: expected a number in (0, 1), got {level!r}", field="level")
    blocks = _mapping(latest_version(versions), mapping)
    names = list(blocks)
    edges = acsi.model_edges(names)
    questions = [q for name in names for q in blocks[name]]
    ratings = data.rating_matrix(scorer, questions)
    matrix = ratings.matrix.complete()
    n = len(matrix.response_ids)
    if n < ACSI_MIN_RESPONDENTS:
        raise ValidationError(
            f"acsi: needs at least {ACSI_MIN_RESPONDENTS} respondents who answered every mapped "
            f"question, got {n}",
            field="responses",
        )
    columns: list[list[int]] = []
    start = 0
    for name in names:
        columns.append(list(range(start, start + len(blocks[name]))))
        start += len(blocks[name])
    model = pls.PathModel.build(names, columns, edges)
    x = matrix.values
    out = pls.estimate(x, model, scheme, names=questions)
    low, high = ratings.scale_min, ratings.scale_max

    def indices(sample: np.ndarray[Any, Any], fit: pls.PLSOutcome) -> np.ndarray[Any, Any]:
        result = []
        for block in columns:
            v = acsi.rescaled_weights(fit.weights[block], fit.sds[block])
            result.append(float(acsi.index(v, fit.means[block], low[block], high[block])))
        return np.array(result)

    edge_index = [(names.index(s), names.index(t)) for s, t in edges]
    endogenous = model.endogenous

    def statistic(sample: np.ndarray[Any, Any], fit: pls.PLSOutcome) -> np.ndarray[Any, Any]:
        return np.concatenate(
            [
                [fit.paths[t, s] for s, t in edge_index],
                fit.loadings,
                fit.r2[endogenous],
                indices(sample, fit),
            ]
        )

    point_indices = indices(x, out)
    intervals: list[Interval] | None = None
    boot_info: dict[str, Any] | None = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        boot = pls.bootstrap(x, model, statistic, bootstrap, rng, scheme)
        if boot.samples.shape[0] < 2:
            raise ValidationError(
                f"bootstrap: only {boot.samples.shape[0]} of {bootstrap} resamples could be "
                "estimated",
                field="bootstrap",
            )
        lo, hi = boot.interval(float(level))
        se = boot.standard_error()
        intervals = [
            Interval(float(a), float(b), float(s)) for a, b, s in zip(lo, hi, se, strict=True)
        ]
        boot_info = {
            "resamples": bootstrap,
            "estimated": int(boot.samples.shape[0]),
            "failed": boot.failed,
            "seed": seed,
            "level": float(level),
            "interval": "percentile",
        }

    def ci(k: int) -> Interval | None:
        return None if intervals is None else intervals[k]

    n_edges, p = len(edges), len(questions)
    r2_position = {j: n_edges + p + k for k, j in enumerate(endogenous)}
    latent = tuple(
        ACSILatent(
            name=name,
            questions=tuple(blocks[name]),
            r2=float(out.r2[j]) if j in r2_position else None,
            ave=float(np.mean(out.loadings[columns[j]] ** 2)),
            index=float(point_indices[j]),
            index_ci=ci(n_edges + p + len(endogenous) + j),
            r2_ci=ci(r2_position[j]) if j in r2_position else None,
        )
        for j, name in enumerate(names)
    )
    indicators = []
    for j, name in enumerate(names):
        v = acsi.rescaled_weights(out.weights[columns[j]], out.sds[columns[j]])
        for k, h in enumerate(columns[j]):
            indicators.append(
                ACSIIndicator(
                    question=questions[h],
                    latent=name,
                    weight=float(out.weights[h]),
                    rescaled_weight=float(v[k]),
                    loading=float(out.loadings[h]),
                    mean=float(out.means[h]),
                    sd=float(out.sds[h]),
                    scale_min=int(low[h]),
                    scale_max=int(high[h]),
                    loading_ci=ci(n_edges + h),
                )
            )
    paths = tuple(
        ACSIPath(
            source=names[s],
            target=names[t],
            coefficient=float(out.paths[t, s]),
            total_effect=float(out.total_effects[t, s]),
            ci=ci(k),
        )
        for k, (s, t) in enumerate(edge_index)
    )
    groups: list[ACSIGroup] = []
    if grouped is not None:
        per_respondent = []
        for block in columns:
            v = acsi.rescaled_weights(out.weights[block], out.sds[block])
            per_respondent.append(acsi.index(v, x[:, block], low[block], high[block]))
        scores = np.column_stack(per_respondent)
        members = data.group_rows(grouped, matrix.response_ids)
        for label in sorted(members):
            rows = members[label]
            groups.append(
                ACSIGroup(
                    label,
                    len(rows),
                    {name: float(scores[rows, j].mean()) for j, name in enumerate(names)},
                )
            )
    return ACSIResult(
        header=with_responses(header, n),
        scheme=scheme,
        iterations=out.iterations,
        satisfaction_index=float(point_indices[names.index("satisfaction")]),
        latent=latent,
        indicators=tuple(indicators),
        paths=paths,
        bootstrap=boot_info,
        groups=tuple(groups),
    )
