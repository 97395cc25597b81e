"""The typed results of a run, serialised to ``results.json``.

The report renderers (``maildrill.reports``) read only this file. Its JSON Schema is committed at
``maildrill/schema/results.schema.json``; ``python -m maildrill.results`` regenerates it and a
test keeps the two in sync.

Usage::

    run = RunResults.start(target, command=sys.argv)
    run = run.with_controls(controls)
    write_results(run, Path("out/results.json"))
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from maildrill.target import Target

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "Accounting",
    "ControlResult",
    "EvidenceItem",
    "EvidenceKind",
    "LatencySummary",
    "LoadResult",
    "PhasePercentiles",
    "PhaseStats",
    "RunResults",
    "Severity",
    "SloCheck",
    "SloVerdict",
    "StepResult",
    "TargetInfo",
    "TimelineRow",
    "Verdict",
    "WorkerLoss",
    "read_results",
    "write_results",
]

# 2: load.slo is {met, checks: {figure: SloCheck}} and timeline rows are typed (was 1: the
# checks beside 'met', rows as free dicts). A file of another version is refused in one line.
SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).parent / "schema" / "results.schema.json"
KEY_LIBRARIES = ("locust", "pytest", "aiosmtplib", "imapclient", "dnspython", "sslyze")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    ERROR = "error"


# how the reports show an evidence item's data (maildrill.controls.api.Evidence adds each)
EvidenceKind = Literal["transcript", "table", "dns", "text", "json"]


class EvidenceItem(_Frozen):
    """One piece of evidence: a transcript, a table, DNS answers, scan data."""

    label: str
    kind: EvidenceKind
    data: Any = Field(description="text, list of rows, or a JSON object, per kind")


class ControlResult(_Frozen):
    """The verdict of one control on one subject (an endpoint, a record, a domain)."""

    id: str = Field(description="control ID, with the subject in brackets: TLS-VER[imaps]")
    title: str
    severity: Severity
    reference: str = Field(description="RFC clause, seed ID (S14), profile clause")
    verdict: Verdict
    reason: str = Field(default="", description="why, in one or two lines")
    evidence: list[EvidenceItem] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list,
        description="what passed but needs attention soon (a certificate expiring within "
        "30 days); shown in the reports, never a failure of the gate",
    )
    duration_s: float = 0.0
    test: str = Field(default="", description="the pytest node ID that checked it")


class LatencySummary(_Frozen):
    """Percentiles of one HDR histogram, in microseconds."""

    count: int
    min_us: int
    mean_us: float
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int


class PhaseStats(_Frozen):
    """One (request_type, name) pair: e.g. ("smtp", "data") or ("imap", "fetch")."""

    request_type: str
    name: str
    count: int
    failures: int
    latency: LatencySummary
    histogram: str = Field(default="", description="HdrHistogram encoded (base64, compressed)")


class PhasePercentiles(_Frozen):
    """One phase's latency within one second, from that second's own HDR histogram (µs)."""

    p50_us: float
    p90_us: float
    p99_us: float


class TimelineRow(_Frozen):
    """One second of a load run. A count is None in a second that had none of it (a
    figure None in every second was not measured); each family lists only what that second
    had. Counts are of arrivals (transactions, sessions), as ``LoadResult.requests``."""

    t: int = Field(description="seconds since the load run started")
    offered_rps: float | None = Field(
        default=None, description="arrivals per second the load shape asked for"
    )
    requests: int | None = Field(default=None, description="arrivals with an outcome")
    achieved_rps: float | None = Field(default=None, description="arrivals served")
    failures: int | None = Field(
        default=None, description="failed arrivals, those not served included"
    )
    accepted: int | None = Field(default=None, description="message copies accepted (SMTP 250)")
    delivered: int | None = Field(
        default=None, description="full_chain: copies seen in their mailbox, by the second seen"
    )
    unaccounted: int | None = Field(
        default=None,
        description="full_chain: copies lost, duplicated or corrupted, by the second accepted",
    )
    errors: dict[str, int] = Field(
        default_factory=dict,
        description="failed arrivals by reply code or error kind ('421', 'timeout'); "
        "'dropped': arrivals skipped, every user busy or the sending period over",
    )
    dropped: dict[str, int] = Field(
        default_factory=dict,
        description="arrivals skipped, by arrival type ('smtp.transaction')",
    )
    latency: dict[str, PhasePercentiles] = Field(
        default_factory=dict,
        description="by phase ('smtp.data'); 'delivery.message' is filed under the second "
        "the message was accepted",
    )
    gauges: dict[str, float] = Field(
        default_factory=dict,
        description="levels at the instant the second began: 'imap.connections' and "
        "'pop3.connections' (connections open, summed over processes), 'spamd.cpu' (cores "
        "busy) where the target exposes it",
    )


class Accounting(_Frozen):
    """What became of every message of a full-chain run (seed S3).

    A message to several recipients is several copies: every count but ``messages`` is of
    (message, recipient) copies, so a recipient refused at RCPT is one rejected copy. An
    accepted copy ends delivered, lost, unobserved or pending; duplicated, corrupted and
    misdelivered say more of some of them."""

    messages: int = Field(default=0, description="SMTP transactions (messages) attempted")
    sent: int = Field(default=0, description="copies attempted: one per message and recipient")
    accepted: int = 0
    delivered: int = 0
    lost: int = Field(
        default=0, description="never seen, in a mailbox its watcher could look at to the end"
    )
    unobserved: int = Field(
        default=0,
        description="never seen, in a mailbox its watcher could not look at when the run "
        "ended (connect, TLS or login failed): their fate is unknown, not lost",
    )
    duplicated: int = 0
    corrupted: int = 0
    misdelivered: int = Field(
        default=0,
        description="copies found in a mailbox the message was not addressed to, one per "
        "(message, wrong mailbox); left there, never deleted",
    )
    rejected: dict[str, int] = Field(default_factory=dict, description="by reply code")
    pending: int = Field(default=0, description="still in flight when the run stopped")
    watch_failures: dict[str, str] = Field(
        default_factory=dict,
        description="mailbox -> why its watcher could not look at it when the run ended "
        "(the phase that failed and the server's answer): the cause of 'unobserved'",
    )


class SloCheck(_Frozen):
    """One measured figure judged against its limit in the target's ``[slo]``."""

    # int | float: a count (lost messages, lost workers) stays a whole number in the JSON
    limit: int | float
    measured: int | float
    met: bool
    note: str | None = Field(
        default=None,
        description="why it is missed whatever the figure says: a latency never once "
        "achieved reads 0 ('no successful SMTP transaction')",
    )


