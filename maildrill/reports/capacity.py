"""The capacity report (``capacity.html``): what the load run achieved, for the quarterly
stress test (seed S23), with the seed's four key metrics (S22) and a baseline comparison.

It reads ``LoadResult`` only. Of each second's :class:`~maildrill.results.TimelineRow` it
plots ``offered_rps``, ``achieved_rps`` (else ``accepted``, else ``requests``), ``failures``
(``errors["dropped"]`` among the errors: arrivals skipped), ``delivered``, each phase's
``latency`` percentiles, ``errors`` by code, and of its ``gauges`` ``imap.connections`` (the
S22 peak) and ``spamd.cpu`` (S22, where the target exposes it). A figure absent from every
row leaves its chart empty, never faked.

``LoadResult.requests``, ``failures`` and ``throughput_rps`` count arrivals, not protocol
steps; ``not_served`` is shown on a row of its own, since an arrival the load generator
could not start is a failure of the run the server's error counts do not show.
Phases named ``starttls``, ``tls`` or ``handshake`` give the TLS handshake failure rate
(S22); a phase of request type ``delivery`` with an HdrHistogram gives the full delivery
CDF, otherwise the CDF is drawn through ``LoadResult.delivery``'s percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

from markupsafe import Markup

from maildrill.results import (
    LatencySummary,
    LoadResult,
    PhaseStats,
    RunResults,
    SloVerdict,
    TimelineRow,
)

from ._render import ms
from .svg import Series, line_chart

__all__ = ["DEFAULT_THRESHOLD", "KeyMetric", "capacity_context", "comparable_metrics"]

DEFAULT_THRESHOLD = 0.10  # a metric 10 % worse than the baseline is highlighted
TLS_PHASES = frozenset({"starttls", "tls", "handshake"})
SMTP_TYPES = frozenset({"smtp", "smtps", "submission"})
# aggregates and the TCP connect are not one server response: S22's P99 is per command
NOT_A_RESPONSE = frozenset({"connect", "session", "transaction"})
PERCENTILES = ("p50_us", "p90_us", "p99_us")  # of PhasePercentiles, one line each


@dataclass(frozen=True)
class KeyMetric:
    seed: str
    name: str
    value: float | None  # None: not measured in this run
    display: str
    note: str
    lower_is_better: bool


Pick = Callable[[TimelineRow], float | None]  # a row's figure, None where it has none


def _series(
    timeline: list[TimelineRow], pick: Pick, scale: float = 1.0
) -> list[tuple[float, float]]:
    return [(float(row.t), value * scale) for row in timeline if (value := pick(row)) is not None]


def _gauge(name: str) -> Pick:
    return lambda row: row.gauges.get(name)


def _percentile(phase: str, label: str) -> Pick:
    def pick(row: TimelineRow) -> float | None:
        latency = row.latency.get(phase)
        return None if latency is None else float(getattr(latency, label))

    return pick


def _phase_p99(phases: Iterable[PhaseStats]) -> PhaseStats | None:
    counted = [p for p in phases if p.count]
    return max(counted, key=lambda p: p.latency.p99_us, default=None)


def key_metrics(load: LoadResult) -> list[KeyMetric]:
    """The seed's four key metrics (S22), each measured or plainly marked as not measured."""
    out = []
    smtp = _phase_p99(
        p
        for p in load.phases
        if p.request_type in SMTP_TYPES and p.name.lower() not in NOT_A_RESPONSE
    )
    if smtp is not None:
        out.append(
            KeyMetric(
                "S22",
                "SMTP response latency P99",
                smtp.latency.p99_us / 1000,
                f"{ms(smtp.latency.p99_us)} ms",
                f"slowest SMTP command: {smtp.request_type}.{smtp.name} ({smtp.count:,} requests)",
                True,
            )
        )
    else:
        out.append(_absent("SMTP response latency P99", "no SMTP phase in this run", True))

    peaks = [v for _, v in _series(load.timeline, _gauge("imap.connections"))]
    if peaks:
        out.append(
            KeyMetric(
                "S22",
                "IMAP concurrent-connection peak",
                max(peaks),
                f"{max(peaks):,.0f}",
                "most IMAP connections open at once, sampled at each second's start",
                False,
            )
        )
    else:
        out.append(_absent("IMAP concurrent-connection peak", "no IMAP connection samples", False))

    tls = [p for p in load.phases if p.name.lower() in TLS_PHASES]
    handshakes = sum(p.count for p in tls)
    if handshakes:
        failed = sum(p.failures for p in tls)
        rate = 100.0 * failed / handshakes
        out.append(
            KeyMetric(
                "S22",
                "TLS handshake failure rate",
                rate,
                f"{rate:.3f} %",
                f"{failed:,} of {handshakes:,} handshakes failed",
                True,
            )
        )
    else:
        out.append(_absent("TLS handshake failure rate", "no TLS handshake in this run", True))

    cpu = [v for _, v in _series(load.timeline, _gauge("spamd.cpu"))]
    if cpu:
        mean = sum(cpu) / len(cpu)
        out.append(
            KeyMetric(
                "S22",
                "Spam-filter cost (spamd CPU)",
                mean,
                f"{mean:.2f} cores (peak {max(cpu):.2f})",
                "as exposed by the target's exporter",
                True,
            )
        )
    else:
        out.append(
            _absent(
                "Spam-filter cost (spamd CPU)", "the target does not expose it; not faked", True
            )
        )
    return out


