"""The controls: the API conformance checks are written in, the pytest plugin that collects
their verdicts, waivers, the gate, and the preflight that blocks the checks of a dead endpoint."""
