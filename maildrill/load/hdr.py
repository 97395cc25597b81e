"""HDR histograms at microsecond resolution, one per (request_type, name), mergeable exactly.

Locust rounds response times to about two significant digits (locust #255); these histograms
keep three, from 1 µs to one hour, and merge without loss across worker processes because
they travel encoded (``hdrh``'s compressed base64) and are added bucket by bucket::

    rec = Recorder()
    rec.record("smtp", "data", 1234)             # microseconds
    wire = rec.encode()                          # dict, JSON-safe, sent worker -> master
    total = Recorder(); total.merge(wire)
    total.summary("smtp", "data").p99_us
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

from maildrill.results import LatencySummary

__all__ = [
    "CLASS_PREFIX",
    "DELIVERY",
    "HIGHEST_US",
    "NODE_PREFIX",
    "Recorder",
    "new_histogram",
    "summarize",
]

HIGHEST_US = 3_600_000_000  # one hour; anything slower is clamped and still counted
SIGNIFICANT_DIGITS = 3
# request_type prefix of the per-node histograms (seed S4): ("node:smtp", "127.0.0.1:25")
NODE_PREFIX = "node:"
# request_type prefix of the per-traffic-class histograms (seed S8): ("class:smtp", "inbound")
CLASS_PREFIX = "class:"
DELIVERY = ("delivery", "message")  # (request_type, name) of the delivery-latency phase

Key = tuple[str, str]


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)


def summarize(hist: HdrHistogram) -> LatencySummary:
    if hist.get_total_count() == 0:
        return LatencySummary(
            count=0, min_us=0, mean_us=0.0, p50_us=0, p90_us=0, p99_us=0, p999_us=0, max_us=0
        )
    return LatencySummary(
        count=int(hist.get_total_count()),
        min_us=int(hist.get_min_value()),
        mean_us=round(float(hist.get_mean_value()), 1),
        p50_us=int(hist.get_value_at_percentile(50)),
        p90_us=int(hist.get_value_at_percentile(90)),
        p99_us=int(hist.get_value_at_percentile(99)),
        p999_us=int(hist.get_value_at_percentile(99.9)),
        max_us=int(hist.get_max_value()),
    )


class Recorder:
    """Histograms keyed by (request_type, name), plus the delivery-latency histogram."""

    def __init__(self) -> None:
        self.histograms: dict[Key, HdrHistogram] = {}

    def record(self, request_type: str, name: str, us: int) -> None:
        hist = self.histograms.get((request_type, name))
        if hist is None:
            hist = self.histograms[(request_type, name)] = new_histogram()
        hist.record_value(min(max(1, int(us)), HIGHEST_US))

    def encode(self) -> dict[str, str]:
        """``"type\\tname" -> encoded histogram``, JSON-safe for report_to_master."""
        return {
            f"{rt}\t{name}": hist.encode().decode("ascii")
            for (rt, name), hist in self.histograms.items()
            if hist.get_total_count()
        }

    def merge(self, encoded: dict[str, str]) -> None:
        for key, blob in encoded.items():
            rt, _, name = key.partition("\t")
            other = HdrHistogram.decode(blob.encode("ascii"))
            hist = self.histograms.get((rt, name))
            if hist is None:
                hist = self.histograms[(rt, name)] = new_histogram()
            hist.add(other)

    def reset(self) -> None:
        self.histograms.clear()

    def recorded(self) -> list[Key]:
        return sorted(k for k, h in self.histograms.items() if h.get_total_count())

    def summary(self, request_type: str, name: str) -> LatencySummary:
        hist = self.histograms.get((request_type, name))
        return summarize(hist if hist is not None else new_histogram())

    def encoded(self, request_type: str, name: str) -> str:
        hist = self.histograms.get((request_type, name))
        return "" if hist is None else str(hist.encode().decode("ascii"))