def _absent(name: str, why: str, lower: bool) -> KeyMetric:
    return KeyMetric("S22", name, None, "not measured", why, lower)


def comparable_metrics(load: LoadResult) -> dict[str, tuple[float, bool]]:
    """Name → (value, lower is better): what a baseline comparison compares."""
    # named for what they count: a baseline from before they counted arrivals (they counted
    # protocol steps) then shows as a different metric, not as a false regression
    out: dict[str, tuple[float, bool]] = {
        "throughput (arrivals served/s)": (load.throughput_rps, False),
    }
    if load.requests:
        out["failed arrivals (%)"] = (100.0 * load.failures / load.requests, True)
        out["arrivals not served (%)"] = (100.0 * load.not_served / load.requests, True)
    if load.capacity is not None:
        out["capacity (msg/s)"] = (load.capacity, False)
    for m in key_metrics(load):
        if m.value is not None:
            out[m.name] = (m.value, m.lower_is_better)
    for p in load.phases:
        for pct in ("p50", "p90", "p99"):
            us = getattr(p.latency, f"{pct}_us")
            out[f"{p.request_type}.{p.name} {pct} (ms)"] = (us / 1000, True)
    if load.delivery is not None:
        for pct in ("p50", "p99"):
            out[f"delivery {pct} (ms)"] = (getattr(load.delivery, f"{pct}_us") / 1000, True)
    return out


def compare(current: LoadResult, baseline: LoadResult, threshold: float) -> list[dict[str, Any]]:
    """One row per metric present in either run; ``regression`` when the current value is
    worse than the baseline by more than ``threshold`` (a fraction)."""
    cur, base = comparable_metrics(current), comparable_metrics(baseline)
    rows = []
    for name in list(base) + [n for n in cur if n not in base]:
        b = base.get(name)
        c = cur.get(name)
        lower = (c or b or (0.0, True))[1]
        delta: float | None = None
        regression = improvement = False
        if b is not None and c is not None:
            if b[0]:
                delta = (c[0] - b[0]) / abs(b[0])
            elif c[0]:
                delta = math.inf if c[0] > 0 else -math.inf
            else:
                delta = 0.0
            worse = delta if lower else -delta
            regression = worse > threshold
            improvement = worse < -threshold
        rows.append(
            {
                "metric": name,
                "baseline": None if b is None else b[0],
                "current": None if c is None else c[0],
                "delta": delta,
                "lower_is_better": lower,
                "regression": regression,
                "improvement": improvement,
            }
        )
    return rows


def _delivery_cdf(load: LoadResult) -> tuple[list[tuple[float, float]], str]:
    for p in load.phases:
        if p.request_type == "delivery" and p.histogram:
            points = _histogram_cdf(p.histogram)
            if points:
                return points, f"HdrHistogram of {p.count:,} deliveries"
    if load.delivery is not None:
        return _summary_cdf(load.delivery), "through the recorded percentiles"
    return [], ""


def _summary_cdf(s: LatencySummary) -> list[tuple[float, float]]:
    pts = [
        (s.min_us, 0.0),
        (s.p50_us, 0.5),
        (s.p90_us, 0.9),
        (s.p99_us, 0.99),
        (s.p999_us, 0.999),
        (s.max_us, 1.0),
    ]
    return [(max(us, 1) / 1000, q) for us, q in pts]


def _histogram_cdf(encoded: str) -> list[tuple[float, float]]:
    from hdrh.histogram import HdrHistogram

    try:
        hist = HdrHistogram.decode(encoded)
    except Exception:  # a corrupt histogram loses its chart, not the report
        return []
    total = hist.get_total_count()
    if not total:
        return []
    points = []
    for item in hist.get_recorded_iterator():
        points.append(
            (max(item.value_iterated_to, 1) / 1000, item.total_count_to_this_value / total)
        )
    if len(points) > 400:  # keep the SVG small; the tail points are kept
        stride = len(points) // 300
        points = points[:-100:stride] + points[-100:]
    return points


