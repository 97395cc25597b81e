"""What a load run will do, decided before any traffic: endpoints, nodes, rate, safety.

A :class:`LoadPlan` is written as JSON next to the results and handed to the Locust
subprocess through ``MAILDRILL_LOAD_PLAN``; scenarios read it with :func:`current_plan`::

    plan = make_plan(load_target("targets/lab.toml"), "full_chain", duration_s=20, rate=50)
    plan.nodes["smtp"]      # [("127.0.0.1", 2525)] - every address checked against safety

Load is refused (:class:`~maildrill.errors.PolicyViolation`) unless every resolved address of
every endpoint used lies inside ``safety.allowed_networks`` and the rate is within
``safety.max_rate``.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from maildrill.dnsrecords.resolver import endpoint_addresses
from maildrill.errors import ConfigError, PolicyViolation
from maildrill.load.message import MessageProfile, fixed_profile
from maildrill.target import Role, Target, load_target

__all__ = [
    "PLAN_ENV",
    "POLL_INTERVAL_S",
    "SCENARIOS",
    "SHAPES",
    "WATCHERS",
    "WORKER_ERROR",
    "WORKER_TARGET_ENV",
    "LoadPlan",
    "adopt_plan",
    "current_plan",
    "make_plan",
    "safe_addresses",
]

PLAN_ENV = "MAILDRILL_LOAD_PLAN"
# a worker started by ``maildrill load --worker``: its own target file; its plan comes from
# the master (see :func:`adopt_plan`)
WORKER_TARGET_ENV = "MAILDRILL_WORKER_TARGET"
WORKER_ERROR = "maildrill-worker-error: "  # the one line a refusing remote worker leaves

# full_chain's watcher protocol -> the roles its watchers may read from, in order of
# preference; "read" in SCENARIOS["full_chain"] is the default watcher's
WATCHERS: dict[str, tuple[Role, ...]] = {
    "imap": (Role.IMAPS, Role.IMAP),
    "pop3": (Role.POP3S, Role.POP3),
}
# default seconds between looks at a mailbox, which bound delivery latency's resolution.
# IMAP searches anyway after this long in IDLE: servers announce new mail late (Dovecot
# ~0.5 s after delivery, pymap not within the wait). POP3 has no announcements and each
# look is a whole session (TLS, login), so a slower pace is kinder to the server
POLL_INTERVAL_S = {"imap": 0.1, "pop3": 1.0}

# scenario -> roles it may use, in order of preference, per protocol
SCENARIOS: dict[str, dict[str, tuple[Role, ...]]] = {
    "full_chain": {
        "send": (Role.SMTP, Role.SUBMISSION, Role.SMTPS),
        "read": WATCHERS["imap"],
    },
    "smtp_inbound": {"send": (Role.SMTP,)},
    "smtp_submission": {"send": (Role.SUBMISSION, Role.SMTPS)},
    # seed S8: inbound relay and authenticated submission at once, latency per class
    "smtp_mixed": {"send": (Role.SMTP,), "submit": (Role.SUBMISSION, Role.SMTPS)},
    "imap_session": {"read": (Role.IMAPS, Role.IMAP)},
    "pop3_session": {"read": (Role.POP3S, Role.POP3)},
    # seed S2: the webmail cluster, driven as a browser would (login, list, read, send)
    "webmail": {"read": (Role.WEBMAIL,)},
}

SHAPES = ("constant", "step", "spike")


@dataclass
class LoadPlan:
    target: str
    scenario: str
    duration_s: float
    users: int
    rate: float | None
    grace_s: float
    roles: dict[str, str]  # "send"/"read" -> role used
    nodes: dict[str, list[tuple[str, int]]]  # role -> addresses
    max_rate: float = 100.0
    shape: str = "constant"  # constant | step | spike (seed S6)
    out: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    watch_accounts: int = 5
    per_session: int = 10
    message_size: int = 2048
    # MessageProfile.to_json(); empty: the fixed profile of message_size
    message_profile: dict[str, Any] = field(default_factory=dict)
    prepopulated: dict[str, int] = field(default_factory=dict)  # see LoadResult.prepopulated
    progress_every_s: float = 5.0
    timeout_s: float = 10.0
    watch: str = ""  # full_chain: the watchers' protocol (a key of WATCHERS)
    poll_interval_s: float = 0.0  # full_chain: seconds between looks at a mailbox
    webmail_send_every: int = 5  # webmail: every Nth session also sends a message (0: never)

    @property
    def pace_rate(self) -> float:
        """The rate senders keep to: the asked rate, never above safety.max_rate."""
        return min(self.rate, self.max_rate) if self.rate else self.max_rate

    def rate_at(self, elapsed_s: float) -> float:
        """The arrival rate at ``elapsed_s`` into the run, per :data:`SHAPES`.

        step: four equal steps up to the rate; spike: a quarter of the rate, with the full
        rate from 40 % to 60 % of the duration.
        """
        full = self.pace_rate
        fraction = min(max(elapsed_s / self.duration_s, 0.0), 1.0)
        if self.shape == "step":
            return full * min(4, int(fraction * 4) + 1) / 4
        if self.shape == "spike":
            return full if 0.4 <= fraction < 0.6 else full / 4
        return full

    def profile(self) -> MessageProfile:
        """What the senders draw their messages from."""
        if self.message_profile:
            return MessageProfile.from_json(self.message_profile)
        return fixed_profile(self.message_size)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        data = json.loads(text)
        data["nodes"] = {k: [tuple(a) for a in v] for k, v in data["nodes"].items()}
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> LoadPlan:
        return cls.from_json(path.read_text(encoding="utf-8"))


def make_plan(
    target: Target,
    scenario: str,
    *,
    duration_s: float = 20.0,
    users: int | None = None,
    rate: float | None = None,
    grace_s: float | None = None,
    shape: str = "constant",
    watch: str | None = None,
    poll_interval_s: float | None = None,
) -> LoadPlan:
    """Choose endpoints, resolve every node and apply the safety rules.

    ``watch`` (full_chain only): ``imap`` (IDLE sessions, the default) or ``pop3``
    (polling); ``poll_interval_s`` defaults per protocol (:data:`POLL_INTERVAL_S`)."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"--scenario: unknown {scenario!r} (one of: {', '.join(SCENARIOS)})")
    chain = scenario == "full_chain"
    if (watch is not None or poll_interval_s is not None) and not chain:
        raise ConfigError("--watch/--poll-interval: only the full_chain scenario has watchers")
    watch = watch or "imap"
    if watch not in WATCHERS:
        raise ConfigError(f"--watch: unknown {watch!r} (one of: {', '.join(WATCHERS)})")
    if poll_interval_s is not None and not 0 < poll_interval_s <= 60:
        raise ConfigError("--poll-interval: more than 0 and at most 60 seconds")
    if shape not in SHAPES:
        raise ConfigError(f"--shape: unknown {shape!r} (one of: {', '.join(SHAPES)})")
    if duration_s <= 0:
        raise ConfigError("--duration: must be more than 0 seconds")
    # 0 is no rate at all, not "the most allowed": that is what leaving --rate out says
    if rate is not None and rate <= 0:
        raise ConfigError(f"--rate: must be more than 0 per second (got {rate:g})")
    if grace_s is not None and grace_s <= 0:
        raise ConfigError(f"--grace: must be more than 0 seconds (got {grace_s:g})")
    max_rate = target.safety.max_rate
    if rate is not None and rate > max_rate:
        raise PolicyViolation(
            f"rate {rate:g}/s exceeds safety.max_rate {max_rate:g}/s of {target.name}"
        )
    roles: dict[str, str] = {}
    nodes: dict[str, list[tuple[str, int]]] = {}
    purposes = dict(SCENARIOS[scenario])
    if chain:
        purposes["read"] = WATCHERS[watch]
    for purpose, wanted in purposes.items():
        role = next((r for r in wanted if r in target.endpoints), None)
        if role is None:
            names = " or ".join(str(r) for r in wanted)
            raise ConfigError(
                f"endpoints: scenario {scenario} needs an endpoint {names}; "
                f"target {target.name} has none"
            )
        roles[purpose] = str(role)
        nodes[str(role)] = safe_addresses(target, role, "load")
    if users is None:
        # enough senders that each keeps ≤ 20 messages/s at ~50 ms per transaction
        users = max(5, math.ceil((rate or max_rate) / 20))
    if users < 1:
        raise ConfigError("--users: must be at least 1")
    return LoadPlan(
        target=str(target.source or ""),
        scenario=scenario,
        duration_s=float(duration_s),
        users=users,
        rate=rate,
        max_rate=max_rate,
        grace_s=float(grace_s if grace_s is not None else max(5.0, target.slo.delivery_p99_s)),
        roles=roles,
        nodes=nodes,
        watch_accounts=min(5, target.accounts.count),
        shape=shape,
        watch=watch if chain else "",
        poll_interval_s=(poll_interval_s or POLL_INTERVAL_S[watch]) if chain else 0.0,
    )


