"""Survey definitions: parsing (JSON, or YAML when PyYAML is installed) and validation.

A definition is checked against the JSON Schema shipped in
``crmcore_surveys/schemas/survey.schema.json``, then for what a schema cannot say
(unique ids, scales, pairs, the AHP matrix's consistency). Every problem names the
question and the field: ``questions.recommend.scale: an nps question needs the scale
0-10, got 1-10``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import jsonschema
from attrs import frozen

from crmcore.errors import ValidationError, ValidationErrors
from crmcore_surveys.weights import AHPResult, checked_ahp

QUESTION_TYPES = ("rating", "single_choice", "multiple_choice", "text")
METRICS = ("nps", "csat", "ces")
WEIGHTING_METHODS = ("declared", "entropy", "ahp")
_RATING_ONLY = ("scale", "dimension", "weight", "metric", "overall", "alert_below")
_CHOICE_ONLY = ("options", "min_choices", "max_choices")


@frozen
class Question:
    """One validated question. Rating fields are ``None`` for other types.

    ``role`` is ``overall``, ``expectation``, ``perception`` or ``None``; ``pair`` is the
    index of the expectation/perception pair the question belongs to.
    """

    id: str
    type: str
    text: str
    required: bool
    position: int
    scale_min: int | None = None
    scale_max: int | None = None
    dimension: str | None = None
    weight: float = 1.0
    metric: str | None = None
    role: str | None = None
    pair: int | None = None
    alert_below: float | None = None
    options: tuple[str, ...] = ()
    min_choices: int | None = None
    max_choices: int | None = None
    max_length: int | None = None

    @property
    def scale_label(self) -> str:
        """The scale as ``min-max`` (rating questions)."""
        return f"{self.scale_min}-{self.scale_max}"


@frozen
class Weighting:
    """How dimension weights are obtained: ``declared``, ``entropy`` or ``ahp``."""

    method: str = "declared"
    dimensions: tuple[str, ...] = ()
    matrix: tuple[tuple[float, ...], ...] = ()
    ahp: AHPResult | None = None


@frozen
class Definition:
    """A validated survey definition; ``data`` is the JSON-safe form that is stored."""

    key: str
    title: str
    description: str | None
    questions: tuple[Question, ...]
    pairs: tuple[tuple[str, str], ...]
    weighting: Weighting
    data: Mapping[str, Any]

    def question(self, question_id: str) -> Question | None:
        """The question with this id, or ``None``."""
        for question in self.questions:
            if question.id == question_id:
                return question
        return None

    @property
    def index_questions(self) -> tuple[Question, ...]:
        """Rating questions with a dimension, except expectation and overall questions."""
        return tuple(
            q
            for q in self.questions
            if q.type == "rating" and q.dimension and q.role not in ("expectation", "overall")
        )

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Dimensions of the index questions, in order of first appearance."""
        seen: dict[str, None] = {}
        for q in self.index_questions:
            seen.setdefault(str(q.dimension))
        return tuple(seen)

    def declared_dimension_weights(self) -> dict[str, float]:
        """Each dimension's declared weight: the sum of its questions' weights."""
        weights: dict[str, float] = {}
        for q in self.index_questions:
            weights[str(q.dimension)] = weights.get(str(q.dimension), 0.0) + q.weight
        return weights

    def index_weights(
        self, dimension_weights: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """The weight ``v_q`` of each index question in a response's weighted index.

        Without ``dimension_weights`` (declared weighting) ``v_q = w_q``. With
        dimension weights ``W_d`` (AHP, entropy) ``v_q = W_d * w_q / sum of w over
        d's questions``, so the dimension's questions share ``W_d`` by their weights.
        """
        if dimension_weights is None:
            return {q.id: q.weight for q in self.index_questions}
        declared = self.declared_dimension_weights()
        return {
            q.id: dimension_weights.get(str(q.dimension), 0.0)
            * q.weight
            / declared[str(q.dimension)]
            for q in self.index_questions
        }

    def ahp_dimension_weights(self) -> dict[str, float] | None:
        """The AHP weight of each dimension when the survey declares AHP weighting."""
        if self.weighting.ahp is None:
            return None
        return dict(zip(self.weighting.dimensions, self.weighting.ahp.weights, strict=True))


@cache
def definition_schema() -> Mapping[str, Any]:
    """The JSON Schema of survey definitions shipped with the plugin."""
    text = resources.files("crmcore_surveys").joinpath("schemas/survey.schema.json").read_text()
    schema: Mapping[str, Any] = json.loads(text)
    return schema


def yaml_available() -> bool:
    """Whether YAML definitions can be read (PyYAML is importable)."""
    try:
        importlib.import_module("yaml")
    except ImportError:
        return False
    return True


def parse_text(text: str, fmt: str = "json") -> Any:
    """Parse definition text as ``json`` or ``yaml``.

    Raises ValidationError (field ``definition``) for a syntax error, or for YAML when
    PyYAML is not installed (``pip install 'crmcore-surveys[yaml]'``).
    """
    if fmt == "yaml":
        try:
            yaml: Any = importlib.import_module("yaml")
        except ImportError:
            raise ValidationError(
                "definition: YAML definitions need PyYAML "
                "(pip install 'crmcore-surveys[yaml]'); JSON always works",
                field="definition",
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"definition: invalid YAML: {exc}", field="definition") from None
    if fmt != "json":
        raise ValidationError(f"format: {fmt!r} is not one of: json, yaml", field="format")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"definition: invalid JSON: {exc}", field="definition") from None


