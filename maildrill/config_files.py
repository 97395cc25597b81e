"""The files a user writes for maildrill (the target file, waivers, message profiles) and the
results files it reads back: TOML read, pydantic's verdict told as the one line a user's
mistake gets — a :class:`~maildrill.errors.ConfigError` naming the file and the field, never
a traceback.

Usage::

    data = read_toml(path, "target file")      # ConfigError: "lab.toml: not valid TOML: …"
    try:
        Target.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_error(exc)}") from None
        # "lab.toml: slo.smtp_p99: unknown field (expected one of: delivery_p99_s, …)"
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from maildrill.errors import ConfigError

__all__ = ["Location", "dotted", "fields_at", "first_error", "read_toml"]

Location = tuple[int | str, ...]
"""Where in a file a value is, as pydantic gives it: ``("endpoints", "smtp", "url")``."""


def read_toml(path: Path, what: str, *, where: str | None = None) -> dict[str, Any]:
    """The TOML document at ``path``; :class:`ConfigError` when it is missing, unreadable,
    not UTF-8 or not TOML. ``what`` names the file in the message ("target file"),
    ``where`` what it starts with (default: the path)."""
    where = where or str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the {what} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None


def dotted(loc: Location) -> str:
    """A location as the user wrote it: ``endpoints.smtp.url``."""
    return ".".join(str(p) for p in loc)


def first_error(
    exc: ValidationError,
    *,
    field: Callable[[Location], str] = dotted,
    expected: Callable[[Location], str | None] = lambda loc: None,
    key: str = "key",
) -> str:
    """The first thing wrong, as ``field: what``.

    A misspelt field also makes the right one "missing": an unknown field is named first.
    ``field`` writes a location for the user; ``expected`` gives the names that would have
    been valid at an unknown field's (or table key's) location; ``key`` says what a table's
    keys are ("endpoint role"). Example: ``"accounts.count: input should be greater than or
    equal to 1 (got 0)"``.
    """
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    # pydantic adds union-member and dict-key markers to the location; users never wrote those
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "(" in p)))
    name = field(loc)
    kind = err["type"]
    message = str(err["msg"]).removeprefix("Value error, ")
    if "[key]" in err["loc"]:
        return f"{name}: unknown {key}{_one_of(expected(loc))}"
    if not name:  # a whole-document rule; its message names the field itself
        return message
    if kind == "extra_forbidden":
        return f"{name}: unknown field{_one_of(expected(loc))}"
    if kind == "missing":
        return f"{name}: required field is missing"
    if kind == "value_error":
        return f"{name}: {message}"
    if kind in ("enum", "literal_error"):
        return f"{name}: {message.lower()}, got {err.get('input')!r}"
    return f"{name}: {message.lower()} (got {err.get('input')!r})"


def _one_of(names: str | None) -> str:
    return f" (expected one of: {names})" if names else ""


def fields_at(
    model: type[BaseModel], loc: Location, *, hidden: frozenset[str] = frozenset()
) -> str:
    """The field names a user may write in the table that holds ``loc`` (its last part
    being the unknown name), following tables, arrays of tables and keyed tables; "no such
    field" when ``loc`` leads nowhere a model describes."""
    current: Any = model
    for part in loc[:-1]:
        current = _unwrapped(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return "no such field"
            current = info.annotation
        elif get_origin(current) in (list, tuple, dict):
            current = get_args(current)[-1]  # the items, or a keyed table's values
        else:
            return "no such field"
    current = _unwrapped(current)
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return "no such field"
    return ", ".join(sorted(k for k in current.model_fields if k not in hidden))


def _unwrapped(annotation: Any) -> Any:
    """``X | None`` is X: a table that may be left out is still that table."""
    members = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) not in (list, tuple, dict) and len(members) == 1:
        return members[0]
    return annotation
