"""Per-second HDR histograms: the timeline's percentiles and the per-step capacity figures.

One :class:`~maildrill.load.hdr.Recorder` per wall-clock second. A live histogram costs
about 190 KB, so seconds that are over are *packed* (encoded, a few hundred bytes each) and
unpacked only if a late worker report adds to them; merging stays exact either way::

    iv = Intervals()
    iv.record(1_700_000_000, "smtp", "data", 1234)
    iv.pack(before=1_700_000_001)                 # keeps memory flat on long runs
    iv.merge(other.encode())                      # worker -> master, bucket by bucket
    iv.window(range(1_700_000_000, 1_700_000_005)).summary("smtp", "data").p99_us
"""

from __future__ import annotations

from collections.abc import Iterable

from maildrill.load.hdr import Recorder

__all__ = ["Intervals"]

Encoded = dict[str, dict[str, str]]  # str(second) -> Recorder.encode()


class Intervals:
    def __init__(self) -> None:
        self._live: dict[int, Recorder] = {}
        self._packed: dict[int, dict[str, str]] = {}

    def record(self, second: int, request_type: str, name: str, us: int) -> None:
        self._recorder(second).record(request_type, name, us)

    def _recorder(self, second: int) -> Recorder:
        rec = self._live.get(second)
        if rec is None:
            rec = self._live[second] = Recorder()
            packed = self._packed.pop(second, None)
            if packed:
                rec.merge(packed)
        return rec

    def pack(self, before: int) -> None:
        """Encode every live second older than ``before``."""
        for second in [s for s in self._live if s < before]:
            self._packed[second] = self._live.pop(second).encode()

    def encode(self) -> Encoded:
        out = {str(s): rec.encode() for s, rec in self._live.items()}
        out.update({str(s): blob for s, blob in self._packed.items()})
        return out

    def merge(self, encoded: Encoded) -> None:
        for second, blobs in encoded.items():
            if blobs:
                self._recorder(int(second)).merge(blobs)

    def reset(self) -> None:
        self._live.clear()
        self._packed.clear()

    def seconds(self) -> list[int]:
        return sorted(set(self._live) | set(self._packed))

    def at(self, second: int) -> Recorder:
        """The histograms of one second (a copy when that second is packed)."""
        return self.window([second])

    def window(self, seconds: Iterable[int]) -> Recorder:
        """The histograms of several seconds added together (a new Recorder)."""
        total = Recorder()
        for second in seconds:
            live = self._live.get(second)
            if live is not None:
                total.merge(live.encode())
            elif second in self._packed:
                total.merge(self._packed[second])
        return total
