"""Survey definitions: the schema, semantic checks, templates, YAML/JSON, versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crmcore_surveys import catalog, responses
from crmcore_surveys.definitions import (
    definition_schema,
    load_file,
    parse_text,
    validate_definition,
    yaml_available,
)
from crmcore_surveys.templates import TEMPLATES, template

from crmcore import CRM, ConflictError, NotFoundError, ValidationError


def rating(qid: str, lo: int = 1, hi: int = 5, **extra: Any) -> dict[str, Any]:
    """Rating."""
    return {"id": qid, "type": "rating", "text": qid, "scale": {"min": lo, "max": hi}, **extra}


def survey(*questions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Survey."""
    return {"key": "s", "title": "S", "questions": list(questions), **extra}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_is_valid(name: str) -> None:
    """Every template is valid."""
    definition = validate_definition(template(name))
    assert definition.key == name
    assert definition.questions


def test_templates_cover_the_required_kinds() -> None:
    """Templates cover the required kinds."""
    metrics = {
        name: {q.metric for q in validate_definition(template(name)).questions}
        for name in TEMPLATES
    }
    assert "nps" in metrics["nps"] and "csat" in metrics["csat"] and "ces" in metrics["ces"]
    servqual = validate_definition(template("servqual"))
    assert len(servqual.pairs) == 10
    assert set(servqual.dimensions) == {
        "tangibles",
        "reliability",
        "responsiveness",
        "assurance",
        "empathy",
    }
    b2b = validate_definition(template("b2b"))
    assert len(b2b.dimensions) == 6
    assert b2b.weighting.ahp is not None
    assert b2b.weighting.ahp.consistency_ratio < 0.1
    assert abs(sum(b2b.weighting.ahp.weights) - 1) < 1e-12


def test_unknown_template() -> None:
    """Unknown template."""
    with pytest.raises(NotFoundError, match="template: no template 'x'"):
        template("x")


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (survey(rating("q1", 5, 3)), "questions.q1.scale: max 3 must be greater than min 5"),
        (
            survey(rating("rec", 1, 10, metric="nps")),
            "questions.rec.scale: an nps question needs the scale 0-10, got 1-10",
        ),
        (survey(rating("q1"), rating("q1")), "questions.q1.id: duplicate question id 'q1'"),
        (
            survey({"id": "c", "type": "single_choice", "text": "c", "options": ["a", "a"]}),
            "questions.c.options: duplicate option 'a'",
        ),
        (
            survey({"id": "c", "type": "single_choice", "text": "c"}),
            "questions.c: 'options' is a required property",
        ),
        (survey({"id": "r", "type": "rating", "text": "r"}), "questions.r: 'scale' is a required"),
        (
            survey({"id": "t", "type": "text", "text": "t", "scale": {"min": 1, "max": 5}}),
            "questions.t.scale: only rating questions take 'scale'",
        ),
        (survey(rating("q1", weight=0)), "questions.q1.weight: 0 is less than or equal to"),
        (survey(rating("q1", metric="wow")), "questions.q1.metric: 'wow' is not one of"),
        (survey(rating("q1", alert_below=9)), "questions.q1.alert_below: 9 is not inside"),
        (
            survey(rating("e", dimension="d"), pairs=[{"expectation": "e", "perception": "p"}]),
            "pairs[0].perception: no question 'p' in the survey",
        ),
        (
            survey(
                rating("e", dimension="d"),
                rating("p", 1, 7, dimension="d"),
                pairs=[{"expectation": "e", "perception": "p"}],
            ),
            "pairs[0].perception: scale 1-7 differs from 'e''s 1-5",
        ),
        (
            survey(
                rating("a", dimension="x"),
                rating("b", dimension="y"),
                weighting={"method": "ahp", "matrix": [[1, 9], [1 / 9, 1]], "dimensions": ["x"]},
            ),
            "weighting.dimensions: ['x'] must list each dimension",
        ),
        (
            survey(
                rating("a", dimension="x"),
                rating("b", dimension="y"),
                weighting={
                    "method": "ahp",
                    "dimensions": ["x", "y"],
                    "matrix": [[1, 3], [0.5, 1]],
                },
            ),
            "weighting.matrix[1][0]: 0.5 is not the reciprocal of weighting.matrix[0][1] = 3",
        ),
        (survey(), "questions: [] should be non-empty"),
        ({"key": "Bad Key", "title": "t", "questions": [rating("q")]}, "key: 'Bad Key' does not"),
        (survey(rating("q"), colour="red"), "definition: unknown field"),
    ],
)
def test_bad_definitions_name_the_question_and_field(
    definition: dict[str, Any], message: str
) -> None:
    """Bad definitions name the question and field."""
    with pytest.raises(ValidationError) as caught:
        validate_definition(definition)
    assert str(caught.value).startswith(message), str(caught.value)


