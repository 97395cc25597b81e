"""Who chooses the cipher suite, the server or the client: a small probe sslyze lacks.

sslyze 6 reports which suites a server accepts, not which it prefers. This probe offers
the suites a node accepted under one protocol version twice, in one order and then in the
reverse order, through sslyze's own connection (so STARTTLS, SNI and the resolved address
are exactly the scan's). A server that enforces its own preference picks the same suite
both times; one that follows the client picks the client's first suite both times.

ChaCha20 suites are left out when two others remain: OpenSSL's PRIORITIZE_CHACHA option
lets a server that has its own order still honour a client that puts ChaCha20 first
(a client without AES hardware), which would look like client order.

Usage::

    choice = probe_order(scan.server_result(node), "TLSv1.2", ["ECDHE-RSA-AES128-GCM-SHA256",
                                                                "ECDHE-RSA-AES256-GCM-SHA384"])
    choice.server_chooses          # True / False, None when it could not be told
"""

from __future__ import annotations

from dataclasses import dataclass

from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import SslClient
from sslyze.errors import ConnectionToServerFailed, ServerRejectedTlsHandshake, TlsHandshakeTimedOut
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites,
)
from sslyze.scanner.models import ServerScanResult
from sslyze.server_connectivity import ServerConnectivityInfo, TlsVersionEnum

from maildrill.errors import TLSFailure

__all__ = ["ORDER_VERSIONS", "OrderProbe", "probe_order"]

# the versions whose suite choice is probed, in maildrill.tls.policy's spelling
ORDER_VERSIONS: dict[str, TlsVersionEnum] = {
    "TLSv1": TlsVersionEnum.TLS_1_0,
    "TLSv1.1": TlsVersionEnum.TLS_1_1,
    "TLSv1.2": TlsVersionEnum.TLS_1_2,
    "TLSv1.3": TlsVersionEnum.TLS_1_3,
}


@dataclass(frozen=True)
class OrderProbe:
    """Two handshakes under one version: what was offered, what the server picked."""

    version: str
    offered: tuple[str, ...]  # OpenSSL names, in the first handshake's order
    picked_forward: str = ""
    picked_reverse: str = ""
    note: str = ""  # why nothing could be told (fewer than two suites)

    @property
    def server_chooses(self) -> bool | None:
        if not self.picked_forward or not self.picked_reverse:
            return None
        return self.picked_forward == self.picked_reverse

    def row(self) -> list[str]:
        verdict = {True: "server", False: "client", None: "-"}[self.server_chooses]
        return [
            self.version,
            " ".join(self.offered) or "-",
            self.picked_forward or "-",
            self.picked_reverse or "-",
            verdict,
            self.note,
        ]


HEADER = ["version", "offered (first order)", "picked", "picked (reverse order)", "chooses", "note"]


def _candidates(version: TlsVersionEnum, suites: list[str]) -> tuple[list[str], bool]:
    """The suites to offer and whether the legacy OpenSSL must offer them."""
    if version in (TlsVersionEnum.TLS_1_0, TlsVersionEnum.TLS_1_1):
        legacy, modern = suites, []
    elif version == TlsVersionEnum.TLS_1_3:
        legacy, modern = [], suites
    else:  # TLS 1.2: sslyze's own split of what each OpenSSL can offer
        needs = WorkaroundForTls12ForCipherSuites.requires_legacy_openssl
        legacy = [s for s in suites if needs(s)]
        modern = [s for s in suites if not needs(s)]
    use_legacy = len(modern) < 2 <= len(legacy)
    chosen = legacy if use_legacy else modern
    others = [s for s in chosen if "CHACHA20" not in s]
    return (others if len(others) >= 2 else chosen), use_legacy


def _pick(
    info: ServerConnectivityInfo, version: TlsVersionEnum, offer: list[str], legacy: bool
) -> str:
    connection = info.get_preconfigured_tls_connection(
        override_tls_version=version, should_use_legacy_openssl=legacy
    )
    client = connection.ssl_client
    try:
        if isinstance(client, SslClient) and version == TlsVersionEnum.TLS_1_3:
            client.set_ciphersuites(":".join(offer))
        else:
            assert isinstance(client, SslClient | LegacySslClient)
            client.set_cipher_list(":".join(offer))
        connection.connect()
        return client.get_current_cipher_name()
    except (ConnectionToServerFailed, ServerRejectedTlsHandshake, TlsHandshakeTimedOut) as exc:
        raise TLSFailure(f"{version.name} handshake offering {offer[0]}…: {exc}") from None
    finally:
        connection.close()


def probe_order(result: ServerScanResult, version: str, suites: list[str]) -> OrderProbe:
    """Offer ``suites`` (OpenSSL names the node accepted under ``version``) in their order,
    then reversed; :class:`TLSFailure` if a handshake with accepted suites fails."""
    tls_version = ORDER_VERSIONS[version]
    offer, legacy = _candidates(tls_version, suites)
    if len(offer) < 2:
        return OrderProbe(version, tuple(offer), note="fewer than two suites: nothing to choose")
    if result.connectivity_result is None:
        raise TLSFailure(f"{result.server_location.ip_address}: not scanned")
    info = ServerConnectivityInfo(
        server_location=result.server_location,
        network_configuration=result.network_configuration,
        tls_probing_result=result.connectivity_result,
    )
    forward = _pick(info, tls_version, offer, legacy)
    reverse = _pick(info, tls_version, offer[::-1], legacy)
    return OrderProbe(version, tuple(offer), forward, reverse)
