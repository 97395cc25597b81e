"""One sslyze scan of every TLS endpoint of a target, run concurrently, read by many checks.

Like sslyze's own plugin model, the TLS checks do not scan: :func:`scan_target` plans the
scan commands for every node of every TLS endpoint, runs them all at once in one
:class:`sslyze.Scanner`, and each check reads its part of the result (:meth:`NodeScan.get`).
Names are resolved through the target's resolver and sslyze connects to that address with
the endpoint's host name as SNI, so lab names work; the target's CA file is sslyze's custom
trust store for certificate validation.

Errors are data: an endpoint that refuses, hangs or speaks no TLS becomes a scan whose
``error`` says why, and :meth:`NodeScan.get` raises :class:`~maildrill.errors.TLSFailure`
with that reason — which the plugin records as an ``error`` control (the check could not
find out), never a crash. sslyze's own faults are contained the same way: each node's
connectivity test runs first in a thread of ours, so an exception sslyze does not expect
(a greeting that is not UTF-8 once made its STARTTLS helper raise ``UnicodeDecodeError``
in a worker thread, and the whole scan then waited for a result that never came) is that
node's ``error``, and no traceback reaches the console.

Usage::

    scan = scan_target(target)                       # ≈ 10-20 s for seven mail ports
    for node in scan.endpoint(Role.SMTP).nodes:
        tls12 = node.get(ScanCommand.TLS_1_2_CIPHER_SUITES)
        [s.cipher_suite.name for s in tls12.accepted_cipher_suites]
"""

from __future__ import annotations

import gc
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

