"""The DNS suite's control IDs, as the proofs in tests/ need them."""

from __future__ import annotations

# judged on every domain: a well-configured one passes each of them
SEED_CONTROLS = frozenset(
    {
        "DNS-MX-PRESENT",
        "DNS-MX-PRIORITY",
        "DNS-MX-RESOLVES",
        "DNS-MX-TARGET",
        "SPF-SINGLE",
        "SPF-ALL",
        "SPF-LOOKUPS",
        "SPF-VOID",
        "SPF-PTR",
        "DKIM-SELECTOR",
        "DKIM-KEY-SIZE",
        "DKIM-TESTMODE",
        "DMARC-PRESENT",
        "DMARC-POLICY",
        "DMARC-PCT",
        "DMARC-RUA",
    }
)
# not in the seed policy: not applicable (with a reason) where the domain publishes none
OPTIONAL_CONTROLS = frozenset({"MTA-STS", "TLSRPT", "DANE-TLSA", "DNSSEC"})
# every control the suite declares; a new one must be added here and proven both ways
ALL_CONTROLS = SEED_CONTROLS | OPTIONAL_CONTROLS
