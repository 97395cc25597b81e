"""One embedded target for the whole session, launched as a subprocess via launch()."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildrill.embedded import launch
from maildrill.target import Target, load_target

DOMAIN = "example.test"


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with launch(tmp_path_factory.mktemp("lab"), accounts=5) as target_file:
        yield target_file


@pytest.fixture(scope="session")
def target(lab: Path) -> Target:
    return load_target(lab)


@pytest.fixture(scope="session")
def password(target: Target) -> str:
    return target.account(0).password


@pytest.fixture(scope="session")
def tls(target: Target) -> ssl.SSLContext:
    """Verifies the chain against the lab CA; host names are checked in test_pki."""
    ctx = ssl.create_default_context(cafile=str(target.ca_path))
    ctx.check_hostname = False  # clients connect to 127.0.0.1, not to the service names
    return ctx


def port(target: Target, role: str) -> int:
    endpoint = target.endpoint(role)
    assert endpoint is not None, f"target has no {role} endpoint"
    return endpoint.port
