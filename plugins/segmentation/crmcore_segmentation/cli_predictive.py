"""``crm segments fit|validate|predict|basket|recommend|intervals|retention-by``.

Each command parses, calls a service function and prints.
"""

from __future__ import annotations

import re
from datetime import date

import click

from crmcore import ValidationError
from crmcore.cli.context import (
    get_actor,
    get_crm,
    json_option,
    print_json,
    print_record,
    print_table,
)
from crmcore_segmentation import basket, intervals, predictive, recommend, retention_groups
from crmcore_segmentation import validation as holdout
from crmcore_segmentation.cli import parse_as_of, plain
from crmcore_segmentation.json_stream import echo_json_array

_UNITS = {"d": 1, "w": 7, "y": 365}


def parse_horizon(text: str) -> int:
    """``--horizon``: ``N`` or ``Nd`` days, ``Nw`` weeks, ``Ny`` years of 365 days."""
    match = re.fullmatch(r"\s*([0-9]{1,6})\s*([dwy]?)\s*", text or "")
    if match is None:
        raise ValidationError(
            f"--horizon: {text!r} is not a number of days (N, Nd), weeks (Nw) or years (Ny)",
            field="horizon",
        )
    return int(match.group(1)) * _UNITS[match.group(2) or "d"]


def parse_day(text: str | None, option: str) -> date | None:
    """An ISO date option (``YYYY-MM-DD``); ValidationError naming the option."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"--{option}: {text!r} is not an ISO date (YYYY-MM-DD)", field=option.replace("-", "_")
        ) from None


def _fit_command(
    calibration_end: str | None, since: str | None, unit_days: int, horizon: str, as_json: bool
) -> None:
    """Fit BG/NBD and Gamma-Gamma on the purchases and store them with every customer's scores."""
    fits = predictive.fit_models(
        get_crm(),
        calibration_end=parse_day(calibration_end, "calibration-end"),
        since=parse_day(since, "since"),
        time_unit_days=unit_days,
        horizon_days=parse_horizon(horizon),
        actor=get_actor(),
    )
    data = fits.as_dict()
    if as_json:
        print_json(plain(data))
        return
    for model in (predictive.BGNBD, predictive.GAMMA_GAMMA):
        fit = data[model]
        if fit is None:
            continue
        rows = [
            {"parameter": n, "value": f"{v:.6g}", "standard_error": _se(fit, n)}
            for n, v in fit["params"].items()
        ]
        print_table(rows, ["parameter", "value", "standard_error"], title=f"{model} fit")
    print_record({"customers scored": fits.scored}, title="Stored")


def _se(fit: dict[str, object], name: str) -> str:
    errors = fit["standard_errors"]
    value = errors.get(name) if isinstance(errors, dict) else None
    return "" if value is None else f"{value:.4g}"


def _validate_command(
    calibration_end: str, horizon: str, since: str | None, unit_days: int, as_json: bool
) -> None:
    """Fit on the calibration period; compare BG/NBD and the formula CLV with the holdout."""
    end = parse_day(calibration_end, "calibration-end")
    assert end is not None
    result = holdout.validate_models(
        get_crm(),
        calibration_end=end,
        horizon_days=parse_horizon(horizon),
        since=parse_day(since, "since"),
        time_unit_days=unit_days,
    )
    if as_json:
        print_json(plain(result.as_dict()))
        return
    rows = [
        {"model": name, "actual_total": result.actual_total, **f}
        for name, f in result.models.items()
    ]
    print_table(
        rows,
        ["model", "predicted_total", "actual_total", "mae", "rmse"],
        title=f"Holdout: {result.horizon_days} days after {result.calibration_end}",
    )
    print_table(
        result.calibration_plot,
        ["frequency", "customers", "actual", "bgnbd", "formula"],
        title="Mean holdout purchases by calibration repeat purchases",
    )


def _predict_command(customer_ids: tuple[int, ...], limit: int, as_json: bool) -> None:
    """Show the stored scores of the latest fit, highest CLV first."""
    rows = predictive.iter_stored_predictions(
        get_crm(), customer_ids=list(customer_ids) or None, limit=limit or None
    )
    if as_json:
        echo_json_array(p.as_dict() for p in rows)
        return
    columns = ["customer_id", "p_alive", "expected_purchases", "expected_spend", "clv"]
    print_table([p.as_dict() for p in rows], columns, title="Predicted lifetime value")


def _basket_command(
    level: str,
    min_support: float,
    min_confidence: float,
    min_lift: float,
    max_length: int,
    limit: int,
    as_json: bool,
) -> None:
    """Show association rules over purchase items (support, confidence, lift)."""
    analysis = basket.association_rules(
        get_crm(),
        level=level,
        min_support=min_support,
        min_confidence=min_confidence,
        min_lift=min_lift,
        max_length=max_length,
    )
    rules = [r.as_dict() for r in analysis.rules[: limit or None]]
    if as_json:
        print_json({"level": analysis.level, "baskets": analysis.baskets, "rules": rules})
        return
    shown = [
        {**r, "antecedent": ", ".join(r["antecedent"]), "consequent": ", ".join(r["consequent"])}
        for r in rules
    ]
    print_table(
        shown,
        ["antecedent", "consequent", "support", "confidence", "lift"],
        title=f"Association rules ({analysis.baskets} baskets, by {analysis.level})",
    )


