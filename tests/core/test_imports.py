"""The CLI process never imports Locust or gevent.

Locust monkey-patches the standard library with gevent when imported; in a process that has
already imported ssl (every maildrill command has: the TLS checks, the resolver) that patch
is unsafe — with urllib3 2.8 it dies in a RecursionError. The load engine therefore runs
Locust in a subprocess, and nothing the commands import may pull it in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MODULES = [
    "maildrill.cli",
    "maildrill.cli.drill",
    "maildrill.cli.check",
    "maildrill.load",
    "maildrill.cli.load",
    "maildrill.load.runner",
    "maildrill.cli.report",
    "maildrill.cli.serve",
    "maildrill.cli.stack",
    "maildrill.reports",
]


@pytest.mark.parametrize("module", MODULES)
def test_command_modules_do_not_import_locust(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"{module} imports {proc.stdout.strip()}"


@pytest.mark.parametrize("module", ["maildrill.cli.load", "maildrill.load.runner"])
def test_the_load_command_does_not_import_pytest(module: str) -> None:
    """'maildrill load' runs no checks: the conformance machinery (pytest and the control
    plugin) has no business in it."""
    code = f"import sys, {module}; print('pytest' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", f"{module} imports pytest"


# Imports go one way (issue 15): the suites and scenarios import maildrill, never the
# reverse; maildrill finds conformance/ and loadtests/ as data (maildrill/suites.py).
PACKAGE = Path(__file__).resolve().parents[2] / "maildrill"
OUTSIDE = {"conformance", "loadtests", "reports"}
# module-level cycles that are known and not yet broken: (module, module) pairs, each with why
ALLOWED_CYCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES_ON_DISK = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: not those inside functions or classes,
    nor under ``if TYPE_CHECKING:``; those inside a top-level ``try``/``if``/``with`` run."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def _every_import(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute module names an import statement names (``from x import y`` names x.y
    when y is a module, else x)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        is_package = MODULES_ON_DISK.get(module, Path()).name == "__init__.py"
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [n for n in names if n in MODULES_ON_DISK] or [base]


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_maildrill_never_imports_the_suites_the_scenarios_or_top_level_reports() -> None:
    offenders = [
        f"{module}:{node.lineno} imports {target}"
        for module, path in MODULES_ON_DISK.items()
        for node in _every_import(_parse(path))
        for target in _targets(module, node)
        if target.split(".")[0] in OUTSIDE
    ]
    assert offenders == []


def _graph() -> dict[str, set[str]]:
    return {
        module: {
            target
            for node in _module_level(_parse(path).body)
            for target in _targets(module, node)
            if target in MODULES_ON_DISK and target != module
        }
        for module, path in MODULES_ON_DISK.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_maildrill_modules() -> None:
    cycles = [c for c in _cycles(_graph()) if frozenset(c) not in ALLOWED_CYCLES]
    assert cycles == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    # the check above must be able to fail
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# The libraries (protocol probes and clients, the load engine, DNS records) work outside
# pytest: none imports it, not even through another maildrill module. The control layer
# (maildrill.checks, maildrill.plugin) turns their errors.NotApplicable into a verdict.
PYTEST_FREE = ("maildrill.probes", "maildrill.clients", "maildrill.load", "maildrill.dnsrecords")
# modules of those packages that still import pytest, each with why
PYTEST_ALLOWED: dict[str, str] = {}


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: at module level or in a function, not those under
    ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _imports_pytest(module: str, seen: dict[str, list[str] | None]) -> list[str] | None:
    """The chain of maildrill modules by which ``module`` comes to import pytest, or None."""
    if module in seen:
        return seen[module]
    seen[module] = None  # a cycle imports nothing new
    found: list[str] | None = None
    for node in _runtime_imports(_parse(MODULES_ON_DISK[module])):
        for target in _targets(module, node):
            if target.split(".")[0] in ("pytest", "_pytest"):
                found = [module, target]
            elif target in MODULES_ON_DISK and target != module:
                chain = _imports_pytest(target, seen)
                found = [module, *chain] if chain else None
            if found:
                seen[module] = found
                return found
    return None


def test_libraries_do_not_import_pytest() -> None:
    assert set(PYTEST_ALLOWED) <= set(MODULES_ON_DISK), "an allowed module is gone: drop it"
    seen: dict[str, list[str] | None] = {}
    offenders = [
        " -> ".join(chain)
        for module in MODULES_ON_DISK
        if module.startswith(PYTEST_FREE) and module not in PYTEST_ALLOWED
        if (chain := _imports_pytest(module, seen))
    ]
    assert offenders == []


def test_the_pytest_rule_sees_a_chain() -> None:
    # the rule above must be able to fail: the control API imports pytest, the plugin too
    assert _imports_pytest("maildrill.controls.api", {}) == ["maildrill.controls.api", "pytest"]
    chain = _imports_pytest("maildrill.cli.check", {})
    assert chain is not None and chain[-1] == "pytest", chain


TESTS = PACKAGE.parent / "tests"


def test_tests_never_import_the_suites_or_the_scenarios_as_packages() -> None:
    # conformance/ and loadtests/ are folders pytest and Locust run; tests read them as data
    # (tests/conformance/declared.py parses the checks' markers)
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{node.lineno}"
        for path in sorted(TESTS.rglob("*.py"))
        for node in _every_import(_parse(path))
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        if name.split(".")[0] in ("conformance", "loadtests")
        and not (isinstance(node, ast.ImportFrom) and node.level)
    ]
    assert offenders == []


def test_the_import_walk_sees_relative_and_from_imports() -> None:
    assert "maildrill.reports.auditor" in _graph()["maildrill.reports"]
    assert "maildrill.load.state" in _graph()["maildrill.load.watch"]
    assert "maildrill.load.listeners" not in _graph()["maildrill.load.watch"]
