"""`maildrill report`: writes the three files, and its exit code is the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildrill.cli import main


def test_report_writes_three_files_and_exits_with_the_gate(
    results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(results_file), "--out", str(tmp_path)]) == 1  # sample fails
    assert {p.name for p in tmp_path.iterdir()} == {"report.html", "capacity.html", "junit.xml"}
    assert "gate: FAIL" in capsys.readouterr().err


def test_a_passing_run_exits_0(tmp_path: Path) -> None:
    from maildrill.results import Verdict, write_results
    from tests.reports import sample

    run = sample.run(with_load=False)
    passing = [c.model_copy(update={"verdict": Verdict.PASS}) for c in run.controls]
    path = write_results(run.model_copy(update={"controls": passing}), tmp_path / "r.json")
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0


def test_a_missing_or_foreign_results_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}', encoding="utf-8")
    assert main(["report", str(foreign), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a maildrill results file" in err[1]
