"""Fixtures for the report tests: a realistic run written to disk once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildrill.results import write_results
from tests.reports import sample


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chromium: needs Debian's chromium; fails in CI (CI=true) when it is missing"
    )


@pytest.fixture(scope="session")
def results_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results(sample.run(), tmp_path_factory.mktemp("run") / "results.json")


@pytest.fixture(scope="session")
def no_load_results_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("check") / "results.json"
    return write_results(sample.run(with_load=False), path)


@pytest.fixture(scope="session")
def rendered(results_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from maildrill.reports import render_all

    out = tmp_path_factory.mktemp("out")
    render_all(results_file, out)
    return out
