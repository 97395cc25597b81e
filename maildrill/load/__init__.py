"""The load engine: Locust scenarios run in a subprocess, measured with HDR histograms.

Usage::

    from maildrill.load import run_load
    result = run_load(Path("target.toml"), "full_chain", duration_s=20, rate=20,
                      out_dir=Path("out"), progress=print)
    result.delivery.p99_us, result.accounting.lost

Modules: ``hdr`` (histograms, exact merge), ``plan`` (endpoints, nodes, safety),
``listeners`` (Locust listeners), ``state`` (one process's figures, on Locust's
environment), ``figures`` (what the processes hand each other), ``ledger`` (full-chain
accounting), ``watch`` (IMAP/POP3 watchers), ``users`` (User bases for ``loadtests/``),
``runner`` (the subprocess).
"""

from __future__ import annotations

from maildrill.load.runner import Master, run_load, run_worker

__all__ = ["Master", "run_load", "run_worker"]
