"""Shared fixtures of the harness's own tests (tests/).

The conformance suites get theirs from the maildrill pytest plugin (maildrill/plugin.py);
these are for testing maildrill itself against real servers on loopback.
"""

from __future__ import annotations

pytest_plugins = ["pytester"]