def test_ahp_consistency_ratio_above_a_tenth_is_refused_with_its_value() -> None:
    """Ahp consistency ratio above a tenth is refused with its value."""
    matrix = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]
    definition = survey(
        rating("a", dimension="x"),
        rating("b", dimension="y"),
        rating("c", dimension="z"),
        weighting={"method": "ahp", "dimensions": ["x", "y", "z"], "matrix": matrix},
    )
    with pytest.raises(ValidationError, match=r"consistency ratio \d+\.\d+ exceeds 0.1") as caught:
        validate_definition(definition)
    assert caught.value.value > 0.1


def test_json_always_and_yaml_only_with_pyyaml(tmp_path: Path) -> None:
    """Json always and yaml only with pyyaml."""
    path = tmp_path / "nps.json"
    path.write_text(json.dumps(template("nps")))
    assert validate_definition(load_file(path)).key == "nps"
    with pytest.raises(ValidationError, match="definition: invalid JSON"):
        parse_text("{", "json")
    yaml_file = tmp_path / "nps.yaml"
    yaml_file.write_text("key: nps\ntitle: N\nquestions:\n  - {id: q, type: text, text: q}\n")
    if yaml_available():
        assert validate_definition(load_file(yaml_file)).key == "nps"
    else:
        with pytest.raises(ValidationError, match="YAML definitions need PyYAML"):
            load_file(yaml_file)


def test_schema_ships_with_the_package() -> None:
    """Schema ships with the package."""
    assert definition_schema()["title"] == "crmcore survey definition"


def test_bad_definition_stores_nothing(scrm: CRM, rows_of: Callable[[CRM], dict[str, Any]]) -> None:
    """Bad definition stores nothing."""
    before = rows_of(scrm)
    with pytest.raises(ValidationError):
        catalog.create_survey(scrm, survey(rating("q", 3, 1)))
    assert rows_of(scrm) == before


def test_create_get_list_and_conflict(scrm: CRM) -> None:
    """Create get list and conflict."""
    stored = catalog.create_survey(scrm, template("nps"), actor="ann")
    assert (stored.key, stored.version, stored.created_by) == ("nps", 1, "ann")
    assert catalog.get_survey(scrm, "nps").id == stored.id
    assert catalog.list_surveys(scrm)[0]["key"] == "nps"
    with pytest.raises(ConflictError, match="key: survey 'nps' already exists"):
        catalog.create_survey(scrm, template("nps"))
    with pytest.raises(NotFoundError):
        catalog.get_survey(scrm, "nps", 2)


def test_editing_without_responses_replaces_the_version(scrm: CRM) -> None:
    """Editing without responses replaces the version."""
    first = catalog.create_survey(scrm, template("csat"))
    edited = template("csat")
    edited["title"] = "CSAT v2"
    again = catalog.update_survey(scrm, edited)
    assert (again.id, again.version, again.title) == (first.id, 1, "CSAT v2")
    assert catalog.get_survey(scrm, "csat").title == "CSAT v2"


def test_editing_with_responses_creates_a_version_and_old_responses_keep_theirs(
    scrm: CRM, people: list[int]
) -> None:
    """Editing with responses creates a version and old responses keep theirs."""
    catalog.create_survey(scrm, template("csat"))
    old = responses.record_response(
        scrm, survey="csat", customer_id=people[0], answers={"satisfaction": 4}
    )
    edited = template("csat")
    edited["questions"].append(
        {"id": "again", "type": "single_choice", "text": "Again?", "options": ["yes", "no"]}
    )
    new = catalog.update_survey(scrm, edited)
    assert new.version == 2
    assert catalog.get_survey(scrm, "csat", 1).definition.question("again") is None
    fresh = responses.record_response(
        scrm, survey="csat", customer_id=people[0], answers={"satisfaction": 5, "again": "yes"}
    )
    assert (old.survey_version, fresh.survey_version) == (1, 2)
    with pytest.raises(NotFoundError):
        catalog.update_survey(scrm, {**template("ces"), "key": "nope"})
