"""Plugin commands refuse extreme dates, bad numbers and bad JSON with a clear line, not
an internal error (cases the CLI fuzz run reported as one-line internal errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmcore.cli import build_cli

CASES = [
    (["segments", "pareto", "--percent", "abc"], "percent: must be above 0"),
    (["segments", "rfm", "--as-of", "0001-01-02T00:00:00+00:00"], "is before 0001-01-01"),
    (["segments", "rfm", "--window-days", "99999999999"], "is before 0001-01-01"),
    (["segments", "churn", "--as-of", "0001-01-02T00:00:00+00:00"], "recent_days: 90 days"),
    (["loyalty", "evaluate-tiers", "--as-of", "0001-01-01"], "outside the years 1 to 9999"),
    (
        [
            "surveys",
            "respond",
            "--survey",
            "nps",
            "--customer",
            "1",
            "--answers-json",
            "[" * 5000 + "]" * 5000,
        ],
        "answers: JSON nested too deeply",
    ),
]


@pytest.mark.parametrize(("args", "message"), CASES)
def test_clear_one_line_errors(db_url: str, args: list[str], message: str) -> None:
    runner = CliRunner()
    cli = build_cli()
    assert runner.invoke(cli, ["--db", db_url, "init"]).exit_code == 0
    result = runner.invoke(cli, ["--db", db_url, *args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: ") and message in lines[-1]
    assert "internal error" not in result.output


def test_ahp_matrix_that_is_not_json(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "matrix.json"
    bad.write_text("nope")
    runner = CliRunner()
    cli = build_cli()
    runner.invoke(cli, ["--db", db_url, "init"])
    result = runner.invoke(
        cli, ["--db", db_url, "surveys", "report", "nps", "--ahp-matrix", str(bad)]
    )
    assert (
        result.exit_code == 1 and "ahp_matrix: " in result.output and "is not JSON" in result.output
    )
