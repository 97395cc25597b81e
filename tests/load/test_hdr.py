"""The HDR recording helper: exact percentiles, and an exact merge across workers."""

from __future__ import annotations

import random

from maildrill.load.hdr import HIGHEST_US, Recorder


def test_percentiles_are_exact_for_known_values() -> None:
    rec = Recorder()
    for us in range(1, 1001):  # 1..1000 µs: below 2048, HDR with 3 digits is exact
        rec.record("smtp", "data", us)
    s = rec.summary("smtp", "data")
    assert (s.count, s.min_us, s.max_us) == (1000, 1, 1000)
    assert (s.p50_us, s.p90_us, s.p99_us, s.p999_us) == (500, 900, 990, 999)
    assert s.mean_us == 500.5


def test_three_significant_digits_at_large_values() -> None:
    rec = Recorder()
    rec.record("imap", "fetch", 1_234_567)
    s = rec.summary("imap", "fetch")
    assert abs(s.p50_us - 1_234_567) / 1_234_567 < 1e-3  # Locust's own keeps ~2 digits


def test_out_of_range_values_are_clamped_and_still_counted() -> None:
    rec = Recorder()
    rec.record("smtp", "connect", 0)
    rec.record("smtp", "connect", HIGHEST_US * 10)
    s = rec.summary("smtp", "connect")
    assert s.count == 2 and s.min_us == 1 and s.max_us >= HIGHEST_US * 0.999


def test_merged_worker_histograms_equal_one_process() -> None:
    """What --processes N reports equals one process recording the same values."""
    rng = random.Random(7)
    values = [int(rng.lognormvariate(8, 1.5)) + 1 for _ in range(20_000)]
    single = Recorder()
    workers = [Recorder() for _ in range(3)]
    for i, us in enumerate(values):
        single.record("smtp", "transaction", us)
        workers[i % 3].record("smtp", "transaction", us)
    master = Recorder()
    for worker in workers:  # what each worker's report_to_master ships
        master.merge(worker.encode())
        worker.reset()
    assert master.summary("smtp", "transaction") == single.summary("smtp", "transaction")
    merged = master.histograms[("smtp", "transaction")]
    alone = single.histograms[("smtp", "transaction")]
    assert list(merged.counts) == list(alone.counts)  # bucket by bucket


def test_empty_phase_summarises_to_zero() -> None:
    assert Recorder().summary("pop3", "retr").count == 0
