"""The DNS suite's control IDs, as the proofs in tests/ need them."""

from __future__ import annotations

from tests.conformance.declared import declared

# every control the suite declares, read from its markers
ALL_CONTROLS = frozenset(declared("dns"))
# not in the seed policy: not applicable (with a reason) where the domain publishes none
OPTIONAL_CONTROLS = frozenset({"MTA-STS", "TLSRPT", "DANE-TLSA", "DNSSEC"})
# judged on every domain: a well-configured one passes each of them
SEED_CONTROLS = ALL_CONTROLS - OPTIONAL_CONTROLS
