"""What the load engine's processes hand each other, typed and validated where it is read.

- :class:`WorkerReport`: what a Locust worker measured since its last report. It goes to the
  master every second (Locust's ``report_to_master``) and once more at the end, as
  msgpack; the master validates it and adds it up (:meth:`~maildrill.load.state.State.absorb`).
- :class:`RawFigures`: what the master, or the single Locust process, writes to
  ``load-raw.json`` on quit; :mod:`maildrill.load.runner` reads it back into a
  :class:`~maildrill.results.LoadResult`.

Histograms travel encoded (hdrh's compressed base64) and are added bucket by bucket, so the
merge stays exact::

    wire = worker.report().model_dump(mode="json")       # JSON types only: msgpack-safe
    master.absorb("w1", WorkerReport.model_validate(wire))
    RawFigures.model_validate_json(path.read_text()).phases
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from maildrill.results import Accounting, TimelineRow, WorkerLoss

__all__ = ["Arrivals", "RawFigures", "RawPhase", "SentRecord", "WorkerReport"]

# hdr.Recorder.encode(): "request_type\tname" -> encoded histogram
Histograms = dict[str, str]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Arrivals(_Wire):
    """Paced arrivals (transactions, sessions) by outcome."""

    ok: int = 0
    failed: int = 0


class SentRecord(NamedTuple):
    """One SMTP transaction a worker made, for the master's ledger: the copies accepted
    with the 250 after DATA (none if it failed) and the reply code or error kind of every
    other copy. A tuple, one per message on the raw-rate path: a model costs ~40 times as
    much to make; it travels as a JSON array and is validated with the report."""

    message_id: str
    digest: str
    accepted_at: float | None
    accepted: list[str]
    refused: dict[str, str]


class WorkerReport(_Wire):
    """Everything a worker measured since its last report; it starts afresh after each."""

    hdr: Histograms = Field(description="whole-run histograms")
    intervals: dict[str, Histograms] = Field(description="per-second histograms, by second")
    counts: dict[str, int] = Field(description='requests by "request_type\\tname"')
    failures: dict[str, int] = Field(description='failed requests by "request_type\\tname"')
    arrivals: Arrivals
    errors: dict[str, int] = Field(description='failed arrivals by "request_type:kind"')
    timeline: dict[int, dict[str, int]] = Field(description="per-second counters, by second")
    gauges: dict[int, dict[str, int]] = Field(description="levels at each second's start")
    sent: list[SentRecord]
    in_flight: int = Field(description="arrivals its users have under way now")
    late: int
    dropped: int


class RawPhase(_Wire):
    """The whole run's figures of one (request_type, name), its histogram encoded."""

    request_type: str
    name: str
    count: int
    failures: int
    histogram: str = Field(description="empty when nothing succeeded")


class RawFigures(_Wire):
    """One Locust run's figures, from which the runner makes its LoadResult."""

    started: float = Field(description="time.time() at test_start")
    ended: float
    phases: list[RawPhase]
    errors: dict[str, int] = Field(description='failed arrivals by "request_type:kind"')
    arrivals: Arrivals
    timeline: list[TimelineRow]
    intervals: dict[str, Histograms] = Field(description="per-second histograms, by second")
    accounting: Accounting
    delivery: str = Field(description="the delivery-latency histogram, encoded; may be empty")
    unmatched_sightings: int = Field(description="messages seen that no sent record matched")
    late: int
    dropped: int
    complete: bool = Field(description="the run ended by itself, every outcome in")
    workers_lost: list[WorkerLoss] = Field(default_factory=list)
