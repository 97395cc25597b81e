"""Every scenario runs against the embedded target, ends on time, and reports its phases;
webmail, which the embedded target does not serve, is refused in one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.load import run_load

embedded = pytest.importorskip("maildrill.embedded")

pytestmark = pytest.mark.slow

EXPECTED = {
    "smtp_inbound": ("smtp", {"connect", "banner", "ehlo", "mail", "rcpt", "data"}),
    "smtp_submission": ("smtp", {"starttls", "auth", "mail", "rcpt", "data"}),
    "smtp_mixed": ("smtp", {"banner", "starttls", "auth", "mail", "rcpt", "data"}),
    "imap_session": ("imap", {"connect", "login", "select", "search", "logout"}),
    "pop3_session": ("pop3", {"connect", "login", "stat", "uidl", "quit"}),
}


@pytest.fixture(scope="module")
def target_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with embedded.launch(tmp_path_factory.mktemp("lab"), accounts=3) as path:
        yield path


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_scenario(scenario: str, target_file: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    load = run_load(
        target_file, scenario, duration_s=2, rate=10, out_dir=tmp_path, progress=lines.append
    )
    prefix, phases = EXPECTED[scenario]
    seen = {p.name for p in load.phases if p.request_type.startswith(prefix)}
    assert phases <= seen, (scenario, seen)
    assert load.failures == 0, load.errors
    whole = [p for p in load.phases if p.name in ("transaction", "session")]
    assert whole and sum(p.count for p in whole) >= 14  # ~20 at 10/s for 2 s
    assert load.by_node and load.by_node[0].name.startswith("127.0.0.1:")
    assert not load.interrupted and load.duration_s < 2 + 12
    assert lines  # the final progress line at least
    if scenario.startswith("smtp"):
        assert load.accounting is not None and load.accounting.lost == 0
        assert load.accounting.accepted == load.accounting.sent
    classes = {p.name: p.count for p in load.by_class}
    if scenario == "smtp_mixed":  # seed S8: both traffic classes, each measured
        assert set(classes) == {"inbound", "submission"} and min(classes.values()) >= 5
    elif scenario.startswith("smtp"):
        assert len(classes) == 1
    rows = load.timeline
    assert rows and all(r.offered_rps in (10.0, 0.0) for r in rows)
    assert any(k.endswith((".transaction", ".session")) for k in rows[1].latency)


def test_step_shape_judges_each_step_and_reports_a_capacity(
    target_file: Path, tmp_path: Path
) -> None:
    """--shape step: four steps, each with its own SLO verdict; capacity is the highest
    step reached with every step below it holding (the per-step logic: test_steps.py)."""
    load = run_load(
        target_file, "smtp_inbound", duration_s=4, rate=8, shape="step", out_dir=tmp_path
    )
    assert [s.rate for s in load.steps] == [2, 4, 6, 8]
    assert [(s.start_s, s.end_s) for s in load.steps] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert all("smtp_p99_ms" in s.slo.checks for s in load.steps if s.requests), load.steps
    holding = [s.rate for s in load.steps]
    for i, step in enumerate(load.steps):
        if not step.slo.met:
            holding = holding[:i]
            break
    assert load.capacity == (holding[-1] if holding else None)
    offered = [r.offered_rps for r in load.timeline if r.offered_rps]
    # one row per wall-clock second; the run rarely starts on one, so a rate may repeat
    assert sorted(set(offered)) == [2, 4, 6, 8] and offered == sorted(offered), offered
    assert len(offered) in (4, 5), offered


def test_webmail_without_a_webmail_endpoint_is_one_line_and_exit_2(
    target_file: Path, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "maildrill", "load", "--target", str(target_file),
         "--scenario", "webmail", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "scenario webmail needs an endpoint webmail" in lines[0], lines[0]
    assert lines[0].endswith("has none"), lines[0]
