"""The CLI process never imports Locust or gevent.

Locust monkey-patches the standard library with gevent when imported; in a process that has
already imported ssl (every maildrill command has: the TLS checks, the resolver) that patch
is unsafe — with urllib3 2.8 it dies in a RecursionError. The load engine therefore runs
Locust in a subprocess, and nothing the commands import may pull it in.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "maildrill.cli",
    "maildrill.drill",
    "maildrill.check",
    "maildrill.load",
    "maildrill.load.cli",
    "maildrill.load.runner",
    "maildrill.report_cli",
    "maildrill.embedded.cli",
    "maildrill.stack.cli",
    "reports",
]


@pytest.mark.parametrize("module", MODULES)
def test_command_modules_do_not_import_locust(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"{module} imports {proc.stdout.strip()}"