# sslyze re-exports these at its top level without __all__; import from where they live
from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum
from sslyze.errors import ConnectionToServerFailed
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import (
    ScanCommandsExtraArguments,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_connectivity import check_connectivity_to_server
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from maildrill.dnsrecords.resolver import addresses
from maildrill.errors import Blocked, ConfigError, TargetError, TLSFailure
from maildrill.smtp_protocol import EHLO_NAME
from maildrill.target import Endpoint, Role, Target

__all__ = [
    "STARTTLS_ROLES",
    "TLS_ROLES",
    "VERSION_COMMANDS",
    "AcceptedSuite",
    "EndpointScan",
    "NodeScan",
    "TlsScan",
    "accepted_suites",
    "accepted_versions",
    "certificate_deployments",
    "scan_commands",
    "scan_target",
    "suites_table",
    "tls_roles",
]

# sslyze's scan command for each protocol version, oldest first (names as in maildrill.tls.policy)
VERSION_COMMANDS: tuple[tuple[str, ScanCommand], ...] = (
    ("SSLv2", ScanCommand.SSL_2_0_CIPHER_SUITES),
    ("SSLv3", ScanCommand.SSL_3_0_CIPHER_SUITES),
    ("TLSv1", ScanCommand.TLS_1_0_CIPHER_SUITES),
    ("TLSv1.1", ScanCommand.TLS_1_1_CIPHER_SUITES),
    ("TLSv1.2", ScanCommand.TLS_1_2_CIPHER_SUITES),
    ("TLSv1.3", ScanCommand.TLS_1_3_CIPHER_SUITES),
)

# what the checks read; nothing else is scanned. TLS_1_3_EARLY_DATA is left out on
# purpose: early data breaks an SMTP session (FACTS), and no control needs it.
_BASE_COMMANDS = frozenset(
    {
        *(command for _, command in VERSION_COMMANDS),
        ScanCommand.CERTIFICATE_INFO,
        ScanCommand.TLS_COMPRESSION,
        ScanCommand.SESSION_RENEGOTIATION,
        ScanCommand.HEARTBLEED,
        ScanCommand.ROBOT,
        ScanCommand.OPENSSL_CCS_INJECTION,
        ScanCommand.ELLIPTIC_CURVES,  # TLS-DH-PARAMS (and sslyze's Mozilla checker)
    }
)
# sslyze's Mozilla checker also reads these (SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER)
_MOZILLA_COMMANDS = frozenset(
    {
        ScanCommand.TLS_FALLBACK_SCSV,
        ScanCommand.TLS_EXTENDED_MASTER_SECRET,
    }
)

_STARTTLS: dict[Role, ProtocolWithOpportunisticTlsEnum] = {
    Role.SMTP: ProtocolWithOpportunisticTlsEnum.SMTP,
    Role.SUBMISSION: ProtocolWithOpportunisticTlsEnum.SMTP,
    Role.IMAP: ProtocolWithOpportunisticTlsEnum.IMAP,
    Role.POP3: ProtocolWithOpportunisticTlsEnum.POP3,
}

# the roles a TLS check runs for: every role may speak TLS (webmail only over https://)
TLS_ROLES: tuple[Role, ...] = tuple(Role)
STARTTLS_ROLES: tuple[Role, ...] = tuple(_STARTTLS)

NETWORK_TIMEOUT = 10  # seconds per connection attempt (sslyze's is 5: too short for a
# Dovecot login process under load; a port that hangs is caught earlier by the precheck)
NETWORK_RETRIES = 2  # sslyze's default is 3; a hanging port should not hold the suite long
SCAN_DEADLINE = 120.0  # the whole scan; an endpoint still unfinished then is a failure
# sslyze's default; the scan is bound by the servers' handshakes (Dovecot forks a login
# process per connection), and on 2 cores more connections per server did not help
PER_SERVER_CONNECTIONS = 5
PRECHECK_TIMEOUT = 5.0  # a port that neither greets nor handshakes in this time hangs


def tls_roles(target: Target) -> list[Role]:
    """The roles of ``target`` that speak TLS (STARTTLS or implicit); plain HTTP does not."""
    return [role for role, ep in target.endpoints.items() if tls_mode(ep) is not None]


def tls_mode(endpoint: Endpoint) -> str | None:
    """``"starttls"``, ``"implicit"`` or ``None`` (a plaintext-only endpoint)."""
    if endpoint.implicit_tls:
        return "implicit"
    if endpoint.role in _STARTTLS:
        return "starttls"
    return None


def scan_commands(policy: str) -> frozenset[ScanCommand]:
    """The scan commands the checks of ``policy`` read."""
    if policy.startswith("mozilla-"):
        return _BASE_COMMANDS | _MOZILLA_COMMANDS
    return _BASE_COMMANDS


@dataclass(frozen=True)
class NodeScan:
    """sslyze's result for one address of one endpoint, or why there is none."""

    address: str
    port: int
    result: ServerScanResult | None = None
    error: str | None = None
    attempts: int = 1  # 2 when a first scan with connectivity errors was repeated

    @property
    def label(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def retryable(self) -> bool:
        """Failed in a way a busy server explains (a timeout, a command cut short)."""
        if self.error is not None:
            return "TimedOut" in self.error or "timed out" in self.error
        return self.failures > 0

    @property
    def failures(self) -> int:
        """How many scan commands have no result (the whole scan counts as one)."""
        if self.error is not None or self.result is None or self.result.scan_result is None:
            return len(ScanCommand)
        return sum(
            getattr(self.result.scan_result, c.value).status == ScanCommandAttemptStatusEnum.ERROR
            for c in ScanCommand
        )

    def get(self, command: ScanCommand) -> Any:
        """The result of ``command`` on this node; :class:`TLSFailure` with the reason if none."""
        if self.error is not None:
            raise TLSFailure(f"{self.label}: {self.error}")
        assert self.result is not None and self.result.scan_result is not None
        attempt = getattr(self.result.scan_result, command.value)
        if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
            return attempt.result
        if attempt.status == ScanCommandAttemptStatusEnum.NOT_SCHEDULED:
            raise TLSFailure(f"{self.label}: {command.value} was not scanned")
        reason = attempt.error_reason.value if attempt.error_reason else "error"
        detail = _last_line(attempt.error_trace)
        raise TLSFailure(f"{self.label}: {command.value} failed ({reason}): {detail}")


@dataclass(frozen=True)
class EndpointScan:
    """Every node of one endpoint, scanned."""

    role: Role
    host: str
    port: int
    mode: str  # "starttls" or "implicit"
    nodes: tuple[NodeScan, ...] = ()
    error: str | None = None  # the endpoint could not be scanned at all (e.g. DNS)
    blocked: str | None = None  # not scanned: an earlier finding (see maildrill.controls.preflight)

    def scanned(self) -> tuple[NodeScan, ...]:
        """Every node; :class:`Blocked` or :class:`TLSFailure` if the endpoint was not scanned."""
        if self.blocked is not None:
            raise Blocked(self.blocked)
        if self.error is not None:
            raise TLSFailure(f"{self.host}:{self.port}: {self.error}")
        return self.nodes

    def each(self, command: ScanCommand) -> list[tuple[NodeScan, Any]]:
        """(node, result) for every node; :class:`TLSFailure` if any node has no result."""
        return [(node, node.get(command)) for node in self.scanned()]

    def server_result(self, node: NodeScan) -> ServerScanResult:
        if node.error is not None or node.result is None:
            raise TLSFailure(f"{node.label}: {node.error}")
        return node.result


@dataclass(frozen=True)
class TlsScan:
    """The session's one scan: every TLS endpoint of the target."""

    policy: str
    endpoints: dict[Role, EndpointScan] = field(default_factory=dict)
    seconds: float = 0.0

    def endpoint(self, role: Role) -> EndpointScan:
        return self.endpoints[role]


def _request(
    target: Target, endpoint: Endpoint, address: str, commands: frozenset[ScanCommand]
) -> ServerScanRequest:
    ca_file = None
    if target.ca_path is not None:
        try:
            ca_file = CertificateInfoExtraArgument(custom_ca_file=target.ca_path)
        except ValueError:  # sslyze checks the file exists
            raise ConfigError(f"ca_file: cannot read {target.ca_path}") from None
    extra = ScanCommandsExtraArguments(certificate_info=ca_file)
    assert endpoint.role is not None
    starttls = None if endpoint.implicit_tls else _STARTTLS.get(endpoint.role)
    smtp = starttls == ProtocolWithOpportunisticTlsEnum.SMTP
    return ServerScanRequest(
        server_location=ServerNetworkLocation(
            hostname=endpoint.host, port=endpoint.port, ip_address=address
        ),
        network_configuration=ServerNetworkConfiguration(
            tls_server_name_indication=endpoint.host,
            tls_opportunistic_encryption=starttls,
            smtp_ehlo_hostname=EHLO_NAME if smtp else None,
            network_timeout=NETWORK_TIMEOUT,
            network_max_retries=NETWORK_RETRIES,
        ),
        scan_commands=set(commands),
        scan_commands_extra_arguments=extra,
    )


def scan_target(
    target: Target,
    *,
    roles: Iterable[Role] | None = None,
    deadline: float = SCAN_DEADLINE,
) -> TlsScan:
    """Scan every node of every TLS endpoint of ``target`` (or of ``roles``) at once.

    Example::

        scan = scan_target(load_target("lab.toml"))
        scan.endpoint(Role.IMAPS).each(ScanCommand.HEARTBLEED)
    """
    started = time.perf_counter()
    asked = roles if roles is not None else tls_roles(target)
    commands = scan_commands(target.policy)
    planned: dict[Role, EndpointScan] = {}
    nodes: list[tuple[Role, str]] = []
    for role in (r for r in asked if r in target.endpoints):
        endpoint = target.endpoints[role]
        mode = tls_mode(endpoint)
        if mode is None:
            continue
        planned[role] = EndpointScan(role=role, host=endpoint.host, port=endpoint.port, mode=mode)
        try:
            nodes += [(role, address) for address in addresses(target, endpoint.host)]
        except TargetError as exc:
            planned[role] = replace(planned[role], error=str(exc))

    # a refused or silent node fails here in seconds instead of in sslyze's retries
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        refusals = list(pool.map(lambda n: _precheck(target.endpoints[n[0]], n[1]), nodes))
    found: dict[tuple[Role, str], NodeScan] = {}
    requests: dict[Any, tuple[Role, str]] = {}  # sslyze's request uuid -> (role, address)
    scan_requests: list[ServerScanRequest] = []
    planned_requests = []
    for (role, address), refusal in zip(nodes, refusals, strict=True):
        endpoint = target.endpoints[role]
        if refusal is not None:
            found[(role, address)] = NodeScan(address, endpoint.port, error=refusal)
            continue
        request = _request(target, endpoint, address, commands)
        requests[request.uuid] = (role, address)
        planned_requests.append(request)
    # sslyze's scanner waits for every connectivity test before it scans anything; one that
    # raised what sslyze does not catch would hold every node until the deadline
    with _sslyze_faults_kept() as faults:
        with warnings.catch_warnings():
            # sslyze drops the socket of a failed negotiation unclosed; collected here
            warnings.simplefilter("ignore", ResourceWarning)
            tested = _bounded(_connectivity, planned_requests, deadline / 2)
            # a busy server can miss a handshake deadline in the crowd: test those again
            slow = [r for r in planned_requests if _timed_out(tested.get(r.uuid))]
            tested |= _bounded(_connectivity, slow, deadline / 4)
            gc.collect()
        for request in planned_requests:
            role, address = requests[request.uuid]
            port = request.server_location.port
            problem = tested.get(request.uuid, "no TLS connectivity result in time")
            if problem is None:
                scan_requests.append(request)
            else:
                found[(role, address)] = NodeScan(address, port, error=problem)
        if scan_requests:
            left = deadline - (time.perf_counter() - started)
            found |= _run(scan_requests, requests, left)
            # a busy server (Dovecot forks a login process per connection) can miss a
            # handshake deadline in the crowd of the first pass: scan such nodes once more
            first = {key: node.failures for key, node in found.items()}
            again = [
                r
                for r in scan_requests
                if (node := found.get(requests[r.uuid])) is None or node.retryable
            ]
            left = deadline - (time.perf_counter() - started)
            if again and left > 0:
                for key, node in _run(again, requests, left).items():
                    if node.failures < first.get(key, len(ScanCommand) + 1):
                        found[key] = replace(node, attempts=2)

    endpoints: dict[Role, EndpointScan] = {}
    for role, scan in planned.items():
        missing = f"no scan result within {deadline:g} s" + (
            f" (the TLS scanner failed: {faults[0]})" if faults else ""
        )
        scanned = tuple(
            found.get((r, address), NodeScan(address, scan.port, error=missing))
            for r, address in nodes
            if r == role
        )
        endpoints[role] = replace(scan, nodes=scanned)
    return TlsScan(
        policy=target.policy,
        endpoints=endpoints,
        seconds=round(time.perf_counter() - started, 2),
    )


def _precheck(endpoint: Endpoint, address: str) -> str | None:
    """Why a node cannot be scanned (refused, silent), or None to hand it to sslyze.

    STARTTLS ports must greet; implicit-TLS ports must complete or refuse a handshake
    within the timeout. A handshake that *fails* is left to sslyze, which knows more
    protocol versions and suites than this machine's OpenSSL.
    """
    where = f"{endpoint.host} ({address}:{endpoint.port})"
    try:
        sock = socket.create_connection((address, endpoint.port), timeout=PRECHECK_TIMEOUT)
    except ConnectionRefusedError:
        return f"{where}: connection refused"
    except OSError as exc:
        return f"{where}: no connection: {exc}"
    with sock:
        try:
            if endpoint.implicit_tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                with ctx.wrap_socket(sock, server_hostname=endpoint.host):
                    return None
            elif not sock.recv(1):
                return f"{where}: closed the connection without a greeting"
        except TimeoutError:
            what = "TLS handshake" if endpoint.implicit_tls else "greeting"
            return f"{where}: no {what} within {PRECHECK_TIMEOUT:g} s"
        except (ssl.SSLError, OSError):
            return None  # let sslyze try (and report) the handshake itself
    return None


def _connectivity(request: ServerScanRequest) -> str | None:
    """Why sslyze cannot scan this node (its connectivity test failed or crashed), or None."""
    try:
        check_connectivity_to_server(request.server_location, request.network_configuration)
    except ConnectionToServerFailed as exc:
        return f"no TLS connection: {exc}"
    except Exception as exc:  # sslyze's own fault on this server's answers: data, not a crash
        return f"the TLS scanner (sslyze) failed on this node: {type(exc).__name__}: {exc}"
    return None


def _timed_out(problem: str | None) -> bool:
    return problem is not None and ("TimedOut" in problem or "timed out" in problem)


_T = TypeVar("_T")


def _bounded(
    work: Callable[[ServerScanRequest], _T], requests: list[ServerScanRequest], seconds: float
) -> dict[Any, _T]:
    """``work`` on every request at once, in daemon threads; the results in by ``seconds``
    (a hung call is abandoned, not waited for)."""
    results: dict[Any, _T] = {}
    threads = []
    for request in requests:

        def run(request: ServerScanRequest = request) -> None:
            results[request.uuid] = work(request)

        thread = threading.Thread(target=run, name="maildrill-tls-probe", daemon=True)
        thread.start()
        threads.append(thread)
    end = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return dict(results)


@contextmanager
def _sslyze_faults_kept() -> Iterator[list[str]]:
    """An exception escaping a thread during the scan is kept here instead of printed: the
    scan reports it as the node's error, a user sees no third-party traceback."""
    faults: list[str] = []
    previous = threading.excepthook

    def keep(args: threading.ExceptHookArgs) -> None:
        faults.append(f"{args.exc_type.__name__}: {args.exc_value}")

    threading.excepthook = keep
    try:
        yield faults
    finally:
        threading.excepthook = previous


def _run(
    scan_requests: list[ServerScanRequest],
    requests: dict[Any, tuple[Role, str]],
    deadline: float,
) -> dict[tuple[Role, str], NodeScan]:
    found: dict[tuple[Role, str], NodeScan] = {}
    done = threading.Event()

    def work() -> None:
        try:
            scanner = Scanner(
                per_server_concurrent_connections_limit=PER_SERVER_CONNECTIONS,
                concurrent_server_scans_limit=max(1, len(scan_requests)),
            )
            scanner.queue_scans(scan_requests)
            for result in scanner.get_results():
                role, address = requests[result.uuid]
                found[(role, address)] = _node(address, result)
        finally:
            done.set()

    # a thread with a deadline: sslyze's own timeouts should end every job, but a
    # server that trickles bytes must not hold the whole suite
    thread = threading.Thread(target=work, name="maildrill-tls-scan", daemon=True)
    thread.start()
    done.wait(deadline)
    return dict(found)


def _node(address: str, result: ServerScanResult) -> NodeScan:
    port = result.server_location.port
    if result.scan_status == ServerScanStatusEnum.COMPLETED:
        return NodeScan(address, port, result=result)
    reason = _last_line(result.connectivity_error_trace) or "no TLS connectivity"
    return NodeScan(address, port, result=result, error=f"no TLS connection: {reason}")


def _last_line(trace: Any) -> str:
    if trace is None:
        return ""
    text = "".join(trace.format_exception_only()).strip()
    return text.splitlines()[-1] if text else ""


@dataclass(frozen=True)
class AcceptedSuite:
    """One cipher suite one node accepted under one protocol version."""

    node: str
    version: str
    name: str  # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    openssl_name: str
    anonymous: bool
    key_size: int
    ephemeral: str  # the negotiated (EC)DH group, e.g. "ECDH X25519 253 bits", or ""
    dh_prime: int | None = None  # the finite-field DHE prime the server sent, if any


def accepted_versions(scan: EndpointScan) -> list[tuple[NodeScan, str, bool]]:
    """(node, version, accepted) for every node and every version sslyze probed."""
    rows = []
    for node in scan.scanned():
        for version, command in VERSION_COMMANDS:
            rows.append((node, version, bool(node.get(command).is_tls_version_supported)))
    return rows


def accepted_suites(scan: EndpointScan) -> list[AcceptedSuite]:
    """Every suite every node accepted, version by version (oldest first)."""
    suites = []
    for node in scan.scanned():
        for version, command in VERSION_COMMANDS:
            for accepted in node.get(command).accepted_cipher_suites:
                suite = accepted.cipher_suite
                suites.append(
                    AcceptedSuite(
                        node=node.label,
                        version=version,
                        name=suite.name,
                        openssl_name=suite.openssl_name,
                        anonymous=bool(suite.is_anonymous),
                        key_size=int(suite.key_size),
                        ephemeral=_ephemeral(accepted.ephemeral_key),
                        dh_prime=_dh_prime(accepted.ephemeral_key),
                    )
                )
    return suites


def _ephemeral(key: Any) -> str:
    if key is None:
        return ""
    curve = getattr(key, "curve_name", None)
    kind = "ECDH" if curve else "DH"
    return f"{kind} {curve or ''} {key.size} bits".replace("  ", " ")


def _dh_prime(key: Any) -> int | None:
    prime = getattr(key, "prime", None)
    return int.from_bytes(prime, "big") if prime else None


def suites_table(suites: list[AcceptedSuite]) -> list[list[str]]:
    """The evidence table of accepted suites; first row is the header."""
    rows = [["node", "version", "suite (IANA)", "OpenSSL name", "bits", "key exchange"]]
    rows += [
        [s.node, s.version, s.name, s.openssl_name, str(s.key_size), s.ephemeral or "static"]
        for s in suites
    ]
    return rows


def certificate_deployments(scan: EndpointScan) -> list[tuple[NodeScan, Any]]:
    """(node, sslyze CertificateDeploymentAnalysisResult) for every certificate served."""
    found = []
    for node, info in scan.each(ScanCommand.CERTIFICATE_INFO):
        found += [(node, deployment) for deployment in info.certificate_deployments]
    return found