def safe_addresses(target: Target, role: Role, what: str) -> list[tuple[str, int]]:
    """Every address of the target's ``role`` endpoint, refusing ``what`` (e.g. "load")
    unless all of them lie inside ``safety.allowed_networks``::

        safe_addresses(target, Role.SMTP, "load")     # [("127.0.0.1", 2525)]
    """
    endpoint = target.endpoints[role]
    addresses = endpoint_addresses(target, endpoint)
    outside = [a for a, _ in addresses if not target.safety.allows(a)]
    if outside:
        raise PolicyViolation(
            f"endpoints.{role}: {endpoint.host} resolves to {', '.join(outside)}, outside "
            f"safety.allowed_networks ({', '.join(target.safety.allowed_networks)}); "
            f"{what} refused"
        )
    return addresses


def current_plan(
    target_option: str | None = None, locustfile: str = "", watch: str | None = None
) -> LoadPlan:
    """The plan of this Locust process: from ``MAILDRILL_LOAD_PLAN``, or made now from a
    target file (``locust -f loadtests/x.py --maildrill-target FILE``) for the scenario
    named by ``MAILDRILL_SCENARIO``, else by the locustfile (``loadtests/webmail.py``);
    ``watch`` is full_chain's watcher protocol there (``--maildrill-watch pop3``)."""
    env = os.environ.get(PLAN_ENV)
    if env:
        return LoadPlan.read(Path(env))
    path = target_option or os.environ.get("MAILDRILL_TARGET")
    if not path:
        raise ConfigError("no load plan: set MAILDRILL_LOAD_PLAN or --maildrill-target FILE")
    return make_plan(load_target(path), _scenario(locustfile), duration_s=60.0, watch=watch)


