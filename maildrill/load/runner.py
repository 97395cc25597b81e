"""Run a scenario with Locust in a subprocess and turn what it measured into a LoadResult.

Locust monkey-patches the standard library with gevent, so it never runs in the calling
process: :func:`run_load` starts ``python -m locust`` headless with the plan in
``MAILDRILL_LOAD_PLAN``, forwards its progress lines, and reads back the raw figures the
plugin writes on quit. Ctrl-C, SIGTERM or SIGHUP (:mod:`maildrill.interrupt`) stops the
subprocess (SIGTERM, on which the plugin stops every user at once and Locust writes its
figures) and returns partial results with ``interrupted=True``; whatever else is left of
Locust's process group is killed before :func:`run_load` returns or raises, and if maildrill
itself is killed the Locust processes die with it (:mod:`maildrill.load.lifeline`)::

    result = run_load(Path("targets/lab.toml"), "full_chain", duration_s=20, rate=20,
                      out_dir=Path("out"), progress=print)
    result.accounting.delivered
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from hdrh.histogram import HdrHistogram

from maildrill import interrupt
from maildrill.clients.events import UNFINISHED
from maildrill.errors import ConfigError, MaildrillError, PolicyViolation
from maildrill.load.figures import RawFigures
from maildrill.load.hdr import CLASS_PREFIX, NODE_PREFIX, summarize
from maildrill.load.lifeline import MASTER_SILENT, PARENT_ENV
from maildrill.load.message import DEFAULT_PROFILE, load_profile
from maildrill.load.plan import PLAN_ENV, WORKER_ERROR, WORKER_TARGET_ENV, LoadPlan, make_plan
from maildrill.load.prepopulate import prepopulate as run_prepopulate
from maildrill.load.prepopulate import prepopulate_endpoint
from maildrill.load.slo import evaluate
from maildrill.load.state import settle_s
from maildrill.load.steps import capacity, judge_steps
from maildrill.results import Accounting, LoadResult, PhaseStats
from maildrill.suites import loadtests_dir
from maildrill.target import Target, load_target

__all__ = ["Master", "plan_load", "run_load", "run_worker"]

PROGRESS_PREFIX = "maildrill: "
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")
# how long a stopped Locust may take to write its figures; its users stop at once
STOP_WAIT_S = 5.0
BACKSTOP_MARGIN_S = 5.0  # the plugin's own end, final reports included, comes before


@dataclass(frozen=True)
class Master:
    """Locust's own distributed mode: this run is the master, and waits up to ``wait_s``
    for ``workers`` workers (``maildrill load --worker``, on this or other machines) to
    connect on ``bind_host:bind_port`` before the load starts."""

    workers: int = 1
    bind_host: str = "*"
    bind_port: int = 5557
    wait_s: float = 60.0


def plan_load(
    target: Target,
    scenario: str = "full_chain",
    duration_s: float = 20,
    users: int | None = None,
    rate: float | None = None,
    *,
    shape: str = "constant",
    timeout_s: float | None = None,
    message_size: int | None = None,
    message_profile: str | None = None,
    recipients: str | None = None,
    prepopulate: int | None = None,
    per_session: int | None = None,
    grace_s: float | None = None,
    watch: str | None = None,
    poll_interval_s: float | None = None,
) -> LoadPlan:
    """Everything :func:`run_load` decides before any traffic, with the same keywords: the
    plan (endpoints, their addresses inside ``safety.allowed_networks``, the rate within
    ``safety.max_rate``), the message profile and every option checked; a wrong one raises
    :class:`~maildrill.errors.ConfigError` or :class:`~maildrill.errors.PolicyViolation`.
    The commands call it before their first probe::

        plan_load(load_target("lab.toml"), "full_chain", rate=500)   # PolicyViolation
    """
    plan = make_plan(
        target,
        scenario,
        duration_s=duration_s,
        users=users,
        rate=rate,
        shape=shape,
        grace_s=grace_s,
        watch=watch,
        poll_interval_s=poll_interval_s,
    )
    if timeout_s is not None:
        if timeout_s <= 0:
            raise ConfigError("--timeout: must be more than 0 seconds")
        plan.timeout_s = float(timeout_s)
    if message_size is not None:
        if message_size < 100:
            raise ConfigError("--message-size: at least 100 bytes")
        plan.message_size = message_size
    profile = load_profile(
        message_profile or "fixed", message_size=message_size, recipients=recipients
    )
    plan.message_profile = profile.to_json()
    if per_session is not None:
        if per_session < 1:
            raise ConfigError("--per-session: at least 1 message")
        plan.per_session = per_session
    if prepopulate:
        prepopulate_endpoint(target, prepopulate)
    return plan


def run_load(
    target_path: Path,
    scenario: str = "full_chain",
    duration_s: float = 20,
    users: int | None = None,
    rate: float | None = None,
    *,
    out_dir: Path,
    processes: int = 1,
    master: Master | None = None,
    shape: str = "constant",
    timeout_s: float | None = None,
    message_size: int | None = None,
    message_profile: str | None = None,
    recipients: str | None = None,
    prepopulate: int | None = None,
    per_session: int | None = None,
    grace_s: float | None = None,
    watch: str | None = None,
    poll_interval_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadResult:
    """Run one scenario against a target file; the run stops by itself after
    ``duration_s`` plus ``timeout_s`` (full_chain: plus a grace period for delivery), the
    deadline of each whole transaction (default 10 s); ``message_profile`` (``fixed``,
    ``default`` or a TOML file; default fixed), ``message_size`` (bytes of the fixed
    profile, default 2048), ``recipients`` (``N`` or ``A-B`` per message) and
    ``per_session`` (messages per SMTP connection, default 10) shape the SMTP traffic;
    ``prepopulate`` tops every test
    account's INBOX up to that many messages (drawn from ``message_profile``, else from the
    default profile) before Locust starts; ``grace_s`` is how long full_chain waits for
    delivery after sending (default: the SLO's delivery p99, at least 5 s); ``watch`` is
    full_chain's watcher protocol (``imap``, the default, or ``pop3``) and ``poll_interval_s``
    how often it looks at a mailbox. ``processes`` runs that many Locust workers on this
    machine; ``master`` makes this run the master of workers started elsewhere."""
    target = load_target(target_path)
    plan = plan_load(
        target,
        scenario,
        duration_s=duration_s,
        users=users,
        rate=rate,
        shape=shape,
        timeout_s=timeout_s,
        message_size=message_size,
        message_profile=message_profile,
        recipients=recipients,
        prepopulate=prepopulate,
        per_session=per_session,
        grace_s=grace_s,
        watch=watch,
        poll_interval_s=poll_interval_s,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if prepopulate:
        filled = run_prepopulate(
            target,
            prepopulate,
            plan.profile() if message_profile else DEFAULT_PROFILE,
            timeout_s=plan.timeout_s,
            progress=progress,
        )
        plan.prepopulated = filled.to_json()
    raw_path = out_dir / "load-raw.json"
    raw_path.unlink(missing_ok=True)
    plan.out = str(raw_path.resolve())
    plan.target = str(Path(target_path).resolve())
    plan_path = plan.write(out_dir / "load-plan.json")
    locustfile = _locustfile(scenario)
    # the plugin ends the run once every arrival has its outcome (each has a deadline), at
    # the latest settle_s after sending; -t is only the backstop should it not, and a user
    # still busy then is past its deadline: Locust gives it a second before stopping it
    backstop = math.ceil(plan.duration_s + settle_s(plan) + BACKSTOP_MARGIN_S)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "-u", str(plan.users), "-r", str(plan.users), "-t", f"{backstop}s",
        "--stop-timeout", "1",
        "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    if processes > 1:
        # not Locust's fixed *:5557: a second run on this machine would fail to bind it, and
        # its workers would join the first run's master
        port = str(_free_loopback_port())
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", port, "--master-port", port]
    waited = 0.0
    if master is not None:
        waited = master.wait_s
        cmd += [
            "--master", "--expect-workers", str(master.workers),
            "--expect-workers-max-wait", str(max(1, math.ceil(master.wait_s))),
            "--master-bind-host", master.bind_host, "--master-bind-port", str(master.bind_port),
        ]  # fmt: skip
    env = {**os.environ, PLAN_ENV: str(plan_path.resolve()), PARENT_ENV: str(os.getpid())}
    # Locust without gevent's monkey patch would block on every socket; a caller may have
    # set this to keep the patch out of its own process (the harness's tests do)
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    started = datetime.now(UTC)
    interrupted = False
    with open(out_dir / "locust.log", "w", encoding="utf-8") as log:
        with interrupt.held():  # a signal now would leave a Locust nobody stops
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, env=env, text=True, start_new_session=True
            )
        assert proc.stdout is not None
        try:
            reader = threading.Thread(target=_pump, args=(proc.stdout, log, progress), daemon=True)
            reader.start()
            interrupt.check()
            _wait(proc, timeout=backstop + STOP_WAIT_S + 30 + waited)
        except KeyboardInterrupt:
            interrupted = True
            _stop(proc)
        except subprocess.TimeoutExpired:
            _stop(proc)
        finally:
            _kill_group(proc)
        reader.join(timeout=5)
        proc.stdout.close()
    if not raw_path.exists():
        if interrupted:  # before Locust had any figure: nothing to keep
            raise KeyboardInterrupt("interrupted before the load started")
        tail = (out_dir / "locust.log").read_text(errors="replace").strip().splitlines()[-5:]
        if master is not None and any("Gave up waiting for workers" in ln for ln in tail):
            raise MaildrillError(
                f"load: fewer than {master.workers} worker(s) connected to "
                f"{master.bind_host}:{master.bind_port} within {master.wait_s:g} s; start "
                f"each with: maildrill load --worker --master-host HOST --master-port "
                f"{master.bind_port} --target FILE"
            )
        raise MaildrillError(
            f"load: Locust ended (exit {proc.returncode}) without figures; see "
            f"{out_dir / 'locust.log'}: {' | '.join(tail)}"
        )
    raw = RawFigures.model_validate_json(raw_path.read_text(encoding="utf-8"))
    if not interrupted and not any(p.count for p in raw.phases):
        _raise_user_failure(out_dir / "locust.log")
    result = to_result(raw, plan, started, interrupted=interrupted or not raw.complete)
    steps = judge_steps(raw, plan, target.slo)
    distributed = processes > 1 or master is not None
    return result.model_copy(
        update={
            "slo": evaluate(result, target.slo, distributed=distributed),
            "steps": steps,
            "capacity": capacity(steps),
            "message_profile": plan.message_profile,
            "prepopulated": plan.prepopulated,
        }
    )


def run_worker(
    target_path: Path,
    master_host: str,
    master_port: int = 5557,
    *,
    log_path: Path,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Serve a master (``maildrill load --master``) as one Locust worker until it quits.

    The scenario comes from the master (Locust's ``-f -``), and so does the plan; this
    machine's target file supplies the accounts' passwords and its safety rules, which the
    plan must satisfy too. Returns Locust's exit code (130, 143 or 129 after SIGINT, SIGTERM
    or SIGHUP: the worker stops its users at once, and the master reports it lost); a plan
    this file refuses raises the worker's one line."""
    load_target(target_path)  # a wrong file stops here, before any connection
    cmd = [
        sys.executable, "-m", "locust", "-f", "-", "--worker",
        "--master-host", master_host, "--master-port", str(master_port),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {
        **os.environ,
        WORKER_TARGET_ENV: str(Path(target_path).resolve()),
        PARENT_ENV: str(os.getpid()),
    }
    env.pop(PLAN_ENV, None)
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress(f"worker: serving the master at {master_host}:{master_port}")
    with open(log_path, "w", encoding="utf-8") as log:
        with interrupt.held():
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, text=True,
                start_new_session=True,
            )  # fmt: skip
        try:
            interrupt.check()
            # Locust bounds it: 300 s to reach a master, 60 s without its heartbeat
            code = _wait(proc)
        except KeyboardInterrupt:
            _stop(proc)
            return interrupt.exit_code()
        finally:
            _kill_group(proc)
    lines = log_path.read_text(errors="replace").splitlines()
    refusal = next((ln for ln in lines if ln.startswith(WORKER_ERROR)), None)
    if refusal is not None:
        kind, _, message = refusal.removeprefix(WORKER_ERROR).partition(": ")
        error = PolicyViolation if kind == PolicyViolation.__name__ else ConfigError
        raise error(f"worker: {message}")
    for line in lines:
        if line.startswith(PROGRESS_PREFIX) and progress is not None:
            progress(line.removeprefix(PROGRESS_PREFIX))
    silent = next((ln for ln in lines if ln.startswith(MASTER_SILENT)), None)
    if silent is not None:  # its load was stopped; the run it served did not end well
        raise MaildrillError(
            f"worker: the master at {master_host}:{master_port} fell silent "
            f"({silent.removeprefix(PROGRESS_PREFIX)})"
        )
    if code != 0:
        raise MaildrillError(
            f"worker: Locust ended (exit {code}); see {log_path}: "
            + " | ".join(line for line in lines[-3:])
        )
    return 0


def _raise_user_failure(log_path: Path) -> None:
    """No request at all: if the scenario's users crashed, say why in one line."""
    lines = log_path.read_text(errors="replace").splitlines()
    if not any(line.startswith("Traceback") for line in lines):
        return  # a silent target is for the figures (and the SLO) to show
    last = next((ln for ln in reversed(lines) if _EXCEPTION_LINE.match(ln)), "an exception")
    if last.startswith(ConfigError.__module__ + "." + ConfigError.__name__):
        raise ConfigError(last.split(": ", 1)[1])
    raise MaildrillError(f"load: the scenario failed before any request: {last} (see {log_path})")


def _locustfile(scenario: str) -> Path:
    folder = loadtests_dir()
    path = folder / f"{scenario}.py"
    if path.is_file():
        return path
    raise MaildrillError(f"load: scenario {scenario} has no locustfile in {folder}/")


def _pump(stream: IO[str], log: IO[str], progress: Callable[[str], None] | None) -> None:
    for line in stream:
        if line.startswith(PROGRESS_PREFIX):
            if progress is not None:
                progress(line[len(PROGRESS_PREFIX) :].rstrip())
        else:
            log.write(line)


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(proc: subprocess.Popen[str], timeout: float | None = None) -> int:
    """Popen.wait without its grace after a KeyboardInterrupt: it would give the child
    0.25 s to end by itself, but Locust, in a session of its own, never saw the signal."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while (code := proc.poll()) is None:
        if deadline is not None and time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0)
        time.sleep(0.05)  # a signal cuts the sleep short
    return code


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to Locust itself, not its group: a --processes master stops its own workers
    (after asking them for their last figures); a worker signalled directly would leave as
    if lost. What has not ended within :data:`STOP_WAIT_S` is killed with the group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _wait(proc, STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Nothing of Locust's session outlives the run (a worker its master did not reap)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def to_result(
    raw: RawFigures, plan: LoadPlan, started: datetime, *, interrupted: bool
) -> LoadResult:
    """A :class:`LoadResult` from the listeners' raw figures."""
    t0 = raw.started or started.timestamp()
    t1 = raw.ended or t0
    all_stats = [
        PhaseStats(
            request_type=p.request_type,
            name=p.name,
            count=p.count,
            failures=p.failures,
            latency=summarize(_decode(p.histogram)),
            histogram=p.histogram,
        )
        for p in raw.phases
    ]
    prefixes = (NODE_PREFIX, CLASS_PREFIX)
    phases = [p for p in all_stats if not p.request_type.startswith(prefixes)]
    by_node, by_class = (
        [
            p.model_copy(update={"request_type": p.request_type.removeprefix(prefix)})
            for p in all_stats
            if p.request_type.startswith(prefix)
        ]
        for prefix in prefixes
    )
    # the run's figures are of arrivals (transactions, sessions), not protocol steps: a
    # message of six steps that failed at the last is one failure in one, not one in six
    served, failures = raw.arrivals.ok, raw.arrivals.failed
    # arrivals are offered while sending: served per second of that is the throughput
    elapsed = max(0.001, min(float(t1 - t0), plan.duration_s))
    chain = plan.scenario == "full_chain"
    errors = dict(raw.errors)
    for kind, n in (("late", raw.late), ("dropped", raw.dropped)):
        if n:
            errors[f"schedule:{kind}"] = n
    unfinished = sum(v for k, v in errors.items() if k.endswith(f":{UNFINISHED}"))
    return LoadResult(
        scenario=plan.scenario,
        started=datetime.fromtimestamp(t0, UTC),
        ended=datetime.fromtimestamp(t1, UTC),
        duration_s=round(float(t1 - t0), 3),
        users=plan.users,
        rate=plan.pace_rate,
        requests=served + failures,
        failures=failures,
        not_served=raw.dropped + unfinished,
        throughput_rps=round(served / elapsed, 2),
        phases=phases,
        by_node=by_node,
        by_class=by_class,
        errors=errors,
        timeline=raw.timeline,
        delivery=summarize(_decode(raw.delivery)) if chain else None,
        accounting=_accounting(raw.accounting, chain) if "send" in plan.roles else None,
        watch=plan.watch or None,
        poll_interval_s=plan.poll_interval_s or None,
        interrupted=interrupted,
        workers_lost=raw.workers_lost,
    )


def _accounting(raw: Accounting, chain: bool) -> Accounting:
    """Without IMAP watchers (smtp_* scenarios) nothing is delivered, lost or pending."""
    if chain:
        return raw
    return Accounting(
        messages=raw.messages, sent=raw.sent, accepted=raw.accepted, rejected=raw.rejected
    )


def _decode(blob: str) -> HdrHistogram:
    from maildrill.load.hdr import new_histogram

    return HdrHistogram.decode(blob.encode("ascii")) if blob else new_histogram()
