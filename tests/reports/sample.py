"""A realistic run, built through the models: every verdict and severity, every evidence
kind, and a load run with phases, per-node and per-class figures, a timeline, delivery
latencies and message accounting. Deterministic (seeded), so reports are reproducible."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from hdrh.histogram import HdrHistogram

from maildrill.results import (
    Accounting,
    ControlResult,
    EvidenceItem,
    LatencySummary,
    LoadResult,
    PhasePercentiles,
    PhaseStats,
    RunResults,
    Severity,
    SloCheck,
    SloVerdict,
    TargetInfo,
    TimelineRow,
    ToolInfo,
    Verdict,
)

STARTED = datetime(2025, 3, 31, 22, 0, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


def _latency(rng: random.Random, median_us: float, n: int) -> tuple[LatencySummary, str]:
    hist = HdrHistogram(1, 60_000_000, 3)
    sigma = 0.5
    for _ in range(n):
        hist.record_value(max(1, int(rng.lognormvariate(math.log(median_us), sigma))))
    summary = LatencySummary(
        count=hist.get_total_count(),
        min_us=hist.get_min_value(),
        mean_us=round(hist.get_mean_value(), 1),
        p50_us=hist.get_value_at_percentile(50),
        p90_us=hist.get_value_at_percentile(90),
        p99_us=hist.get_value_at_percentile(99),
        p999_us=hist.get_value_at_percentile(99.9),
        max_us=hist.get_max_value(),
    )
    return summary, hist.encode().decode("ascii")


def _phase(
    rng: random.Random, rtype: str, name: str, median_us: float, n: int, failures: int = 0
) -> PhaseStats:
    summary, encoded = _latency(rng, median_us, n)
    return PhaseStats(
        request_type=rtype,
        name=name,
        count=n,
        failures=failures,
        latency=summary,
        histogram=encoded,
    )


def controls() -> list[ControlResult]:
    return [
        ControlResult(
            id="TLS-VER[smtp]",
            title="Only TLS 1.2 and 1.3 are offered",
            severity=Severity.HIGH,
            reference="S14; RFC 8996 §2",
            verdict=Verdict.FAIL,
            reason="TLS 1.1 accepted on STARTTLS",
            evidence=[
                EvidenceItem(
                    label="sslyze protocol scan",
                    kind="table",
                    data=[["protocol", "accepted"], ["TLS 1.1", "yes"], ["TLS 1.2", "yes"]],
                ),
            ],
            duration_s=1.7,
            test="conformance/tls/test_protocol_versions.py::test_versions[smtp]",
        ),
        ControlResult(
            id="TLS-VER[imaps]",
            title="Only TLS 1.2 and 1.3 are offered",
            severity=Severity.HIGH,
            reference="S14; RFC 8996 §2",
            verdict=Verdict.PASS,
            evidence=[
                EvidenceItem(
                    label="sslyze protocol scan",
                    kind="table",
                    data=[["protocol", "accepted"], ["TLS 1.2", "yes"], ["TLS 1.3", "yes"]],
                )
            ],
            duration_s=2.1,
        ),
        ControlResult(
            id="SMTP-LONGCMD[smtp]",
            title="An over-long MAIL FROM is refused and the server stays up",
            severity=Severity.CRITICAL,
            reference="S18; RFC 5321 §4.5.3.1.4",
            verdict=Verdict.FAIL,
            reason="501 not returned; server answered 250 to a 1,200-byte path",
            evidence=[
                EvidenceItem(
                    label="SMTP session",
                    kind="transcript",
                    data=[
                        "S: 220 mx.example.test ESMTP",
                        "C: EHLO maildrill.invalid",
                        "S: 250-mx.example.test",
                        "S: 250 PIPELINING",
                        "C: MAIL FROM:<" + "a" * 60 + "…(1200 bytes)>",
                        f"S: 250 2.1.0 Ok {HOSTILE}",
                        "# connection closed by maildrill",
                    ],
                )
            ],
            duration_s=0.05,
        ),
        ControlResult(
            id="SPF-ALL[example.test]",
            title="SPF ends in -all",
            severity=Severity.MEDIUM,
            reference="S12; RFC 7208 §5.1",
            verdict=Verdict.PASS,
            evidence=[
                EvidenceItem(
                    label="TXT example.test",
                    kind="dns",
                    data=['example.test. 300 IN TXT "v=spf1 include:spf.example.test -all"'],
                )
            ],
        ),
        ControlResult(
            id="MX-PRIO[example.test]",
            title="MX records with priorities 10 and 20",
            severity=Severity.LOW,
            reference="S11",
            verdict=Verdict.PASS,
            evidence=[
                EvidenceItem(
                    label="MX answers",
                    kind="dns",
                    data={"MX example.test": ["10 mx1.example.test.", "20 mx2.example.test."]},
                )
            ],
        ),
        ControlResult(
            id="DMARC-PCT[example.test]",
            title="DMARC pct=100",
            severity=Severity.LOW,
            reference="S13; RFC 7489 §6.3",
            verdict=Verdict.FAIL,
            reason="pct=50",
            evidence=[EvidenceItem(label="checkdmarc", kind="json", data={"pct": 50})],
        ),
        ControlResult(
            id="DKIM-KEY[sel1]",
            title="DKIM key is at least 2048 bits",
            severity=Severity.MEDIUM,
            reference="S15; RFC 8301 §3.2",
            verdict=Verdict.ERROR,
            reason="DNS timeout resolving sel1._domainkey.example.test",
            evidence=[EvidenceItem(label="resolver", kind="text", data="timeout after 5.0 s")],
        ),
        ControlResult(
            id="WEB-HSTS[webmail]",
            title="Webmail sends HSTS",
            severity=Severity.INFO,
            reference="https://www.rfc-editor.org/rfc/rfc6797",
            verdict=Verdict.NOT_APPLICABLE,
            reason="no webmail endpoint in the target",
        ),
        ControlResult(
            id="CERT-SAN[smtp]",
            title="Certificate SAN covers every service name",
            severity=Severity.HIGH,
            reference="S10; Mozilla intermediate",
            verdict=Verdict.PASS,
            evidence=[
                EvidenceItem(
                    label="certificate",
                    kind="json",
                    data={"subject": "CN=mx.example.test", "san": ["mx.example.test"]},
                )
            ],
        ),
        ControlResult(
            id="CERT-EXPIRY[smtp]",
            title="Certificates valid for 14+ days (warning under 30)",
            severity=Severity.HIGH,
            reference="RFC 5280 §4.1.2.5; seed S10",
            verdict=Verdict.PASS,
            warnings=["expires within 30 days: CN=mx.example.test on 192.0.2.1:25: 21.5 days"],
        ),
    ]


def load(seed: int = 7, slow_data: float = 1.0) -> LoadResult:
    rng = random.Random(seed)
    duration = 60
    phases = [
        _phase(rng, "smtp", "connect", 300, 3000),
        _phase(rng, "smtp", "starttls", 2_500, 3000, failures=3),
        _phase(rng, "smtp", "ehlo", 180, 3000),
        _phase(rng, "smtp", "data", 4_000 * slow_data, 3000, failures=12),
        _phase(rng, "imap", "login", 1_200, 1500),
        _phase(rng, "imap", "fetch", 800, 1500),
    ]
    delivery, delivery_hist = _latency(rng, 180_000, 2500)
    timeline = []
    for t in range(duration):
        offered = min(50.0, 10 + t)  # a ramp to 50 msg/s
        achieved = offered if offered < 45 else 45 + rng.uniform(-2, 1)
        failures = rng.randint(0, 1) if t < 40 else rng.randint(0, 3)
        connections = float(min(400, 8 * t + rng.randint(0, 5)))
        errors = {"421": rng.randint(0, 3), "timeout": rng.randint(0, 1)} if t > 40 else {}
        smtp_data = PhasePercentiles(
            p50_us=4000 * slow_data * (1 + t / 120),
            p90_us=6500 * slow_data * (1 + t / 80),
            p99_us=9000 * slow_data * (1 + t / 60),
        )
        imap_fetch = PhasePercentiles(p50_us=800.0, p90_us=1500.0 + 5 * t, p99_us=2100.0 + 10 * t)
        timeline.append(
            TimelineRow(
                t=t,
                offered_rps=offered,
                achieved_rps=round(achieved, 2),
                failures=failures,
                errors=errors,
                latency={"smtp.data": smtp_data, "imap.fetch": imap_fetch},
                gauges={"imap.connections": connections},
            )
        )
    return LoadResult(
        scenario="full-chain",
        started=STARTED + timedelta(seconds=30),
        ended=STARTED + timedelta(seconds=30 + duration),
        duration_s=float(duration),
        rate=50.0,
        requests=15000,
        failures=15,
        throughput_rps=250.0,
        phases=[
            *phases,
            PhaseStats(
                request_type="delivery",
                name="smtp→imap",
                count=delivery.count,
                failures=0,
                latency=delivery,
                histogram=delivery_hist,
            ),
        ],
        by_node=[
            _phase(rng, "smtp", "10.0.0.11:25", 3_900 * slow_data, 1500, failures=5),
            _phase(rng, "smtp", "10.0.0.12:25", 4_200 * slow_data, 1500, failures=7),
        ],
        by_class=[
            _phase(rng, "smtp", "submission", 3_000, 1000),
            _phase(rng, "smtp", "inbound-relay", 5_000 * slow_data, 2000, failures=12),
        ],
        errors={"421": 40, "timeout": 9, "550": 2},
        timeline=timeline,
        delivery=delivery,
        watch="pop3",
        poll_interval_s=1.0,
        accounting=Accounting(
            sent=2600,
            accepted=2550,
            delivered=2500,
            lost=0,
            rejected={"421": 40, "550": 2},
            pending=50,
        ),
        capacity=44.0,
        slo=SloVerdict.of(
            {
                "smtp_p99_ms": SloCheck(limit=50.0, measured=31.2, met=True),
                "error_rate_pct": SloCheck(limit=1.0, measured=0.1, met=True),
                "unaccounted_messages": SloCheck(limit=0, measured=0, met=True),
            }
        ),
    )


def run(*, with_load: bool = True, slow_data: float = 1.0) -> RunResults:
    return RunResults(
        tool=ToolInfo(
            version="0.1.0",
            python="3.11.7",
            platform="Linux-6.1-x86_64",
            libraries={"locust": "2.47.0", "sslyze": "6.3.0", "dnspython": "2.7.0"},
        ),
        command=["maildrill", "drill", "--target", "targets/acme prod.toml"],
        target=TargetInfo(
            name=f"acme-prod {HOSTILE}",
            domain="example.test",
            policy="seed-163",
            file="targets/acme-prod.toml",
            file_sha256="ab" * 32,
            endpoints={"smtp": "smtp://mx.example.test:25", "imaps": "imaps://imap.example.test"},
        ),
        started=STARTED,
        ended=STARTED + timedelta(minutes=3),
        controls=controls(),
        load=load(slow_data=slow_data) if with_load else None,
        notes=["S5 (geo-aware DNS) is out of reach on one machine: not checked."],
    )
