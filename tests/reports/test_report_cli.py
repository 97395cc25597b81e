"""`maildrill report`: writes the three files, and its exit code is the gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildrill.cli import main
from maildrill.results import SCHEMA_VERSION


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


def test_an_unknown_schema_version_is_exit_2_in_one_line(
    results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a results.json from a newer maildrill was rendered silently."""
    import json

    data = json.loads(results_file.read_text(encoding="utf-8"))
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**data, "schema_version": 99}), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["report", str(future), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"maildrill report: {future}: schema_version 99: this maildrill reads results of "
        f"schema_version {SCHEMA_VERSION} only"
    ]
    assert not out.exists()
    # and as a baseline
    code = main(["report", str(results_file), "--baseline", str(future), "--out", str(out)])
    assert code == 2 and "schema_version 99" in capsys.readouterr().err


def test_every_exit_1_names_its_causes_on_the_console_and_atop_each_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "gate: FAIL" and nothing more; the reports showed no reason either."""
    from maildrill.results import write_results
    from tests.reports import sample

    path = write_results(sample.run(), tmp_path / "r.json")
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "gate: FAIL"
    assert err[1].startswith("  fail            TLS-VER[smtp] [high]: "), err
    assert err[4].startswith("  error           DKIM-KEY[sel1] [medium]: "), err
    assert len(err) == 5, err
    for page in ("report.html", "capacity.html"):
        html = (out / page).read_text(encoding="utf-8")
        assert 'id="gate-causes"' in html, page
        # at the top: before the first section of figures
        first = html.index('id="summary"') if page == "report.html" else html.index('id="slo"')
        assert html.index('id="gate-causes"') < first, page
        assert "TLS-VER[smtp] [high]: " in html, page
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert junit.count('name="gate-cause"') == 4
    assert "gate: FAIL" in junit  # the suite's system-out


def test_a_load_only_report_says_which_slo_it_missed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "Gate: FAIL" above an all-zero table, and no word of the SLO."""
    from maildrill.results import SloCheck, SloVerdict, write_results
    from tests.reports import sample

    run = sample.run()
    assert run.load is not None
    slo = SloVerdict.of({"delivery_p99_s": SloCheck(limit=30.0, measured=41.5, met=False)})
    load = run.load.model_copy(update={"slo": slo})
    path = write_results(run.model_copy(update={"controls": [], "load": load}), tmp_path / "r.json")
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 1
    line = "delivery_p99_s: measured 41.5, limit 30"
    assert capsys.readouterr().err.strip().splitlines() == [
        "gate: FAIL",
        f"  slo-missed      {line}",
    ]
    for page in ("report.html", "capacity.html"):
        assert line in (tmp_path / "out" / page).read_text(encoding="utf-8"), page