def adopt_plan(text: str, target_path: str) -> LoadPlan:
    """A remote worker's plan: the master's (``text``, its JSON), with this machine's target
    file for the accounts and passwords, and only if that file's safety rules allow it too:
    every node the master resolved inside this file's ``allowed_networks``, the rate within
    its ``max_rate``. The worker writes no results; the master does."""
    if not text:
        raise ConfigError(
            "the master sent no maildrill plan: start it with maildrill load --master"
        )
    plan = LoadPlan.from_json(text)
    target = load_target(target_path)
    for role, addresses in plan.nodes.items():
        outside = sorted({a for a, _ in addresses if not target.safety.allows(a)})
        if outside:
            raise PolicyViolation(
                f"the master's endpoints.{role} nodes {', '.join(outside)} are outside "
                f"safety.allowed_networks of {target_path} "
                f"({', '.join(target.safety.allowed_networks)}); load refused"
            )
    if plan.pace_rate > target.safety.max_rate:
        raise PolicyViolation(
            f"the master's rate {plan.pace_rate:g}/s exceeds safety.max_rate "
            f"{target.safety.max_rate:g}/s of {target_path}; load refused"
        )
    plan.target = str(Path(target_path).resolve())
    plan.out = ""
    return plan


def _scenario(locustfile: str) -> str:
    named = os.environ.get("MAILDRILL_SCENARIO")
    if named:
        return named
    stem = Path(locustfile).stem
    return stem if stem in SCENARIOS else "full_chain"
