"""Judge a load run against the target's SLO (``[slo]`` in the target file).

Usage::

    verdict = evaluate(load, target.slo)
    verdict.met                          # False when any measured figure misses its limit
    verdict.checks["smtp_p99_ms"]        # SloCheck(limit=1000.0, measured=312.4, met=True)

Only figures the run measured are judged: an smtp_inbound run has no delivery latency, so
``delivery_p99_s`` is absent rather than passed. A latency that was attempted but never once
succeeded is *missed*, not a met 0 ms: its check's ``note`` says ``"no successful ..."``. The
error rate is of arrivals (transactions, sessions; see ``LoadResult.requests``). A
full-chain run that lost, duplicated, corrupted or misdelivered a message misses its SLO
whatever the latencies (seed S3: every message accounted for), and so does one whose
watchers could not look for some of them (``unobserved_messages``). A distributed run
(``distributed=True``) that lost a worker misses it too (``workers_lost``).
"""

from __future__ import annotations

from maildrill.results import LoadResult, PhaseStats, SloCheck, SloVerdict
from maildrill.target import SLO

__all__ = ["evaluate"]

# IMAP commands a user waits for; IDLE is a wait by design and session/connect are not
# commands, so none of those three is held to the command SLO
_IMAP_COMMANDS = frozenset({"login", "select", "fetch", "search", "store", "logout"})


def evaluate(load: LoadResult, slo: SLO, *, distributed: bool = False) -> SloVerdict:
    checks: dict[str, SloCheck] = {}

    def judge(name: str, measured: float, limit: float, note: str | None = None) -> None:
        met = measured <= limit and note is None
        checks[name] = SloCheck(limit=limit, measured=round(measured, 3), met=met, note=note)

    def judge_latency(name: str, phases: list[PhaseStats], what: str, limit: float) -> None:
        served = any(p.count > p.failures for p in phases)
        note = None if served else f"no successful {what}"
        judge(name, max(p.latency.p99_us for p in phases) / 1000, limit, note)

    smtp = [
        p for p in load.phases if p.request_type in ("smtp", "smtps") and p.name == "transaction"
    ]
    if smtp:
        judge_latency("smtp_p99_ms", smtp, "SMTP transaction", slo.smtp_p99_ms)
    imap = [
        p for p in load.phases if p.request_type in ("imap", "imaps") and p.name in _IMAP_COMMANDS
    ]
    if imap:
        judge_latency("imap_p99_ms", imap, "IMAP command", slo.imap_p99_ms)
    if load.delivery is not None and load.delivery.count:
        judge("delivery_p99_s", load.delivery.p99_us / 1e6, slo.delivery_p99_s)
    if load.requests:
        judge("error_rate_pct", 100 * load.failures / load.requests, slo.error_rate_pct)
    if load.accounting is not None and load.delivery is not None:
        acc = load.accounting
        wrong = acc.lost + acc.duplicated + acc.corrupted + acc.misdelivered
        judge("unaccounted_messages", wrong, 0)
        # copies nobody could look for: not the server's fault, but not accounted for
        judge("unobserved_messages", acc.unobserved, 0)
    if distributed:
        # a lost worker offered less load than asked for, which no latency or error
        # figure shows: a distributed run is judged on its workers too
        judge("workers_lost", len(load.workers_lost), 0)
    return SloVerdict.of(checks)
