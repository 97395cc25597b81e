"""The pytest plugin (entry point ``pytest11``): ``--target``, fixtures, control results.

``pytest conformance --target targets/lab.toml --results out/controls.json`` runs the checks
and writes one :class:`~maildrill.results.ControlResult` per control. The checks are selected
by the control IDs the report shows: ``-k`` matches them as it matches test names
(``-k DNS-MX-PRESENT``, ``-k "TLS and not TLS-MOZILLA"``), and ``--control ID`` (repeatable)
keeps only the controls it names: a full ID (``REACH-CONNECT[imap]``), a base ID for every
subject (``TLS-VERSIONS``), ``*`` and ``?`` matching any characters (``'TLS-*'``), in any case.
Fixtures:

- ``target``: the validated :class:`~maildrill.target.Target` of ``--target``;
- ``endpoint``: one endpoint per role named by the check's ``control(roles=…)`` marker;
- ``evidence``: the :class:`~maildrill.controls.api.Evidence` recorder of the running check;
- ``blockers``: what :func:`maildrill.controls.preflight.health` found wrong with each
  endpoint, once per session; a check that then opens such an endpoint ends ``error`` at
  once, "blocked by" the control that owns the cause (unless it is that control, or one below it).

Verdicts: ``fail`` only for a failed assertion (the server was seen doing the wrong thing);
a :class:`~maildrill.errors.TargetError` escaping a check, a blocked check, or a bug in it is
``error`` (the check could not find out). Both fail the gate.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from maildrill.controls.api import Evidence
from maildrill.controls.preflight import Blocker, health
from maildrill.errors import Blocked, ConfigError, NotApplicable, TargetError
from maildrill.results import ControlResult, Severity, Verdict
from maildrill.target import POLICIES, Endpoint, Role, Target, load_target
from maildrill.wire import blocked_endpoints

EVIDENCE = pytest.StashKey[Evidence]()
RESULTS = pytest.StashKey[list[ControlResult]]()
STARTED = pytest.StashKey[float]()
NA_PREFIX = "not applicable: "  # marks the skips that are the verdict not-applicable


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("maildrill", "maildrill conformance")
    group.addoption("--target", metavar="FILE", help="target file (TOML) describing the system")
    group.addoption(
        "--policy",
        metavar="NAME",
        help=f"policy profile to verify ({', '.join(POLICIES)}); default: the target file's",
    )
    group.addoption("--results", metavar="FILE", help="write the controls' results as JSON")
    group.addoption(
        "--control",
        action="append",
        default=[],
        metavar="ID",
        help="only this control, by the ID the report shows (REACH-CONNECT[imap]); a base ID "
        "(TLS-VERSIONS) takes every subject, * and ? match any characters; repeatable",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "control(id, title, severity, reference, roles): the control a check verifies "
        "(see maildrill.controls.api.control)",
    )
    config.stash[RESULTS] = []


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """-k matches each check's control IDs; --control keeps only the controls it names."""
    for item in items:
        if item.get_closest_marker("control") is not None:
            item.extra_keyword_matches.update({_base_id(item), control_id(item)})
    patterns = [_glob(p) for p in config.getoption("control", None) or []]
    if not patterns:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        named = item.get_closest_marker("control") is not None and any(
            p.fullmatch(i) for p in patterns for i in (_base_id(item), control_id(item))
        )
        (keep if named else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _glob(pattern: str) -> re.Pattern[str]:
    """A shell-style pattern where only * and ? are wild: the brackets of an ID are its own."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "endpoint" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("control")
    roles = marker.kwargs.get("roles") if marker else None
    roles = tuple(roles) if roles else tuple(Role)
    metafunc.parametrize("endpoint", roles, indirect=True, ids=[str(r) for r in roles])


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    path = pytestconfig.getoption("target")
    if not path:
        pytest.exit("maildrill: conformance checks need --target FILE", returncode=2)
    try:
        loaded = load_target(path)
    except ConfigError as exc:
        pytest.exit(f"maildrill: {exc}", returncode=2)
    policy = pytestconfig.getoption("policy")
    if policy:
        try:
            loaded = loaded.model_copy(update={"policy": policy})
            type(loaded).model_validate(loaded.model_dump() | {"source": loaded.source})
        except Exception:
            pytest.exit(f"maildrill: --policy {policy}: unknown policy profile", returncode=2)
    return loaded


@pytest.fixture(scope="session")
def blockers(target: Target) -> dict[Role, Blocker]:
    return health(target)


@pytest.fixture
def endpoint(request: pytest.FixtureRequest, target: Target) -> Endpoint:
    role = Role(request.param)
    found = target.endpoint(role)
    if found is None:
        raise NotApplicable(f"the target configures no {role} endpoint")
    return found


@pytest.fixture(autouse=True)
def _blocked_by_health(request: pytest.FixtureRequest) -> Iterator[None]:
    """While a check runs, the endpoints it cannot get past are closed to it: opening one
    ends it ``error`` at once, naming the owning control. A check that decides it does not
    apply before it opens anything still says so."""
    if "endpoint" not in request.fixturenames:  # not an endpoint's check (DNS; the harness)
        yield
        return
    target: Target = request.getfixturevalue("target")
    blockers: dict[Role, Blocker] = request.getfixturevalue("blockers")
    control = _base_id(request.node)
    reasons = {
        target.endpoints[role]: str(blocker)
        for role, blocker in blockers.items()
        if blocker.blocks(control)
    }
    with blocked_endpoints(reasons):
        yield


def _base_id(item: pytest.Item) -> str:
    marker = item.get_closest_marker("control")
    return str(marker.kwargs["id"]) if marker else item.name


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    recorder: Evidence = request.node.stash.setdefault(EVIDENCE, Evidence())
    return recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[STARTED] = time.perf_counter()
    marker = item.get_closest_marker("control")
    if marker is not None:
        item.user_properties.append(("control_id", control_id(item)))
        item.user_properties.append(("severity", str(marker.kwargs["severity"])))
    try:  # a fixture found that the check does not apply
        return (yield)
    except NotApplicable as exc:
        _skip_as_not_applicable(exc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    except NotApplicable as exc:
        _skip_as_not_applicable(exc)


def _skip_as_not_applicable(exc: NotApplicable) -> NoReturn:
    """A skip to pytest (so it counts the check as skipped, not failed), read back as the
    verdict not-applicable by :func:`_verdict`."""
    __tracebackhide__ = True
    pytest.skip(f"{NA_PREFIX}{exc}")


def control_id(item: pytest.Item) -> str:
    base = _base_id(item)
    callspec = getattr(item, "callspec", None)
    return f"{base}[{callspec.id}]" if callspec is not None else base


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    marker = item.get_closest_marker("control")
    if marker is None:
        return report
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if decisive:
        verdict, reason = _verdict(report, call)
        evidence = item.stash.get(EVIDENCE, Evidence())
        item.config.stash[RESULTS].append(
            ControlResult(
                id=control_id(item),
                title=str(marker.kwargs["title"]),
                severity=Severity(marker.kwargs["severity"]),
                reference=str(marker.kwargs["reference"]),
                verdict=verdict,
                reason=reason,
                evidence=evidence.items(),
                warnings=evidence.warnings(),
                duration_s=round(time.perf_counter() - item.stash.get(STARTED, 0.0), 4),
                test=item.nodeid,
            )
        )
    return report


def _verdict(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[Verdict, str]:
    if report.passed:
        return Verdict.PASS, ""
    if report.skipped:
        reason = _skip_reason(report)
        return Verdict.NOT_APPLICABLE, reason.removeprefix(NA_PREFIX)
    excinfo = call.excinfo
    if excinfo is None:
        return Verdict.ERROR, "failed without an exception"
    if excinfo.errisinstance((AssertionError, pytest.fail.Exception)):
        return Verdict.FAIL, _first_lines(str(excinfo.value))
    if excinfo.errisinstance(Blocked):
        return Verdict.ERROR, str(excinfo.value) or "blocked by an earlier finding"
    if excinfo.errisinstance(TargetError):
        # refused, hung, not the protocol, TLS failed on the way to what the check tests:
        # it could not find out (a check whose subject that is says so with expect())
        return Verdict.ERROR, f"could not check: {type(excinfo.value).__name__}: {excinfo.value}"
    return Verdict.ERROR, f"{excinfo.typename}: {_first_lines(str(excinfo.value))}"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _first_lines(text: str, limit: int = 3) -> str:
    return "\n".join(text.strip().splitlines()[:limit])


def pytest_sessionfinish(session: pytest.Session) -> None:
    # runs on Ctrl-C too, so the controls checked so far are kept
    path = session.config.getoption("results", None)
    if not path:
        return
    results: list[ControlResult] = session.config.stash.get(RESULTS, [])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"controls": [r.model_dump(mode="json") for r in results]}
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def collected_results(config: pytest.Config) -> list[ControlResult]:
    """The results recorded so far in this session (for in-process callers)."""
    found: list[ControlResult] = config.stash.get(RESULTS, [])
    return list(found)