def _recommend_command(customer_id: int, limit: int, level: str, as_json: bool) -> None:
    """Show the next best offers for customer ID (cross-sell rules, then up-sell)."""
    offers = [
        o.as_dict() for o in recommend.recommend(get_crm(), customer_id, limit=limit, level=level)
    ]
    if as_json:
        print_json(offers)
        return
    shown = [{**o, "because": ", ".join(o["because"])} for o in offers]
    print_table(
        shown,
        ["item", "kind", "because", "confidence", "lift", "price"],
        title=f"Next best offers for customer {customer_id}",
    )


def _intervals_command(group: str | None, as_of: str | None, limit: int, as_json: bool) -> None:
    """Show purchase-interval statistics (median days between purchases) per customer or group."""
    crm, moment = get_crm(), parse_as_of(as_of)
    if group:
        rows = retention_groups.interval_stats_by_group(crm, group, as_of=moment)
        columns = ["group", "customers", "median_interval_days", "mean_interval_days"]
    else:
        rows = [
            s.as_dict() for s in intervals.interval_stats(crm, as_of=moment, limit=limit or None)
        ]
        columns = ["customer_id", "purchase_days", "median_interval_days", "mean_interval_days"]
    if as_json:
        print_json(plain(rows))
    else:
        print_table(rows, columns, title="Days between purchases")


def _retention_by_command(group: str, months: int, as_of: str | None, as_json: bool) -> None:
    """Show retention, churn rate and the cohort matrix per group.

    GROUP is ``field:NAME`` (a customer column such as source_channel, or
    attributes.KEY), ``tag``, ``tier`` or ``segment``.
    """
    found = retention_groups.retention_by_group(
        get_crm(), group, as_of=parse_as_of(as_of), months=months
    )
    data = [g.as_dict() for g in found]
    if as_json:
        print_json(plain(data))
        return
    print_table(
        data,
        ["group", "customers", "previous_customers", "retained", "retention_rate", "churn_rate"],
        title=f"Retention by {group} (last {months} months against the {months} before)",
    )


def add_commands(group: click.Group) -> None:
    """Add the commands of this module to ``crm segments`` (once)."""
    if "fit" in group.commands:
        return
    limit = click.option(
        "--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Rows (0: all)."
    )
    unit = click.option(
        "--unit-days", type=int, default=7, show_default=True, help="Time unit of the fit in days."
    )
    group.command("fit")(
        click.option("--calibration-end", metavar="DATE", help="Last day fitted (default: today).")(
            click.option("--since", metavar="DATE", help="First day fitted (default: all).")(
                unit(
                    click.option(
                        "--horizon",
                        default="52w",
                        show_default=True,
                        help="Stored purchases horizon.",
                    )(json_option(_fit_command))
                )
            )
        )
    )
    group.command("validate")(
        click.option(
            "--calibration-end", metavar="DATE", required=True, help="Last calibration day."
        )(
            click.option("--horizon", required=True, help="Holdout length: 273d, 39w, 1y.")(
                click.option("--since", metavar="DATE", help="First calibration day.")(
                    unit(json_option(_validate_command))
                )
            )
        )
    )
    group.command("predict")(
        click.option("--customer", "customer_ids", type=int, multiple=True, help="Only this one.")(
            limit(json_option(_predict_command))
        )
    )
    group.command("basket")(
        click.option("--level", type=click.Choice(basket.LEVELS), default="sku", show_default=True)(
            click.option("--min-support", type=float, default=0.01, show_default=True)(
                click.option("--min-confidence", type=float, default=0.1, show_default=True)(
                    click.option("--min-lift", type=float, default=1.0, show_default=True)(
                        click.option("--max-length", type=int, default=3, show_default=True)(
                            limit(json_option(_basket_command))
                        )
                    )
                )
            )
        )
    )
    group.command("recommend")(
        click.argument("customer_id", metavar="CUSTOMER", type=int)(
            click.option("--limit", type=int, default=5, show_default=True)(
                click.option(
                    "--level", type=click.Choice(basket.LEVELS), default="sku", show_default=True
                )(json_option(_recommend_command))
            )
        )
    )
    group.command("intervals")(
        click.option("--group", help="Per group: field:NAME, tag, tier or segment.")(
            click.option("--as-of", metavar="DATE", help="Analysis date (default: now).")(
                limit(json_option(_intervals_command))
            )
        )
    )
    group.command("retention-by")(
        click.argument("group")(
            click.option("--months", type=int, default=12, show_default=True)(
                click.option("--as-of", metavar="DATE", help="Analysis date (default: now).")(
                    json_option(_retention_by_command)
                )
            )
        )
    )
