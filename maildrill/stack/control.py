"""Bring a stack up, report its status, take it down.

Usage::

    state = up(Path("/tmp/stack-good"), "good")      # writes target.toml, state.json
    for svc in status(Path("/tmp/stack-good")):
        print(svc.name, svc.up)
    down(Path("/tmp/stack-good"))
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from maildrill.errors import ConfigError, MaildrillError
from maildrill.stack import procs
from maildrill.stack.binaries import require_binaries
from maildrill.stack.layout import LOCKOUT_AFTER, Layout, Ports, Profile
from maildrill.stack.render import render

__all__ = ["ServiceStatus", "StackState", "down", "load_state", "status", "up"]

READY_TIMEOUT = 30.0
# what `up` creates under the stack directory, removed when the directory is reused
_GENERATED = (
    "postfix",
    "postfix-queue",
    "postfix-data",
    "dovecot",
    "knot",
    "opendkim",
    "spamassassin",
    "mail",
    "logs",
    "pki",
    "webmail",
)


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    session: int
    start: int  # clock ticks since boot, /proc/PID/stat field 22: tells a reused pid apart
    log: str
    ports: tuple[tuple[str, int], ...]

    @property
    def proc(self) -> procs.Proc:
        return procs.Proc(self.pid, self.session, self.start)


@dataclass(frozen=True)
class StackState:
    profile: Profile
    root: str
    weaknesses: tuple[str, ...]
    started: float
    up_seconds: float
    services: tuple[Service, ...]

    @property
    def target_file(self) -> Path:
        return Path(self.root) / "target.toml"

    @property
    def raw_target_file(self) -> Path:
        return Path(self.root) / "target-raw.toml"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int
    running: bool
    ports: tuple[tuple[str, int, bool], ...]  # host, port, accepting

    @property
    def up(self) -> bool:
        return self.running and all(ok for _, _, ok in self.ports)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _greets(host: str, port: int) -> bool:
    """An SMTP port whose smtpd starts and says 220: Postfix's master accepts connections
    even when every smtpd it forks dies of a configuration error."""
    try:
        with socket.create_connection((host, port), timeout=2.0) as sock:
            return sock.recv(4).startswith(b"220")
    except OSError:
        return False


def _serving(service: str, host: str, port: int) -> bool:
    if service == "postfix" and port != Ports.smtps:
        return _greets(host, port)
    return _listening(host, port)


def _check_dir(root: Path) -> None:
    """The daemons run as postfix, dovecot, nobody: every parent must let them through."""
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            raise ConfigError(
                f"--dir {root}: {parent} is not searchable by other users "
                f"(the stack's daemons run unprivileged); chmod o+x it or pick another --dir"
            )


def _service_plan(layout: Layout) -> list[tuple[str, list[str], tuple[tuple[str, int], ...]]]:
    d, n, p = layout.dirs, layout.net, layout.ports
    spamass = ["/usr/sbin/spamass-milter", "-p", f"inet:{p.spamass}@{n.mx1}", "-m"]
    if "spam-false-positive" in layout.weak and "gtube-accepted" not in layout.weak:
        spamass += ["-r", "7"]  # reject at the seed's 7.0 while tagging far below it
    elif "gtube-accepted" not in layout.weak:
        spamass += ["-r", "-1"]  # reject at SpamAssassin's own required_score
    spamass += ["--", "-d", n.mx1, "-p", str(p.spamd)]
    return [
        ("knot", ["/usr/sbin/knotd", "-c", str(d.knot / "knot.conf")], ((n.dns, p.dns),)),
        (
            "spamd",
            [
                "/usr/sbin/spamd",
                f"--listen={n.mx1}:{p.spamd}",
                "--allowed-ips=127.0.0.0/8",
                "--nouser-config",
                "--local",
                f"--siteconfigpath={d.spamassassin}",
                "--username=debian-spamd",
                "--groupname=debian-spamd",
                "--max-children=2",
                "--syslog=stderr",
            ],
            ((n.mx1, p.spamd),),
        ),
        ("spamass-milter", spamass, ((n.mx1, p.spamass),)),
        (
            "spf-policy",
            [
                sys.executable,
                "-m",
                "maildrill.stack.spf_policy",
                f"--listen={n.mx1}:{p.spf_policy}",
                f"--resolver={n.dns}:{p.dns}",
            ],
            ((n.mx1, p.spf_policy),),
        ),
        (
            "dmarc-milter",
            [
                sys.executable,
                "-m",
                "maildrill.stack.dmarc_milter",
                f"--listen={n.mx1}:{p.dmarc}",
                f"--resolver={n.dns}:{p.dns}",
            ],
            ((n.mx1, p.dmarc),),
        ),
        *(
            []
            if "login-lockout-missing" in layout.weak
            else [
                (
                    "lockout-policy",
                    [
                        sys.executable,
                        "-m",
                        "maildrill.stack.lockout_policy",
                        f"--listen={n.mx1}:{p.lockout_policy}",
                        f"--max-retry={LOCKOUT_AFTER}",
                    ],
                    ((n.mx1, p.lockout_policy),),
                )
            ]
        ),
        (
            "opendkim",
            ["/usr/sbin/opendkim", "-f", "-x", str(d.opendkim / "opendkim.conf")],
            ((n.mx1, p.opendkim),),
        ),
        (
            "dovecot",
            ["/usr/sbin/dovecot", "-F", "-c", str(d.dovecot / "dovecot.conf")],
            tuple((n.mx1, port) for port in (p.imap, p.imaps, p.pop3, p.pop3s, p.lmtp)),
        ),
        # webmail (seed S2): Roundcube on PHP-FPM, nginx terminating TLS in front
        (
            "php-fpm",
            ["/usr/sbin/php-fpm8.2", "-F", "-y", str(d.webmail / "php-fpm.conf")],
            ((n.mx1, p.php_fpm),),
        ),
        (
            "nginx",
            # -p and -e: nginx's prefix and its first error log (before it reads its
            # config) would otherwise be under /usr/share/nginx and /var/log/nginx
            [
                *("/usr/sbin/nginx", "-c", str(d.webmail / "nginx.conf"), "-g", "daemon off;"),
                *("-p", f"{d.webmail}/", "-e", str(d.logs / "nginx-error.log")),
            ],
            ((n.mx1, p.webmail),),
        ),
    ]


def _postfix_ports(layout: Layout) -> tuple[tuple[str, int], ...]:
    n, p = layout.net, layout.ports
    return (
        (n.mx1, p.smtp),
        (n.mx2, p.smtp),
        (n.mx1, p.smtp_raw),
        (n.mx1, p.submission),
        (n.mx1, p.smtps),
    )


def _start_postfix(layout: Layout) -> int:
    conf = layout.dirs.postfix
    # Postfix prints its start-up errors only to a terminal: `script` gives it one
    command = shlex.join(["/usr/sbin/postfix", "-c", str(conf), "start"])
    out = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, check=False
    )
    pidfile = layout.dirs.queue / "pid" / "master.pid"
    if out.returncode != 0 or not pidfile.exists():
        lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
        raise MaildrillError(f"postfix did not start: {' | '.join(lines[-3:]) or out.returncode}")
    return int(pidfile.read_text().strip())


def load_state(root: Path) -> StackState:
    path = root / "state.json"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"--dir {root}: no stack here (no state.json); run 'stack up'") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--dir {root}: cannot read state.json: {exc}") from None
    services = tuple(
        Service(
            name=s["name"],
            pid=s["pid"],
            session=s.get("session") or 0,
            start=s.get("start", -1),  # unknown start time: never treated as running
            log=s["log"],
            ports=tuple((h, int(port)) for h, port in s["ports"]),
        )
        for s in data["services"]
    )
    return StackState(
        profile=data["profile"],
        root=data["root"],
        weaknesses=tuple(data.get("weaknesses", ())),
        started=data["started"],
        up_seconds=data["up_seconds"],
        services=services,
    )


def _save_state(layout: Layout, state: StackState) -> None:
    layout.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")


def _tail(path: str, lines: int = 3) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(ln.strip() for ln in text[-lines:])


def up(
    root: Path,
    profile: Profile = "good",
    timeout: float = READY_TIMEOUT,
    only: frozenset[str] | None = None,
    net: str | None = None,
) -> StackState:
    """Render and start a stack; return once every port accepts connections.

    ``only`` (weak profile) turns on just those weaknesses of ``weaknesses.toml``;
    ``net`` ("127.0.N") replaces the profile's loopback block.
    """
    layout = Layout.for_profile(root, profile, only, net)
    require_binaries()
    if layout.state_file.exists() and any(s.running for s in status(layout.root)):
        raise ConfigError(
            f"--dir {layout.root}: a stack is already running there "
            f"(maildrill stack down --dir {layout.root})"
        )
    busy = [
        f"{h}:{port}"
        for h, port in [
            *(pp for _, _, ports in _service_plan(layout) for pp in ports),
            *_postfix_ports(layout),
        ]
        if _listening(h, port)
    ]
    if busy:
        raise ConfigError(
            f"{busy[0]} is already in use (another stack on {layout.net.mx1.rsplit('.', 1)[0]}? "
            f"'maildrill stack down --dir DIR', or choose another --net)"
        )
    layout.root.mkdir(parents=True, exist_ok=True)
    _check_dir(layout.root)
    if layout.state_file.exists():  # a stopped stack of ours: start from a clean slate
        (layout.root / "stopped").unlink(missing_ok=True)
        for sub in _GENERATED:
            shutil.rmtree(layout.root / sub, ignore_errors=True)
    t0 = time.monotonic()
    weak = tuple(sorted(layout.weak))
    render(layout)
    services: list[Service] = []
    started = time.time()

    def record(name: str, proc: procs.Proc, log: Path, ports: tuple[tuple[str, int], ...]) -> None:
        services.append(Service(name, proc.pid, proc.session, proc.start, str(log), ports))
        _save_state(
            layout, StackState(profile, str(layout.root), weak, started, 0.0, tuple(services))
        )

    try:
        for name, argv, ports in _service_plan(layout):
            if name == "dovecot":  # its SASL socket goes into Postfix's queue directory
                record(
                    "postfix",
                    procs.identify(_start_postfix(layout)),
                    layout.dirs.postfix / "maillog",
                    _postfix_ports(layout),
                )
            log = layout.dirs.logs / f"{name}.log"
            record(name, procs.spawn(argv, log), log, ports)
        _wait_ready(services, timeout)
    except BaseException:
        procs.stop_all([s.proc for s in services])
        raise
    state = StackState(
        profile, str(layout.root), weak, started, round(time.monotonic() - t0, 2), tuple(services)
    )
    _save_state(layout, state)
    return state


def _wait_ready(services: list[Service], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = {(s.name, h, p) for s in services for h, p in s.ports}
    while pending:
        for s in services:
            if not s.proc.running():
                raise MaildrillError(f"{s.name} exited at start-up; {s.log}: {_tail(s.log)}")
        pending = {(name, h, p) for name, h, p in pending if not _serving(name, h, p)}
        if not pending:
            return
        if time.monotonic() > deadline:
            name, h, p = sorted(pending)[0]
            log = next(s.log for s in services if s.name == name)
            raise MaildrillError(
                f"{name} not listening on {h}:{p} after {timeout:.0f} s; {log}: {_tail(log)}"
            )
        time.sleep(0.1)


def status(root: Path) -> list[ServiceStatus]:
    """Each service of the stack in ``root``: its pid alive, each port accepting."""
    state = load_state(root)

    def one(s: Service) -> ServiceStatus:
        running = s.proc.running()
        return ServiceStatus(
            s.name,
            s.pid,
            running,
            tuple((h, p, running and _serving(s.name, h, p)) for h, p in s.ports),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, state.services))


def down(root: Path, timeout: float = 15.0) -> tuple[float, list[int]]:
    """Stop every daemon of the stack in parallel; (seconds taken, pids that were killed)."""
    state = load_state(root)
    t0 = time.monotonic()
    stopping = procs.now_ticks()
    killed = procs.stop_all([s.proc for s in state.services], timeout=timeout)
    # remembered so that leftover_processes() never counts a later process as the stack's
    (Path(state.root) / "stopped").write_text(f"{stopping}\n")
    return round(time.monotonic() - t0, 2), killed


def leftover_processes(root: Path) -> list[int]:
    """Pids of the stack still alive after ``down`` (should be empty)."""
    state = load_state(root)
    try:
        until: int | None = int((Path(state.root) / "stopped").read_text())
    except (OSError, ValueError):
        until = None
    return procs.stragglers([s.proc for s in state.services], until)