def load_file(path: str | Path) -> Any:
    """Read a definition file: ``.yaml``/``.yml`` as YAML, anything else as JSON."""
    file = Path(path)
    fmt = "yaml" if file.suffix.lower() in {".yaml", ".yml"} else "json"
    return parse_text(file.read_text(encoding="utf-8"), fmt)


def _location(data: Any, path: Sequence[Any]) -> str:
    """A dotted field name for a schema error path, naming questions by their id."""
    parts: list[str] = []
    index = 0
    while index < len(path):
        part = path[index]
        if (
            part == "questions"
            and index + 1 < len(path)
            and isinstance(path[index + 1], int)
            and isinstance(data, Mapping)
        ):
            position = path[index + 1]
            questions = data.get("questions")
            qid = None
            if isinstance(questions, list) and position < len(questions):
                item = questions[position]
                if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                    qid = item["id"]
            parts.append(f"questions.{qid}" if qid else f"questions[{position}]")
            index += 2
            continue
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(str(part))
        index += 1
    return ".".join(parts) or "definition"


def _schema_errors(data: Any) -> list[ValidationError]:
    validator = jsonschema.Draft202012Validator(definition_schema())
    errors = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path]):
        where = _location(data, list(error.absolute_path))
        message = error.message
        if error.validator == "additionalProperties":
            message = message.replace("Additional properties are not allowed ", "unknown field ")
        errors.append(ValidationError(f"{where}: {message}", field=where))
    return errors


def _question(raw: Mapping[str, Any], position: int, errors: list[ValidationError]) -> Question:
    qid = raw["id"]
    qtype = raw["type"]
    where = f"questions.{qid}"

    def bad(name: str, message: str) -> None:
        errors.append(ValidationError(f"{where}.{name}: {message}", field=f"{where}.{name}"))

    if qtype != "rating":
        for name in _RATING_ONLY:
            if name in raw:
                bad(name, f"only rating questions take {name!r} (this one is {qtype})")
    if qtype not in ("single_choice", "multiple_choice"):
        for name in _CHOICE_ONLY:
            if name in raw:
                bad(name, f"only choice questions take {name!r} (this one is {qtype})")
    if qtype != "text" and "max_length" in raw:
        bad("max_length", f"only text questions take 'max_length' (this one is {qtype})")
    scale_min = scale_max = None
    if qtype == "rating":
        scale_min, scale_max = int(raw["scale"]["min"]), int(raw["scale"]["max"])
        if scale_min >= scale_max:
            bad("scale", f"max {scale_max} must be greater than min {scale_min}")
        if raw.get("metric") == "nps" and (scale_min, scale_max) != (0, 10):
            bad("scale", f"an nps question needs the scale 0-10, got {scale_min}-{scale_max}")
        alert = raw.get("alert_below")
        if alert is not None and not scale_min < alert <= scale_max:
            bad("alert_below", f"{alert} is not inside the scale {scale_min}-{scale_max}")
    options = tuple(raw.get("options", ()))
    if len(set(options)) != len(options):
        duplicates = sorted({o for o in options if options.count(o) > 1})
        bad("options", f"duplicate option {duplicates[0]!r}")
    min_choices, max_choices = raw.get("min_choices"), raw.get("max_choices")
    if qtype == "single_choice" and (min_choices is not None or max_choices is not None):
        bad("max_choices", "a single choice question takes exactly one option")
    if max_choices is not None and options and max_choices > len(options):
        bad("max_choices", f"{max_choices} is more than the {len(options)} options")
    if min_choices is not None and max_choices is not None and min_choices > max_choices:
        bad("min_choices", f"{min_choices} is more than max_choices {max_choices}")
    return Question(
        id=qid,
        type=qtype,
        text=raw["text"],
        required=bool(raw.get("required", qtype == "rating")),
        position=position,
        scale_min=scale_min,
        scale_max=scale_max,
        dimension=raw.get("dimension"),
        weight=float(raw.get("weight", 1.0)),
        metric=raw.get("metric"),
        role="overall" if raw.get("overall") else None,
        alert_below=None if raw.get("alert_below") is None else float(raw["alert_below"]),
        options=options,
        min_choices=min_choices,
        max_choices=max_choices,
        max_length=raw.get("max_length"),
    )


