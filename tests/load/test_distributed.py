"""Locust's distributed mode through maildrill: ``load --master`` and ``load --worker``.

The workers are started as a user on another machine would start them (here on loopback):
with nothing but the master's address and their own target file."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from maildrill.results import read_results

embedded = pytest.importorskip("maildrill.embedded")

pytestmark = pytest.mark.slow

LOAD = [sys.executable, "-m", "maildrill", "load"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master(target: Path, out: Path, port: int, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *LOAD, "--target", str(target), "--out", str(out), "--master",
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), *options,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def worker(target: Path, out: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *LOAD, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
            "--target", str(target), "--out", str(out),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_remote_workers_run_the_masters_plan(tmp_path: Path) -> None:
    port = free_port()
    with embedded.launch(tmp_path / "lab", accounts=5) as target:
        boss = master(
            target, tmp_path / "out", port, "--expect-workers", "2",
            "--scenario", "full_chain", "--rate", "20", "--duration", "4",
        )  # fmt: skip
        workers = [worker(target, tmp_path / f"w{i}", port) for i in range(2)]
        _, boss_err = boss.communicate(timeout=120)
        ends = [w.communicate(timeout=60) for w in workers]
    assert boss.returncode == 0, boss_err[-2000:]
    assert [w.returncode for w in workers] == [0, 0], [e[1][-1000:] for e in ends]
    load = read_results(tmp_path / "out" / "results.json").load
    assert load is not None and load.accounting is not None
    acc = load.accounting
    assert acc.accepted >= 60 and acc.delivered == acc.accepted == acc.sent, acc
    assert (acc.lost, acc.duplicated, acc.corrupted, acc.pending) == (0, 0, 0, 0)
    # each worker sent a share, and the master's figures hold exactly what they sent
    done = [re.search(r"worker done: (\d+) protocol steps, (\d+) failed", out) for out, _ in ends]
    assert all(done), ends
    shares = [int(m.group(1)) for m in done if m]
    assert all(share > 0 for share in shares), shares
    assert sum(shares) == sum(p.count for p in load.phases if p.request_type == "smtp")


def test_a_worker_whose_target_forbids_the_masters_nodes_refuses(tmp_path: Path) -> None:
    port = free_port()
    with embedded.launch(tmp_path / "lab", accounts=5) as target:
        narrow = tmp_path / "narrow.toml"
        text = target.read_text(encoding="utf-8")
        assert "[safety]" not in text  # the embedded target's file allows loopback by default
        narrow.write_text(text + '\n[safety]\nallowed_networks = ["10.9.0.0/16"]\n', "utf-8")
        boss = master(
            target, tmp_path / "out", port, "--scenario", "smtp_inbound", "--rate", "10",
            "--duration", "2", "--expect-workers-wait", "30",
            # at its end the master waits --timeout + 5 s for the refusing worker's final
            # report, which never comes: 7 s instead of 15 (no transaction is ever made)
            "--timeout", "2",
        )  # fmt: skip
        refusing = worker(narrow, tmp_path / "w", port)
        _, err = refusing.communicate(timeout=60)
        boss.communicate(timeout=120)  # the master runs on, without it, and ends by itself
    assert refusing.returncode == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "allowed_networks" in lines[0] and "10.9.0.0/16" in lines[0]


def test_a_master_without_workers_gives_up_with_one_line(tmp_path: Path) -> None:
    with embedded.launch(tmp_path / "lab", accounts=5) as target:
        boss = master(
            target, tmp_path / "out", free_port(), "--scenario", "smtp_inbound",
            "--duration", "2", "--expect-workers", "2", "--expect-workers-wait", "2",
        )  # fmt: skip
        _, err = boss.communicate(timeout=60)
    assert boss.returncode == 1
    assert "Traceback" not in err
    assert "fewer than 2 worker(s) connected" in err and "--worker" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--worker"], "--master-host HOST is required"),
        (["--worker", "--master-host", "127.0.0.1", "--master"], "not with --master"),
        (["--master", "--processes", "2"], "not with --processes"),
    ],
)
def test_distributed_options_that_do_not_go_together(
    tmp_path: Path, options: list[str], message: str
) -> None:
    with embedded.launch(tmp_path / "lab", accounts=2) as target:
        proc = subprocess.run(
            [*LOAD, "--target", str(target), "--out", str(tmp_path / "o"), *options],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
