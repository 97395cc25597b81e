"""Message profiles in real runs: several recipients per message accounted copy by copy, a
message over the SIZE limit counted as rejected with its reply code, and mailboxes topped
up before a run (imaptest's msgs=)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.load import run_load
from maildrill.results import read_results
from maildrill.target import load_target
from tests.load.servers import SIZE_LIMIT, smtp_server, write_target
from tests.load.test_full_chain import run_full_chain

embedded = pytest.importorskip("maildrill.embedded")

pytestmark = pytest.mark.slow


def profile_file(folder: Path, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.toml"
    path.write_text(f'name = "big"\n[[sizes]]\nmin = {size}\nmax = {size}\n', encoding="utf-8")
    return path


def test_a_refused_recipient_rejects_its_own_copy_only(tmp_path: Path) -> None:
    with smtp_server("picky") as server:
        load = run_load(
            write_target(tmp_path, server.port),
            "smtp_inbound",
            duration_s=2,
            rate=10,
            recipients="3",
            out_dir=tmp_path / "out",
        )
    acc = load.accounting
    assert acc is not None, load.errors
    evidence = f"{acc}; server saw {server.messages} messages, refused {server.refused} RCPTs"
    # three of the five accounts in turn: every message keeps at least two recipients
    assert acc.messages >= 14 and acc.sent == 3 * acc.messages, evidence
    assert server.messages == acc.messages, evidence
    assert acc.rejected == {"550": server.refused} and server.refused > 0, evidence
    assert acc.accepted == acc.sent - server.refused, evidence
    assert load.failures == server.refused, evidence  # the refused rcpt phases, nothing else


def test_a_message_over_the_size_limit_is_rejected_with_552_not_lost(tmp_path: Path) -> None:
    with smtp_server("picky") as server:
        load = run_load(
            write_target(tmp_path, server.port),
            "smtp_inbound",
            duration_s=2,
            rate=5,
            message_profile=str(profile_file(tmp_path, SIZE_LIMIT + 50_000)),
            out_dir=tmp_path / "out",
        )
    acc = load.accounting
    assert acc is not None
    assert acc.sent >= 6 and acc.rejected == {"552": acc.sent} and acc.accepted == 0, acc
    assert server.messages == 0  # refused at MAIL FROM SIZE=: no byte of DATA was sent
    assert load.errors == {"smtp:552": acc.sent}, load.errors
    assert load.message_profile["name"] == "big"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with embedded.launch(tmp_path_factory.mktemp("lab"), accounts=3) as path:
        yield path


def test_full_chain_with_the_default_profile_accounts_for_every_copy(tmp_path: Path) -> None:
    proc = run_full_chain(
        tmp_path, "--duration", "4", "--rate", "6", "--message-profile", "default",
        "--recipients", "2-3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "out"
    load = read_results(out / "results.json").load
    assert load is not None and load.accounting is not None and load.delivery is not None
    acc = load.accounting
    evidence = f"{acc}; errors {load.errors}"
    assert acc.messages >= 12 and 2 * acc.messages <= acc.sent <= 3 * acc.messages, evidence
    assert acc.sent == acc.accepted == acc.delivered == load.delivery.count, evidence
    assert (acc.lost, acc.duplicated, acc.corrupted, acc.pending) == (0, 0, 0, 0), evidence
    assert load.message_profile["name"] == "default"
    assert load.message_profile["recipients"] == [{"weight": 1, "low": 2, "high": 3}]
    plan = json.loads((out / "load-plan.json").read_text())
    assert plan["message_profile"] == load.message_profile
    rcpt = next(p for p in load.phases if (p.request_type, p.name) == ("smtp", "rcpt"))
    assert rcpt.count == acc.sent  # one RCPT per copy


def test_over_the_embedded_size_limit_is_rejected_with_552(lab: Path, tmp_path: Path) -> None:
    limit = load_target(lab).expect.max_message_size
    assert limit is not None
    load = run_load(
        lab,
        "smtp_inbound",
        duration_s=2,
        rate=2,
        message_profile=str(profile_file(tmp_path, limit + 100_000)),
        out_dir=tmp_path / "out",
    )
    acc = load.accounting
    assert acc is not None and acc.sent >= 2 and acc.rejected == {"552": acc.sent}, acc
