"""Both-ways proofs of conformance/reachability: scripted servers that behave pass every
control on every role; each weak server fails the one control its flaw is about, for that
reason. The weak servers are grouped into two targets (one flaw per role in each), so the
whole proof costs three suite runs, made side by side."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from maildrill.target import Role
from tests.conformance.declared import declared
from tests.conformance.reachability.servers import serve
from tests.conformance.suite import SuiteRun, run_suites

# every control the reachability suite declares, read from its markers: each needs a proof
CONTROLS = frozenset(declared("reachability"))


@dataclass(frozen=True)
class Proof:
    control: str
    role: Role
    flaw: str  # the weak server's flaw (see servers.FLAWS)
    reason: str  # what the control's reason must say: it failed for this flaw

    @property
    def id(self) -> str:
        return f"{self.control}[{self.role}]"


# one flaw per role in each target; each flaw is the weakness of exactly one control
WEAK_TARGETS: dict[str, list[Proof]] = {
    "weak-a": [
        Proof("GREET-SMTP", Role.SMTP, "554 greeting", "554"),  # RFC 5321 §4.2
        Proof("CAP-SMTP-AUTH", Role.SUBMISSION, "no AUTH", "does not advertise AUTH"),
        Proof("GREET-SMTP", Role.SMTPS, "greeting without host name", "host name"),  # §4.3.1
        Proof("CAP-IMAP", Role.IMAP, "no STARTTLS", "does not offer STARTTLS"),  # RFC 2595 §3.1
        Proof("GREET-IMAP", Role.IMAPS, "PREAUTH greeting", "PREAUTH"),  # RFC 9051 §7.1.4
        Proof("CAP-POP3", Role.POP3, "no STLS", "does not offer STLS"),  # RFC 2595 §4
        Proof("GREET-POP3", Role.POP3S, "-ERR greeting", "-ERR"),  # RFC 1939 §4
        Proof("GREET-HTTP", Role.WEBMAIL, "500", "500"),  # RFC 9110 §15.6
    ],
    "weak-b": [
        Proof("CAP-SMTP-STARTTLS", Role.SMTP, "no STARTTLS", "advertise STARTTLS"),  # RFC 3207
        Proof("CAP-SMTP-STARTTLS", Role.SUBMISSION, "no STARTTLS", "advertise STARTTLS"),
        Proof("CAP-SMTP-AUTH", Role.SMTPS, "no AUTH", "does not advertise AUTH"),  # RFC 8314
        Proof("CAP-IMAP", Role.IMAP, "no IMAP4rev1", "no IMAP4rev1/rev2"),  # RFC 9051 §6.1.1
        Proof("GREET-IMAP", Role.IMAPS, "BYE greeting", "BYE"),  # RFC 9051 §7.1.5
        Proof("CAP-POP3", Role.POP3, "no CAPA", "CAPA answered"),  # RFC 2449 §5
        Proof("REACH-CONNECT", Role.POP3S, "no TLS", "TLS handshake failed"),  # port open
        Proof("REACH-CONNECT", Role.WEBMAIL, "closed port", "refused"),
    ],
    "weak-c": [
        Proof("GREET-IMAP", Role.IMAP, "OKAY greeting", "* OKAY"),  # RFC 9051 §7.1: "OK" SP
    ],
}
PROOFS = [proof for proofs in WEAK_TARGETS.values() for proof in proofs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SuiteRun]]:
    """The suite's results on the good target ("good") and on each weak target."""
    layouts: dict[str, dict[Role, str | None]] = {"good": dict.fromkeys(Role)}
    for name, proofs in WEAK_TARGETS.items():
        layouts[name] = {proof.role: proof.flaw for proof in proofs}
        assert len(layouts[name]) == len(proofs), f"{name}: two flaws on one role"
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=len(layouts)) as pool:
        futures = {}
        for name, flaws in layouts.items():
            directory = tmp_path_factory.mktemp(name)
            target = stack.enter_context(serve(directory, flaws))
            futures[name] = pool.submit(run_suites, target, directory, "reachability")
        yield {name: future.result() for name, future in futures.items()}


def test_every_control_has_a_weak_server() -> None:
    assert {proof.control for proof in PROOFS} == CONTROLS


def test_good_servers_pass_every_control_on_every_role(runs: dict[str, SuiteRun]) -> None:
    run = runs["good"]
    assert {cid.split("[", 1)[0] for cid in run.controls} == CONTROLS, run.output
    not_passed = set(run.controls) - run.verdicts("pass")
    assert not not_passed, run.describe(not_passed)
    # the other half of each proof: the same control on the same role, on a good server
    assert {proof.id for proof in PROOFS} <= run.verdicts("pass")


@pytest.mark.parametrize(
    ("target", "proof"),
    [(name, proof) for name, proofs in WEAK_TARGETS.items() for proof in proofs],
    ids=lambda value: f"{value.id}-{value.flaw}" if isinstance(value, Proof) else value,
)
def test_weak_server_fails_its_control(
    runs: dict[str, SuiteRun], target: str, proof: Proof
) -> None:
    run = runs[target]
    assert proof.id in run.controls, run.output
    result = run.controls[proof.id]
    assert result["verdict"] == "fail", run.describe({proof.id})
    assert proof.reason in result["reason"], run.describe({proof.id})
