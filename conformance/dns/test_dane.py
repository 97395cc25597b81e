"""DANE for SMTP (RFC 7672): TLSA records of the MX hosts match the certificate served.

Not applicable when no MX host publishes a TLSA record. Where one does, every TLSA record
must be a DANE-EE (3) or DANE-TA (2) record (RFC 7672 §3.1.3: PKIX usages are not for SMTP)
and at least one must match what the SMTP endpoint (port 25 role) presents after STARTTLS:
DANE-EE against the leaf, DANE-TA against the CAs of the target's ``ca_file`` (Python's ssl
does not expose the chain the server sent, so a trust anchor is looked for there).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from maildrill.controls.api import Evidence, control, expect, not_applicable
from maildrill.dnsrecords import Lookups
from maildrill.dnsrecords.lookups import is_address_literal
from maildrill.dnsrecords.tlsa import DANE_EE, DANE_TA, association, served_certificate, tlsa_name
from maildrill.target import Role, Target


@control(
    "DANE-TLSA",
    "Published TLSA records match the certificate the MX serves",
    severity="high",
    reference="RFC 7672 §3.1, §3.2; RFC 6698 §2.1",
)
def test_dane_tlsa(target: Target, evidence: Evidence) -> None:
    dns = Lookups(target)
    evidence.dns("queries", dns.lines)
    # a null MX or an address literal has no TLSA base domain (judged by the DNS-MX checks)
    hosts = [h for _pref, h in dns.mx(target.domain) if h not in ("", ".")]
    records = [
        (host, rdata)
        for host in hosts
        if not is_address_literal(host)
        for rdata in dns.records(tlsa_name(host), "TLSA")
    ]
    if not records:
        not_applicable("no MX host publishes a TLSA record (_25._tcp.<mx>)")
    endpoint = target.endpoint(Role.SMTP)
    if endpoint is None:
        not_applicable("TLSA is published but the target configures no smtp endpoint")
    transcript: list[str] = []
    evidence.transcript("STARTTLS session", transcript)
    leaf = served_certificate(target, endpoint, transcript)
    anchors = _ca_certificates(target)
    rows = [["host", "usage", "selector", "mtype", "matches"]]
    evidence.table("TLSA", rows)
    unusable, matched = [], []
    for host, rdata in records:
        usage, selector, mtype = rdata.usage, rdata.selector, rdata.mtype  # type: ignore[attr-defined]
        if usage == DANE_EE:
            ok = association(leaf, selector, mtype) == rdata.cert  # type: ignore[attr-defined]
        elif usage == DANE_TA:
            ok = any(association(ca, selector, mtype) == rdata.cert for ca in anchors)  # type: ignore[attr-defined]
        else:
            ok = False
            unusable.append(f"{host}: usage {usage} is not for SMTP (RFC 7672 §3.1.3)")
        rows.append([host, str(usage), str(selector), str(mtype), "yes" if ok else "no"])
        if ok:
            matched.append(host)
    expect(not unusable, "; ".join(unusable))
    expect(matched, "no TLSA record matches the certificate the SMTP endpoint serves")


def _ca_certificates(target: Target) -> list[bytes]:
    if target.ca_path is None:
        return []
    pem = target.ca_path.read_bytes()
    return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem)]