class SloVerdict(_Frozen):
    """A load run, or one step of it, judged against the SLO: met when every check is.

    Only figures the run measured are checked (:func:`maildrill.load.slo.evaluate`)::

        verdict = SloVerdict.of({"smtp_p99_ms": SloCheck(limit=1000, measured=312.4, met=True)})
        verdict.met, verdict.missed()          # True, []
    """

    met: bool
    checks: dict[str, SloCheck] = Field(
        default_factory=dict,
        description="by figure: smtp_p99_ms, imap_p99_ms, delivery_p99_s, error_rate_pct, "
        "unaccounted_messages, unobserved_messages, workers_lost; a step's also "
        "achieved_rps_min",
    )

    @classmethod
    def of(cls, checks: dict[str, SloCheck]) -> SloVerdict:
        return cls(met=all(c.met for c in checks.values()), checks=checks)

    def missed(self) -> list[str]:
        """The names of the checks not met, in the order judged."""
        return [name for name, check in self.checks.items() if not check.met]


class StepResult(_Frozen):
    """One step of a step-shaped run, judged against the SLO on its own histograms."""

    rate: float = Field(description="arrivals per second the step offered")
    start_s: float = Field(description="seconds since the run started")
    end_s: float
    achieved_rps: float = 0.0
    requests: int = Field(default=0, description="arrivals, as LoadResult.requests")
    failures: int = 0
    slo: SloVerdict = Field(description="this step's own figures against the SLO")


class WorkerLoss(_Frozen):
    """A Locust worker that stopped taking part before the run ended: its users stopped
    sending, so the run offered less than asked; it fails the run's verdict."""

    worker: str = Field(description="Locust's id of the worker (its host name and a uuid)")
    index: int = Field(description="Locust's 0-based worker index")
    pid: int | None = Field(default=None, description="its process id, once it had reported")
    lost_s: float = Field(description="seconds since the run started when the master noticed")
    last_report_s: float | None = Field(
        default=None,
        description="seconds since the start of its last report (it sends one a second)",
    )
    reason: str = Field(
        description="missed its heartbeats, left before the end of the run, or sent no final report"
    )


