"""The controls a conformance suite declares, read from its checks' ``control`` markers, so
the proofs in tests/ follow the suite instead of keeping a list of their own.

The suites are read as data, their source parsed, never imported: ``conformance/`` is a
folder of checks that pytest runs, not a package of this project's (docs/architecture.md).

Usage::

    controls = declared("behaviour")      # conformance/behaviour/
    controls["HYG-VRFY"].check            # "test_vrfy_expn_confirm_no_user"
    controls["HYG-VRFY"].roles            # (Role.SMTP,)
    set(controls)                         # every control ID of the suite
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from maildrill.target import Role

__all__ = ["Declared", "declared"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Declared:
    id: str
    check: str  # the check's function name, for ``-k``
    roles: tuple[Role, ...] | None  # None: one verdict for the whole target


@cache
def declared(suite: str) -> dict[str, Declared]:
    """Every control of ``conformance/<suite>/``, by ID, from its check modules' source."""
    found: dict[str, Declared] = {}
    for path in sorted((ROOT / "conformance" / suite).glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = _imported_from_maildrill(tree)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            for marker in node.decorator_list:
                if _is_control(marker):
                    assert isinstance(marker, ast.Call)
                    where = f"{path.name}:{marker.lineno}"
                    cid = _string(marker.args[0], where)
                    assert cid not in found, f"{cid} declared twice: {found[cid]} and {where}"
                    roles = next((k.value for k in marker.keywords if k.arg == "roles"), None)
                    found[cid] = Declared(cid, node.name, _roles(roles, names, where))
    assert found, f"no control declared under conformance/{suite}"
    return found


def _is_control(decorator: ast.expr) -> bool:
    """``@control(…)`` or ``@checks.control(…)``: maildrill's marker (maildrill.checks)."""
    if not isinstance(decorator, ast.Call):
        return False
    func = decorator.func
    return (isinstance(func, ast.Name) and func.id == "control") or (
        isinstance(func, ast.Attribute) and func.attr == "control"
    )


def _imported_from_maildrill(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """Local name -> (module, name) of each ``from maildrill… import name``."""
    return {
        alias.asname or alias.name: (node.module, alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("maildrill")
        for alias in node.names
        if node.module is not None
    }


def _string(node: ast.expr, where: str) -> str:
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), (
        f"{where}: a control ID must be a string literal"
    )
    return node.value


def _roles(
    node: ast.expr | None, names: dict[str, tuple[str, str]], where: str
) -> tuple[Role, ...] | None:
    """The value of ``roles=``: a list of ``Role.X``, ``list(Role)``, or a name imported from
    maildrill (``TLS_ROLES``), which is maildrill's data and may be read by importing it."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return None
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(_role(element, where) for element in node.elts)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("list", "tuple")
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == "Role"
    ):
        return tuple(Role)
    if isinstance(node, ast.Name) and node.id in names:
        module, name = names[node.id]
        return tuple(Role(r) for r in getattr(importlib.import_module(module), name))
    raise AssertionError(f"{where}: roles= is not a form declared() reads: {ast.unparse(node)}")


def _role(node: ast.expr, where: str) -> Role:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Role"
    ):
        return Role[node.attr]
    raise AssertionError(f"{where}: not a Role.X: {ast.unparse(node)}")