def _pairs(
    data: Mapping[str, Any], questions: dict[str, Question], errors: list[ValidationError]
) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    used: dict[str, int] = {}
    for index, pair in enumerate(data.get("pairs", ())):
        where = f"pairs[{index}]"
        e_id, p_id = pair["expectation"], pair["perception"]
        problem = None
        for role, qid in (("expectation", e_id), ("perception", p_id)):
            question = questions.get(qid)
            if question is None:
                problem = (f"{where}.{role}", f"no question {qid!r} in the survey")
            elif question.type != "rating":
                problem = (f"{where}.{role}", f"question {qid!r} is not a rating question")
            elif question.dimension is None:
                problem = (f"questions.{qid}.dimension", f"required: {qid!r} is in {where}")
            elif question.role == "overall":
                problem = (f"{where}.{role}", f"question {qid!r} is the overall question")
            elif qid in used:
                problem = (f"{where}.{role}", f"question {qid!r} is already in pairs[{used[qid]}]")
            if problem:
                break
        if problem is None:
            if e_id == p_id:
                problem = (f"{where}.perception", "must differ from the expectation question")
            else:
                e, p = questions[e_id], questions[p_id]
                if (e.scale_min, e.scale_max) != (p.scale_min, p.scale_max):
                    problem = (
                        f"{where}.perception",
                        f"scale {p.scale_label} differs from {e_id!r}'s {e.scale_label}",
                    )
                elif e.dimension != p.dimension:
                    problem = (
                        f"{where}.perception",
                        f"dimension {p.dimension!r} differs from {e_id!r}'s {e.dimension!r}",
                    )
        if problem:
            errors.append(ValidationError(f"{problem[0]}: {problem[1]}", field=problem[0]))
            continue
        used[e_id] = used[p_id] = index
        pairs.append((e_id, p_id))
    return tuple(pairs)


def _weighting(
    data: Mapping[str, Any], dimensions: Sequence[str], errors: list[ValidationError]
) -> Weighting:
    raw = data.get("weighting") or {"method": "declared"}
    method = raw["method"]
    if method != "ahp":
        for name in ("dimensions", "matrix"):
            if name in raw:
                errors.append(
                    ValidationError(
                        f"weighting.{name}: only the ahp method takes {name!r}",
                        field=f"weighting.{name}",
                    )
                )
        return Weighting(method=method)
    declared = tuple(raw.get("dimensions", dimensions))
    if sorted(declared) != sorted(dimensions) or len(set(declared)) != len(declared):
        errors.append(
            ValidationError(
                f"weighting.dimensions: {list(declared)} must list each dimension of the "
                f"survey once: {sorted(dimensions)}",
                field="weighting.dimensions",
            )
        )
        return Weighting(method=method, dimensions=declared)
    if "matrix" not in raw:
        errors.append(
            ValidationError("weighting.matrix: required for the ahp method", field="weighting")
        )
        return Weighting(method=method, dimensions=declared)
    matrix = tuple(tuple(float(v) for v in row) for row in raw["matrix"])
    try:
        result = checked_ahp(matrix, field="weighting.matrix")
        if len(matrix) != len(declared):
            raise ValidationError(
                f"weighting.matrix: {len(matrix)} rows for {len(declared)} dimensions",
                field="weighting.matrix",
            )
    except ValidationError as exc:
        errors.append(exc)
        return Weighting(method=method, dimensions=declared, matrix=matrix)
    return Weighting(method=method, dimensions=declared, matrix=matrix, ahp=result)


def validate_definition(data: Any) -> Definition:
    """Validate a parsed definition (a mapping) and return it as a :class:`Definition`.

    Raises ValidationError naming the question and field (``ValidationErrors`` when
    several problems were found; the first is in the message).
    """
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"definition: expected an object, got {type(data).__name__}", field="definition"
        )
    errors = _schema_errors(data)
    if errors:
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
    questions: dict[str, Question] = {}
    for position, raw in enumerate(data["questions"]):
        if raw["id"] in questions:
            where = f"questions.{raw['id']}.id"
            errors.append(
                ValidationError(f"{where}: duplicate question id {raw['id']!r}", field=where)
            )
            continue
        questions[raw["id"]] = _question(raw, position, errors)
    overall = [q.id for q in questions.values() if q.role == "overall"]
    if len(overall) > 1:
        where = f"questions.{overall[1]}.overall"
        errors.append(
            ValidationError(f"{where}: {overall[0]!r} is already the overall question", field=where)
        )
    pairs = _pairs(data, questions, errors)
    for index, (e_id, p_id) in enumerate(pairs):
        questions[e_id] = _evolve(questions[e_id], role="expectation", pair=index)
        questions[p_id] = _evolve(questions[p_id], role="perception", pair=index)
    ordered = tuple(sorted(questions.values(), key=lambda q: q.position))
    draft = Definition(
        key=data["key"],
        title=data["title"],
        description=data.get("description"),
        questions=ordered,
        pairs=pairs,
        weighting=Weighting(),
        data={},
    )
    weighting = _weighting(data, draft.dimensions, errors)
    if errors:
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors)
    stored = json.loads(json.dumps(data))
    return Definition(
        key=draft.key,
        title=draft.title,
        description=draft.description,
        questions=ordered,
        pairs=pairs,
        weighting=weighting,
        data=stored,
    )


def _evolve(question: Question, **changes: Any) -> Question:
    return attrs.evolve(question, **changes)
