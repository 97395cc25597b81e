"""capacity.html: the S22 key metrics, the plots, and a baseline comparison that
highlights an injected regression (S23)."""

from __future__ import annotations

import re
from pathlib import Path

from maildrill.reports import render_all
from maildrill.results import read_results, write_results


def test_sections_key_metrics_and_inline_plots(rendered: Path) -> None:
    html = (rendered / "capacity.html").read_text(encoding="utf-8")
    for section in ("slo", "key-metrics", "plots", "phases", "nodes", "classes", "baseline"):
        assert f'id="{section}"' in html
    for metric in (
        "SMTP response latency P99",
        "IMAP concurrent-connection peak",
        "TLS handshake failure rate",
        "Spam-filter cost",
    ):
        assert metric in html
    assert "the target does not expose it" in html  # spamd CPU: absent in the sample, not faked
    assert "44.0 msg/s" in html
    # the delivery CDF says how finely the run's watchers could see arrivals
    assert "seen by POP3 watchers looking every 1 s" in html
    assert html.count("<svg") >= 5
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html.split("<body>")[0])
    assert "<script src" not in html and "<link" not in html


def test_latency_has_sub_millisecond_resolution(rendered: Path, results_file: Path) -> None:
    run = read_results(results_file)
    assert run.load is not None
    ehlo = next(p for p in run.load.phases if p.name == "ehlo")
    html = (rendered / "capacity.html").read_text(encoding="utf-8")
    assert f"{ehlo.latency.p50_us / 1000:.3f}" in html


def test_a_run_without_load_gets_a_short_capacity_page(
    no_load_results_file: Path, tmp_path: Path
) -> None:
    outcome = render_all(no_load_results_file, tmp_path)
    html = outcome.capacity_html.read_text(encoding="utf-8")
    assert 'id="no-load"' in html and "<svg" not in html


def test_baseline_highlights_an_injected_p99_regression(results_file: Path, tmp_path: Path) -> None:
    run = read_results(results_file)
    assert run.load is not None
    # a copy of the run where smtp.data's P99 got 40 % worse
    phases = [
        p.model_copy(
            update={"latency": p.latency.model_copy(update={"p99_us": p.latency.p99_us * 14 // 10})}
        )
        if p.name == "data"
        else p
        for p in run.load.phases
    ]
    slower = run.model_copy(update={"load": run.load.model_copy(update={"phases": phases})})
    current = write_results(slower, tmp_path / "now" / "results.json")

    outcome = render_all(current, tmp_path / "out", baseline=results_file)
    assert outcome.regressions >= 1
    html = outcome.capacity_html.read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="regression"><td>([^<]+)</td>', html)
    assert "smtp.data p99 (ms)" in rows
    assert "SMTP response latency P99" in rows  # the S22 figure follows the slowest phase
    assert "smtp.data p50 (ms)" not in rows


def test_the_same_run_as_baseline_has_no_regression(results_file: Path, tmp_path: Path) -> None:
    outcome = render_all(results_file, tmp_path, baseline=results_file)
    assert outcome.regressions == 0
    assert 'id="comparison"' in outcome.capacity_html.read_text(encoding="utf-8")


def test_arrivals_not_served_have_a_row_and_are_compared(
    results_file: Path, tmp_path: Path
) -> None:
    """Arrivals the load generator could not start are failures of the run the server's
    error counts do not show: the report gives them a row, and a baseline comparison
    flags a run that left more of them unserved."""
    run = read_results(results_file)
    assert run.load is not None
    load = run.load.model_copy(
        update={
            "not_served": 141,
            "failures": run.load.failures + 141,
            "errors": {**run.load.errors, "schedule:dropped": 141},
        }
    )
    current = write_results(run.model_copy(update={"load": load}), tmp_path / "r.json")
    outcome = render_all(current, tmp_path / "out", baseline=results_file)
    html = outcome.capacity_html.read_text(encoding="utf-8")
    row = re.search(r'<dd id="not-served" class="v-fail">([^<]+)</dd>', html)
    assert row is not None and row.group(1).startswith("141 arrivals never answered"), html
    assert "schedule:dropped: 141" in row.group(1)
    regressions = re.findall(r'<tr class="regression"><td>([^<]+)</td>', html)
    assert {"arrivals not served (%)", "failed arrivals (%)"} <= set(regressions)
