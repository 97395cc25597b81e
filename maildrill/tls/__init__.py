"""TLS: the sslyze scan, the policy profiles it is judged by, certificate reading, and the
test PKI that issues the embedded target's and the reference stack's certificates."""
