"""The load engine: Locust scenarios run in a subprocess, measured with HDR histograms.

Usage::

    from maildrill.load import run_load
    result = run_load(Path("target.toml"), "full_chain", duration_s=20, rate=20,
                      out_dir=Path("out"), progress=print)
    result.delivery.p99_us, result.accounting.lost

Modules: ``hdr`` (histograms, exact merge), ``plan`` (endpoints, nodes, safety),
``plugin`` (Locust listeners), ``ledger`` (full-chain accounting), ``watch`` (IMAP
watchers), ``users`` (User bases for ``loadtests/``), ``runner`` (the subprocess), ``cli``.
"""

from __future__ import annotations

from maildrill.load.runner import Master, run_load, run_worker

__all__ = ["Master", "run_load", "run_worker"]
