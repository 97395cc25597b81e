"""maildrill's conformance checks: one pytest test per control, grouped by what they verify.

Run them with ``pytest conformance --target FILE`` or ``maildrill check --target FILE``.
"""
