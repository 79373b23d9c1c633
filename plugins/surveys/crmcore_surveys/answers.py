"""Answer validation: every answer of a response checked against its survey's questions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from crmcore import ValidationError, ValidationErrors
from crmcore_surveys.catalog import SurveyVersion
from crmcore_surveys.definitions import Definition, Question

#: Longest free-text answer or comment accepted when the question sets no ``max_length``.
DEFAULT_MAX_TEXT = 10_000


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _rating(question: Question, value: Any, where: str) -> int:
    scale = question.scale_label
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValidationError(
            f"{where}: expected a whole number on the scale {scale}, got {value!r}",
            field=where,
            value=value,
        )
    if not math.isfinite(number) or number != int(number):
        raise ValidationError(
            f"{where}: expected a whole number on the scale {scale}, got {value!r}",
            field=where,
            value=value,
        )
    rating = int(number)
    assert question.scale_min is not None and question.scale_max is not None
    if not question.scale_min <= rating <= question.scale_max:
        raise ValidationError(
            f"{where}: {rating} is outside the scale {scale}", field=where, value=value
        )
    return rating


def _choices(question: Question, value: Any, where: str) -> list[str]:
    items = value.split("|") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValidationError(
            f"{where}: expected a list of options, got {value!r}", field=where, value=value
        )
    chosen = [i.strip() for i in items if i.strip()]
    for item in chosen:
        if item not in question.options:
            raise ValidationError(
                f"{where}: {item!r} is not one of: {', '.join(question.options)}",
                field=where,
                value=value,
            )
    if len(set(chosen)) != len(chosen):
        raise ValidationError(f"{where}: an option is chosen twice", field=where, value=value)
    if question.max_choices is not None and len(chosen) > question.max_choices:
        raise ValidationError(
            f"{where}: {len(chosen)} options chosen, at most {question.max_choices} allowed",
            field=where,
            value=value,
        )
    if question.min_choices is not None and len(chosen) < question.min_choices:
        raise ValidationError(
            f"{where}: {len(chosen)} options chosen, at least {question.min_choices} needed",
            field=where,
            value=value,
        )
    return chosen


def validate_answers(
    survey: SurveyVersion, answers: Any
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Check ``answers`` (question id -> value) against the survey's questions.

    Returns the answer rows (without ``response_id``) and the ratings by question.
    Ratings must be whole numbers on the question's scale (``"7"`` and ``7.0`` are
    accepted); single choices one of the options; multiple choices a list (or a
    ``|``-separated string) of distinct options; texts at most ``max_length``
    characters. Blank values count as unanswered. Raises ValidationError naming
    ``answers.<question id>`` (ValidationErrors when several are wrong).
    """
    definition: Definition = survey.definition
    if not isinstance(answers, Mapping):
        raise ValidationError(
            f"answers: expected an object of question id to answer, got {type(answers).__name__}",
            field="answers",
        )
    errors: list[ValidationError] = []
    rows: list[dict[str, Any]] = []
    ratings: dict[str, int] = {}
    for qid in answers:
        if definition.question(str(qid)) is None:
            where = f"answers.{qid}"
            errors.append(
                ValidationError(
                    f"{where}: no question {qid!r} in survey {survey.key} version {survey.version}",
                    field=where,
                )
            )
    for question in definition.questions:
        where = f"answers.{question.id}"
        value = answers.get(question.id)
        if _blank(value):
            if question.required:
                errors.append(ValidationError(f"{where}: required", field=where))
            continue
        row: dict[str, Any] = {
            "question_key": question.id,
            "rating": None,
            "choice": None,
            "choices": None,
            "text": None,
        }
        try:
            if question.type == "rating":
                row["rating"] = ratings[question.id] = _rating(question, value, where)
            elif question.type == "single_choice":
                if not isinstance(value, str) or value.strip() not in question.options:
                    raise ValidationError(
                        f"{where}: {value!r} is not one of: {', '.join(question.options)}",
                        field=where,
                        value=value,
                    )
                row["choice"] = value.strip()
            elif question.type == "multiple_choice":
                row["choices"] = _choices(question, value, where)
            else:
                limit = question.max_length or DEFAULT_MAX_TEXT
                if not isinstance(value, str):
                    raise ValidationError(
                        f"{where}: expected text, got {type(value).__name__}", field=where
                    )
                if len(value) > limit:
                    raise ValidationError(
                        f"{where}: longer than {limit} characters ({len(value)})", field=where
                    )
                row["text"] = value
        except ValidationError as exc:
            errors.append(exc)
            continue
        rows.append(row)
    if not errors and not rows:
        errors.append(ValidationError("answers: no question answered", field="answers"))
    if errors:
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
    return rows, ratings
