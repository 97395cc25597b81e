"""report.html: the header an auditor needs, every control, evidence of each kind, and
nothing from a server executed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from maildrill.results import read_results


def test_header_names_the_run(rendered: Path, results_file: Path) -> None:
    html = (rendered / "report.html").read_text(encoding="utf-8")
    run = read_results(results_file)
    assert hashlib.sha256(results_file.read_bytes()).hexdigest() in html
    assert run.target.file_sha256 in html
    assert "2025-03-31 22:00:00 UTC" in html and "2025-03-31 22:03:00 UTC" in html
    assert "maildrill drill --target &#39;targets/acme prod.toml&#39;" in html
    assert "seed-163" in html and "sslyze 6.3.0" in html


def test_every_control_with_its_evidence(rendered: Path, results_file: Path) -> None:
    html = (rendered / "report.html").read_text(encoding="utf-8")
    for control in read_results(results_file).controls:
        assert f'data-verdict="{control.verdict.value}"' in html
        assert control.title in html
    for kind in ("transcript", "table", "dns", "text", "json"):
        assert f'class="evidence ev-{kind}"' in html
    assert '<span class="c">C: EHLO maildrill.invalid</span>' in html
    assert 'href="https://www.rfc-editor.org/rfc/rfc5321#section-4.5.3.1.4"' in html
    assert "@media print" in html


def test_server_supplied_text_is_escaped(rendered: Path) -> None:
    for name in ("report.html", "capacity.html"):
        html = (rendered / name).read_text(encoding="utf-8")
        assert '<script>alert("x")' not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html


def test_failing_controls_come_first_and_each_rfc_is_linked(rendered: Path) -> None:
    html = (rendered / "report.html").read_text(encoding="utf-8")
    order = re.findall(r'data-disposition="([a-z-]+)"', html)
    assert order[: order.count("failed")] == ["failed"] * order.count("failed")
    assert order[-1] == "not-applicable"
    assert '<a href="https://www.rfc-editor.org/rfc/rfc8996#section-2">RFC 8996 §2</a>' in html


def test_a_warning_is_shown_beside_its_passing_control(rendered: Path) -> None:
    html = (rendered / "report.html").read_text(encoding="utf-8")
    row = html[html.index('<tr id="c-CERT-EXPIRY-smtp-"') :]
    row = row[: row.index("</tr>")]
    assert 'data-verdict="pass"' in row and '<span class="badge w-warning">warning</span>' in row
    assert "Warning: expires within 30 days: CN=mx.example.test" in row
    # the summary counts it among the high-severity controls passed with warnings
    high = re.search(r'<span class="badge sev-high">high</span>.*?</tr>', html, re.S)
    assert high is not None and '<td class="num w-warning">1</td>' in high.group(0)


def test_root_causes_lead_the_report(tmp_path: Path) -> None:
    """Controls blocked by another control's finding are errors gathered under that finding
    at the top, so an auditor reads one cause, not two dozen failures (issue 10)."""
    from maildrill.reports import render_all
    from maildrill.results import ControlResult, Severity, Verdict, write_results
    from tests.reports import sample

    def control(id: str, verdict: Verdict, reason: str) -> ControlResult:
        return ControlResult(
            id=id, title=id, severity=Severity.HIGH, reference="S9", verdict=verdict, reason=reason
        )

    greeting = "no greeting within 10 s"
    controls = [
        control("GREET-SMTP[smtp]", Verdict.FAIL, f"greeting: {greeting}"),
        *(
            control(f"{c}[smtp]", Verdict.ERROR, f"blocked by GREET-SMTP[smtp]: {greeting}")
            for c in ("RELAY-OPEN", "HYG-BANNER", "FILTER-CLEAN")
        ),
        control("DKIM-KEY[sel1]", Verdict.ERROR, "DNS timeout resolving sel1"),
    ]
    run = sample.run(with_load=False).model_copy(update={"controls": controls})
    render_all(write_results(run, tmp_path / "results.json"), tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    causes = html[html.index('id="root-causes"') : html.index('id="controls"')]
    assert '<a href="#c-GREET-SMTP-smtp-">GREET-SMTP[smtp]</a>' in causes
    assert "blocks 3 controls: RELAY-OPEN[smtp], HYG-BANNER[smtp], FILTER-CLEAN[smtp]" in causes
    assert greeting in causes and "DKIM-KEY" not in causes  # an error of its own is no cause
    # without blocked controls there is no such section
    plain = render_all(write_results(sample.run(), tmp_path / "r2.json"), tmp_path / "o2")
    assert 'id="root-causes"' not in plain.report_html.read_text(encoding="utf-8")