class LoadResult(_Frozen):
    scenario: str
    started: datetime
    ended: datetime
    duration_s: float
    users: int | None = None
    rate: float | None = Field(default=None, description="target arrivals per second")
    requests: int = Field(
        default=0,
        description="arrivals: SMTP transactions, IMAP/POP3 sessions or webmail sessions "
        "offered by the schedule, whatever became of them (steps are counted per phase)",
    )
    failures: int = Field(
        default=0, description="arrivals that failed, timed out, or were not served"
    )
    not_served: int = Field(
        default=0,
        description="failed arrivals that never got an answer because of the load itself: "
        "skipped when every user was busy (schedule:dropped) or still running when the "
        "load stopped (unfinished)",
    )
    throughput_rps: float = Field(
        default=0.0, description="arrivals served successfully per second of sending"
    )
    phases: list[PhaseStats] = Field(
        default_factory=list,
        description="per (request_type, name); the histogram of a whole transaction or "
        "session holds the latency of those served and, as theirs, the wait of every "
        "arrival not served (see not_served)",
    )
    by_node: list[PhaseStats] = Field(
        default_factory=list, description="per resolved address (S4): name is host:port"
    )
    by_class: list[PhaseStats] = Field(
        default_factory=list, description="per traffic class (S8): name is the class"
    )
    errors: dict[str, int] = Field(default_factory=dict, description="by kind or reply code")
    timeline: list[TimelineRow] = Field(default_factory=list, description="one row per second")
    delivery: LatencySummary | None = None
    watch: str | None = Field(
        default=None,
        description="full_chain: the watchers' protocol, imap (IDLE sessions) or pop3 (polling)",
    )
    poll_interval_s: float | None = Field(
        default=None,
        description="full_chain: seconds between a watcher's looks at a mailbox; the "
        "resolution of delivery latency (IMAP: at most this, sooner when the server "
        "announces new mail)",
    )
    accounting: Accounting | None = None
    capacity: float | None = Field(default=None, description="highest rate meeting the SLO")
    steps: list[StepResult] = Field(
        default_factory=list, description="step shape: each step's rate and SLO verdict"
    )
    slo: SloVerdict | None = Field(
        default=None, description="the run against the target's SLO; none before it is judged"
    )
    interrupted: bool = False
    workers_lost: list[WorkerLoss] = Field(
        default_factory=list,
        description="distributed runs: workers that vanished before the end (fails the SLO "
        "verdict as slo.checks.workers_lost)",
    )
    message_profile: dict[str, Any] = Field(
        default_factory=dict,
        description="what was sent: size bands (bytes, weight, MIME structures), "
        "recipient bands, seed (maildrill.load.message)",
    )
    prepopulated: dict[str, int] = Field(
        default_factory=dict,
        description="--prepopulate: messages per account asked for ('per_account'), "
        "appended before the run ('appended'), accounts topped up ('accounts')",
    )


class TargetInfo(_Frozen):
    name: str
    domain: str
    policy: str
    file: str = ""
    file_sha256: str = ""
    endpoints: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, target: Target) -> TargetInfo:
        return cls(
            name=target.name,
            domain=target.domain,
            policy=target.policy,
            file=str(target.source or ""),
            file_sha256=target.sha256(),
            endpoints={str(r): e.url for r, e in target.endpoints.items()},
        )


class ToolInfo(_Frozen):
    name: str = "maildrill"
    version: str
    python: str
    platform: str
    libraries: dict[str, str] = Field(default_factory=dict)


class RunResults(_Frozen):
    """Everything one run found: controls, load figures, and where they came from."""

    schema_version: int = SCHEMA_VERSION
    tool: ToolInfo
    command: list[str]
    target: TargetInfo
    started: datetime
    ended: datetime | None = None
    controls: list[ControlResult] = Field(default_factory=list)
    load: LoadResult | None = None
    interrupted: bool = False
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def start(cls, target: TargetInfo, command: list[str] | None = None) -> RunResults:
        return cls(
            tool=tool_info(),
            command=list(sys.argv if command is None else command),
            target=target,
            started=datetime.now(UTC),
        )

    def finished(self, **changes: Any) -> RunResults:
        return self.model_copy(update={"ended": datetime.now(UTC), **changes})

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for c in self.controls:
            out[c.verdict.value] += 1
        return out


def tool_info() -> ToolInfo:
    libs = {}
    for name in KEY_LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = "absent"
    from maildrill import __version__

    return ToolInfo(
        version=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        libraries=libs,
    )


def write_results(run: RunResults, path: Path) -> Path:
    """Write atomically, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(run.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_results(path: Path) -> RunResults:
    return RunResults.model_validate_json(path.read_text(encoding="utf-8"))


def json_schema() -> dict[str, Any]:
    schema = RunResults.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://maildrill.invalid/schema/results-v1.json"
    return schema


if __name__ == "__main__":
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    print(SCHEMA_PATH)