def _charts(load: LoadResult) -> dict[str, Any]:
    tl = load.timeline
    # offered and achieved in one unit: a message rate when the run paced messages
    achieved, unit = _series(tl, attrgetter("achieved_rps")), "achieved"
    if not achieved and _series(tl, attrgetter("accepted")):
        achieved, unit = _series(tl, attrgetter("accepted")), "achieved (accepted msg)"
    if not achieved:
        achieved, unit = _series(tl, attrgetter("requests")), "achieved (requests)"
    offered = _series(tl, attrgetter("offered_rps"))
    if not offered and load.rate is not None and tl:
        # no per-second schedule recorded: the shape's constant target rate is what was asked
        end = max(load.duration_s, achieved[-1][0] if achieved else 0.0)
        offered = [(0.0, load.rate), (end, load.rate)]
    rate = line_chart(
        [
            Series("offered", offered, dashed=True),
            Series(unit, achieved),
            Series("failed arrivals", _series(tl, attrgetter("failures"))),
            Series("delivered msg", _series(tl, attrgetter("delivered"))),
        ],
        title="Offered vs achieved rate",
        x_label="time since start (s)",
        y_label="requests/s",
    )
    by_phase = {
        phase: [
            Series(label.removesuffix("_us"), _series(tl, _percentile(phase, label), 1 / 1000))
            for label in PERCENTILES
        ]
        for phase in sorted({phase for row in tl for phase in row.latency})
    }
    latency = [
        line_chart(
            series,
            title=f"{phase} latency",
            x_label="time since start (s)",
            y_label="ms",
            height=220,
        )
        for phase, series in by_phase.items()
    ]
    error_keys = sorted({code for row in tl for code in row.errors})
    # a second without an error code in it had none of that code: plot it as 0
    errors = line_chart(
        [
            Series(code, [(float(row.t), float(row.errors.get(code, 0))) for row in tl], step=True)
            for code in error_keys
        ],
        title="Errors by code",
        x_label="time since start (s)",
        y_label="errors/s",
    )
    cdf_points, cdf_source = _delivery_cdf(load)
    if cdf_source and load.watch and load.poll_interval_s:
        # a reader comparing runs must know how finely each one could see arrivals
        cdf_source += (
            f"; seen by {load.watch.upper()} watchers looking every {load.poll_interval_s:g} s"
            " (latency resolved to within that)"
        )
    cdf = line_chart(
        [Series("delivered", cdf_points)],
        title="Delivery latency CDF (SMTP 250 → message retrievable)",
        x_label="delivery latency (ms, log scale)",
        y_label="fraction delivered",
        log_x=True,
        y_max=1.0,
    )
    imap = _series(tl, _gauge("imap.connections"))
    return {
        "rate": rate,
        "latency": latency,
        "errors": errors,
        "error_keys": error_keys,
        "cdf": cdf,
        "cdf_source": cdf_source,
        "imap": line_chart(
            [Series("IMAP connections", imap)],
            title="IMAP connections open",
            x_label="time since start (s)",
            y_label="connections",
            height=200,
        )
        if imap
        else Markup(""),
    }


def _slo_verdict(slo: SloVerdict | None) -> str:
    if slo is None:
        return "none"
    return "met" if slo.met else "missed"


def capacity_context(
    run: RunResults,
    baseline: RunResults | None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_path: Path | None = None,
) -> dict[str, Any]:
    load = run.load
    ctx: dict[str, Any] = {
        "load": load,
        "baseline_run": baseline,
        "baseline_path": str(baseline_path) if baseline_path else "",
        "threshold_pct": threshold * 100,
        "comparison": [],
        "regression_count": 0,
        "baseline_note": "",
    }
    if load is None:
        return ctx
    ctx.update(
        charts=_charts(load),
        key_metrics=key_metrics(load),
        slo_verdict=_slo_verdict(load.slo),
        slo_items=sorted(load.slo.checks.items()) if load.slo is not None else [],
    )
    if baseline is not None:
        if baseline.load is None:
            ctx["baseline_note"] = "The baseline run has no load figures; nothing to compare."
        else:
            rows = compare(load, baseline.load, threshold)
            ctx["comparison"] = rows
            ctx["regression_count"] = sum(r["regression"] for r in rows)
    return ctx
