"""Shared fixtures of the harness's own tests (tests/).

The conformance suites get theirs from the maildrill pytest plugin
(maildrill/controls/pytest_plugin.py); these are for testing maildrill itself against real
servers on loopback.
"""

from __future__ import annotations

import os

# Importing locust monkey-patches the whole process with gevent. The harness's tests import
# the load engine's modules, and in one pytest process that patch turned sslyze's worker
# threads (the TLS suites' tests) into greenlets that never ran: the whole run hung. Locust
# itself always runs in a subprocess (maildrill.load.runner), which is where the patch
# belongs; the runner re-enables it there.
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"

pytest_plugins = ["pytester"]
