"""Every HTML report opens offline in a real headless Chromium: no console error, no request
leaving the file, the expected sections present; a screenshot and a PDF are saved.

Needs Debian's ``chromium``. In CI (``CI=true``) a missing browser fails the test; on a
developer's machine it is skipped with a loud reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from maildrill.reports import render_all
from tests.reports.chromium import Chromium, find_chromium

pytestmark = pytest.mark.chromium

SECTIONS = {
    "report.html": ["run", "summary", "controls", "waivers", "gate"],
    "capacity.html": [
        "run",
        "slo",
        "key-metrics",
        "plots",
        "plot-rate",
        "plot-cdf",
        "plot-errors",
        "phases",
        "nodes",
        "classes",
        "baseline",
        "comparison",
    ],
}


def require_chromium() -> NoReturn:
    """Chromium is missing: fail in CI, skip loudly elsewhere."""
    message = "Debian's chromium is not installed (scripts/install-debian-packages.sh)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {message}")
    pytest.skip(f"SKIPPED LOUDLY: {message}; the browser test did not run")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = find_chromium() or require_chromium()
    with Chromium(binary, tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def out_dir(results_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser")
    # compare against itself, so the comparison table is rendered too
    render_all(results_file, out, baseline=results_file)
    return out


def _artefact(path: Path) -> None:
    """Keep screenshots where CI can collect them, when asked to."""
    keep = os.environ.get("MAILDRILL_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_report_opens_cleanly_offline(browser: Chromium, out_dir: Path, name: str) -> None:
    page = out_dir / name
    browser.load(page.as_uri())
    assert browser.console_errors() == []
    foreign = [u for u in browser.requested_urls() if not u.startswith(("file:", "data:"))]
    assert foreign == [], "the report must open offline"

    ids = browser.evaluate(f"{SECTIONS[name]!r}.filter(id => !document.getElementById(id))")
    assert ids == [], f"sections missing from {name}"
    assert browser.evaluate("document.querySelectorAll('svg').length") >= (
        5 if name == "capacity.html" else 0
    )

    shot = browser.screenshot(out_dir / f"{page.stem}.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    _artefact(shot)


def test_printing_opens_every_evidence_block_and_makes_a_pdf(
    browser: Chromium, out_dir: Path
) -> None:
    browser.load((out_dir / "report.html").as_uri())
    assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
    browser.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    closed = browser.evaluate("document.querySelectorAll('details:not([open])').length")
    assert closed == 0
    pdf = browser.print_pdf(out_dir / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    assert browser.console_errors() == []
    _artefact(pdf)


def test_the_browser_check_catches_a_broken_page(browser: Chromium, tmp_path: Path) -> None:
    """The console check can fail: a page with a script error and a remote image trips it."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><title>x</title><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>",
        encoding="utf-8",
    )
    browser.load(page.as_uri())
    errors = " ".join(browser.console_errors())
    assert "boom" in errors and "undefinedFunction" in errors
    assert any(u.startswith("http://127.0.0.1:9/") for u in browser.requested_urls())
