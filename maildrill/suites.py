"""Where the user-facing folders live: ``conformance/`` (pytest checks), ``loadtests/``
(Locust scenarios) and ``reports/`` (the report templates) are data to maildrill, found by
path and never imported as packages, so that imports go one way (the suites import
``maildrill``, not the reverse).

A checkout has them beside the ``maildrill`` package; an installed wheel carries them as
shared data under ``<prefix>/share/maildrill/`` (pyproject's ``data-files``)::

    conformance_dir() / "tls"        # what ``maildrill check`` hands to pytest
    loadtests_dir() / "full_chain.py"  # what ``maildrill load`` hands to Locust
    report_templates_dir() / "report.html.j2"  # what maildrill.reports renders
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from maildrill.errors import ConfigError

__all__ = ["conformance_dir", "loadtests_dir", "report_templates_dir"]


def conformance_dir() -> Path:
    return _locate("conformance")


def loadtests_dir() -> Path:
    return _locate("loadtests")


def report_templates_dir() -> Path:
    return _locate("reports") / "templates"


def _candidates(name: str) -> list[Path]:
    checkout = Path(__file__).resolve().parent.parent / name
    # an installed wheel's data-files land under the scheme's data path (the prefix), or the
    # user scheme's for ``pip install --user``
    schemes = [sysconfig.get_default_scheme(), f"{os.name}_user"]
    shared = [Path(sysconfig.get_path("data", s)) / "share" / "maildrill" / name for s in schemes]
    return [checkout, *shared]


def _locate(name: str) -> Path:
    candidates = _candidates(name)
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise ConfigError(
        f"the {name}/ suites were not found (looked in {', '.join(map(str, candidates))})"
    )
