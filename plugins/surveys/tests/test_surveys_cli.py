"""``crm surveys ...`` driven through click's test runner on the plugin's group."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore_surveys.cli import surveys
from crmcore_surveys.templates import template

from crmcore import CRM, ValidationError
from crmcore.cli.context import CLIState


@pytest.fixture
def run(scrm: CRM) -> Callable[..., Result]:
    """Run."""

    def invoke(*args: str) -> Result:
        """Invoke."""
        return CliRunner().invoke(surveys, list(args), obj=CLIState(crm=scrm))

    return invoke


def ok(result: Result) -> Result:
    """Ok."""
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_create_invite_respond_import_report(
    run: Callable[..., Result], scrm: CRM, people: list[int], tmp_path: Path
) -> None:
    """Create invite respond import report."""
    assert "nps" in ok(run("list", "--templates")).output
    created = json.loads(ok(run("create", "--template", "nps", "--json")).output)
    assert created["version"] == 1 and created["questions"] == 2
    definition = tmp_path / "svc.json"
    definition.write_text(json.dumps({**template("csat"), "key": "svc"}))
    ok(run("create", str(definition)))
    listed = json.loads(ok(run("list", "--json")).output)
    assert [s["key"] for s in listed] == ["nps", "svc"]
    assert "recommend" in ok(run("show", "nps")).output

    invited = json.loads(ok(run("invite", "nps", "--sample", "3", "--seed", "1", "--json")).output)
    assert invited["invited"] == 3 and invited["skipped_no_consent"] == 5
    tokens = [i["token"] for i in invited["invitations"]]
    answered = json.loads(
        ok(run("respond", "--token", tokens[0], "-a", "recommend=10", "--json")).output
    )
    assert answered["ratings"] == {"recommend": 10}

    csv_file = tmp_path / "r.csv"
    csv_file.write_text(
        "token,customer_id,survey,recommend,reason\n"
        f"{tokens[1]},,,4,slow\n"
        f",{people[1]},nps,12,\n"
        f",{people[3]},nps,9,\n"
    )
    failed = run("import", str(csv_file))
    assert isinstance(failed.exception, ValidationError)
    assert "responses[1]: answers.recommend: 12 is outside the scale 0-10" in str(failed.exception)
    imported = json.loads(ok(run("import", str(csv_file), "--skip-invalid", "--json")).output)
    assert (imported["imported"], imported["rejected"], imported["low_scores"]) == (2, 1, 1)

    report = json.loads(ok(run("report", "nps", "--json", "--by", "stage")).output)
    assert report["responses"] == 3 and report["nps"]["promoters"] == 2
    text = ok(run("report", "nps")).output
    assert "NPS" in text and "95% CI" in text


def test_errors(run: Callable[..., Result]) -> None:
    """Errors."""
    result = run("create")
    assert isinstance(result.exception, ValidationError)
    bad: dict[str, Any] = run("report", "nope").exception  # type: ignore[assignment]
    assert "no survey 'nope'" in str(bad)
