"""The CI gate: one pure decision from a run's results, the waivers and the date.

0 when every control passed after waivers (waived failures count as passed, ``error`` does
not: the gate does not pass what it could not see) and the load run, if any, met its SLO;
1 otherwise, and always when a waiver has expired. The renderers display this figure; they
do not decide it::

    code = decide(read_results(Path("out/results.json")), load_waivers("waivers.toml"),
                  today=date(2025, 6, 1))
"""

from __future__ import annotations

from datetime import date

from maildrill.controls.waivers import Disposition, Waivers
from maildrill.results import RunResults

__all__ = ["decide"]

_FAILING = frozenset({Disposition.FAILED, Disposition.EXPIRED})


def decide(run: RunResults, waivers: Waivers | None, today: date) -> int:
    """The gate's exit code for ``run``: 0 pass, 1 fail."""
    if waivers is not None and waivers.expired(today):
        return 1
    applied = (waivers or Waivers()).apply(run.controls, today)
    if any(d in _FAILING for _, _, d in applied):
        return 1
    if run.load is not None and run.load.slo is not None and not run.load.slo.met:
        return 1
    return 0
