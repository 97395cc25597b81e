"""What a run can know before its first probe, checked before it: one line and exit 2.

``check``, ``drill``, ``load`` and ``report`` call these before preflight (or rendering),
so that a mistake in the files or the options never costs a run of the checks, nor ends it
in a traceback or in a dozen ``error`` verdicts that all say the same thing::

    target, waivers = ready(Path("lab.toml"), out=Path("out"), waivers=None,
                            load={"scenario": "full_chain", "duration_s": 20, "rate": 20})

In order: the waiver file; the target file; every test account's password (the variable
set, the file readable and holding a line for each); for a load run, its plan — every
address of every endpoint it uses inside ``safety.allowed_networks``, the rate within
``safety.max_rate`` and every load option — made by the same code the load runner uses
(:func:`maildrill.load.runner.plan_load`); last ``--out``, created if need be and written to.
``drill`` checks the waiver and baseline files and ``--out`` before it starts the embedded
target, whose file it then checks as any other.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from maildrill.controls.waivers import Waivers, load_waivers
from maildrill.errors import ConfigError
from maildrill.target import Target, load_target

__all__ = ["baseline_ready", "out_ready", "ready", "target_ready", "waivers_ready"]


def ready(
    target_path: Path,
    *,
    out: Path,
    waivers: Path | None = None,
    load: dict[str, Any] | None = None,
) -> tuple[Target, Waivers | None]:
    """The target and the waivers of a run, everything about them checked (see above);
    ``load`` holds :func:`~maildrill.load.runner.plan_load`'s keywords when the run has a
    load part."""
    found = waivers_ready(waivers)
    target = target_ready(target_path, load=load)
    out_ready(out)
    return target, found


def waivers_ready(path: Path | None) -> Waivers | None:
    """The waiver file, read now: a malformed one stops the run (exit 2)."""
    return None if path is None else load_waivers(path)


def baseline_ready(path: Path | None) -> None:
    """An earlier results.json to compare with, read now: it must be one (exit 2)."""
    if path is not None:
        from maildrill.reports import load_run

        load_run(path, "baseline")


def target_ready(path: Path, *, load: dict[str, Any] | None = None) -> Target:
    """The target file, its accounts' passwords and, for a load run, its plan."""
    target = load_target(path)
    for _ in target.iter_accounts():  # each raises ConfigError naming the variable or file
        pass
    if load is not None:
        from maildrill.load.runner import plan_load  # 'check' has no load: not imported there

        plan_load(target, **load)
    return target


def out_ready(out: Path) -> Path:
    """``--out``: a directory, created if it is not there, that a file can be written in."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot be created ({exc.strerror})") from None
    try:
        # root passes every permission check; a read-only file system still says no
        with tempfile.NamedTemporaryFile(dir=out, prefix=".maildrill-"):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot be written ({exc.strerror})") from None
    return out
