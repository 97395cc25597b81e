"""Render a run's ``results.json`` (and nothing else) into the reports people read.

Outputs, all in one directory and all self-contained (no network, no CDN, plots as SVG):

- ``report.html``: the auditor's report; controls, evidence, waivers (print → PDF cleanly).
- ``capacity.html``: the load figures; a short page saying no load run was made when the
  run has none, so that links and CI artefact lists never break.
- ``junit.xml``: one testcase per control, for CI.

The renderers only render: the gate they display atop each page (and return as
``exit_code``), with its causes, is :func:`maildrill.controls.gate.causes`, found by the
caller or, when none are given, on the caller's behalf.
Usage::

    outcome = render_all(Path("out/results.json"), Path("out"),
                         waivers=load_waivers("waivers.toml"))
    sys.exit(outcome.exit_code)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import ValidationError

from maildrill.config_files import dotted, first_error
from maildrill.controls.gate import Cause, causes, exit_code
from maildrill.controls.waivers import Waivers
from maildrill.errors import ConfigError
from maildrill.results import SCHEMA_VERSION, RunResults

from ._render import environment
from .auditor import auditor_context
from .capacity import DEFAULT_THRESHOLD, capacity_context
from .junit import write_junit

__all__ = ["DEFAULT_THRESHOLD", "ReportOutcome", "load_run", "render_all"]


@dataclass(frozen=True)
class ReportOutcome:
    report_html: Path
    capacity_html: Path
    junit_xml: Path
    causes: tuple[Cause, ...] = ()  # why the gate fails, after waivers; none: it passes
    regressions: int = 0  # baseline metrics worse than the threshold (highlighted, not gated)

    @property
    def exit_code(self) -> int:
        """The gate the reports show: 0 pass, 1 fail."""
        return exit_code(self.causes)

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        return (self.report_html, self.capacity_html, self.junit_xml)


def load_run(path: Path, what: str = "results") -> RunResults:
    """Read a results.json; a missing or invalid file, or one of a schema_version this
    maildrill does not know, is a ConfigError (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the {what} file is not UTF-8 text") from None
    # before the fields: a newer maildrill's file fails on them for a reason it would not name
    version = _schema_version(text)
    if version is not None and version != SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: schema_version {version}: this maildrill reads results of "
            f"schema_version {SCHEMA_VERSION} only"
        )
    try:
        return RunResults.model_validate_json(text)
    except ValidationError as exc:
        problem = first_error(exc, field=lambda loc: dotted(loc) or "(top level)")
        raise ConfigError(f"{path}: not a maildrill results file: {problem}") from None


def _schema_version(text: str) -> object:
    try:
        data = json.loads(text)
    except ValueError:
        return None  # not JSON: validation says so
    return data.get("schema_version") if isinstance(data, dict) else None


def _utc(value: datetime | None) -> str:
    if value is None:
        return "–"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def render_all(
    results_path: Path,
    out_dir: Path,
    *,
    baseline: Path | None = None,
    waivers: Waivers | None = None,
    today: date | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    gate: Sequence[Cause] | None = None,
) -> ReportOutcome:
    """Write report.html, capacity.html and junit.xml into out_dir; return their paths and
    the gate they show. ``today`` decides which waivers have expired (default: the UTC date
    now); ``gate`` is :func:`maildrill.controls.gate.causes`'s list, found here when not
    given."""
    raw = Path(results_path).read_bytes() if Path(results_path).is_file() else b""
    run = load_run(Path(results_path))
    base = load_run(Path(baseline), "baseline") if baseline is not None else None
    today = today or datetime.now(UTC).date()
    out_dir.mkdir(parents=True, exist_ok=True)

    found = tuple(causes(run, waivers, today) if gate is None else gate)

    env = environment()
    env.globals["utc"] = _utc
    sha = hashlib.sha256(raw).hexdigest()
    common = {"run": run, "results_sha256": sha}

    report = out_dir / "report.html"
    ctx = auditor_context(run, results_sha256=sha, waivers=waivers, today=today, causes=found)
    report.write_text(env.get_template("report.html.j2").render(ctx), encoding="utf-8")

    capacity = out_dir / "capacity.html"
    cctx = capacity_context(run, base, threshold=threshold, baseline_path=baseline)
    capacity.write_text(
        env.get_template("capacity.html.j2").render({**ctx, **cctx, **common}), encoding="utf-8"
    )

    junit = write_junit(run, out_dir / "junit.xml", waivers=waivers, today=today, causes=found)
    return ReportOutcome(
        report_html=report,
        capacity_html=capacity,
        junit_xml=junit,
        causes=found,
        regressions=cctx["regression_count"],
    )
