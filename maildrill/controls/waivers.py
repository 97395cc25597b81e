"""Waivers: a failing control accepted for a while, with a reason and an owner.

A waiver file is TOML, one ``[[waiver]]`` table per waived control::

    [[waiver]]
    control = "TLS-VER[smtp]"      # a control ID; "TLS-VER" alone waives every subject
    justification = "legacy MTA partner, migration ticket OPS-1234"
    owner = "mail-ops@example.test"
    expires = 2026-03-31           # a TOML date; the waiver holds through that day

The gate (exit code) after waivers: a failing control with an active waiver does not fail
it; an expired waiver fails it, whether or not its control still fails, so that a stale
waiver is renewed or removed rather than forgotten. A malformed file raises
:class:`~maildrill.errors.ConfigError` naming the file and the field, before any check runs.

Usage::

    waivers = load_waivers(Path("targets/waivers.toml"))
    for control, waiver, state in waivers.apply(run.controls, date.today()):
        ...
"""

from __future__ import annotations

import os
from datetime import date
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from maildrill.config_files import Location, fields_at, first_error, read_toml
from maildrill.errors import ConfigError
from maildrill.results import ControlResult, Verdict

__all__ = ["Disposition", "Waiver", "Waivers", "load_waivers"]

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Disposition(StrEnum):
    """What a control counts as once waivers are applied."""

    PASSED = "passed"
    FAILED = "failed"  # a failure (or error) no waiver covers: fails the gate
    WAIVED = "waived"  # a failure (or error) under an active waiver: does not fail the gate
    EXPIRED = "waiver-expired"  # its waiver has expired: fails the gate
    NOT_APPLICABLE = "not-applicable"


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control: _Text = Field(description="control ID, e.g. TLS-VER[smtp]; without [..] any subject")
    justification: _Text
    owner: _Text
    expires: date = Field(description="last day the waiver holds (TOML date)")

    def covers(self, control_id: str) -> bool:
        return control_id == self.control or control_id.split("[", 1)[0] == self.control

    def expired(self, today: date) -> bool:
        return today > self.expires


class Waivers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    waiver: list[Waiver] = Field(default_factory=list)

    def find(self, control_id: str) -> Waiver | None:
        """The waiver for this control: an exact ID wins over a bare one."""
        exact = [w for w in self.waiver if w.control == control_id]
        if exact:
            return exact[0]
        return next((w for w in self.waiver if w.covers(control_id)), None)

    def apply(
        self, controls: list[ControlResult], today: date
    ) -> list[tuple[ControlResult, Waiver | None, Disposition]]:
        """Pair every control with its waiver (if any) and what it counts as."""
        out = []
        for control in controls:
            waiver = self.find(control.id)
            out.append((control, waiver, disposition(control, waiver, today)))
        return out

    def expired(self, today: date) -> list[Waiver]:
        return [w for w in self.waiver if w.expired(today)]

    def unused(self, controls: list[ControlResult]) -> list[Waiver]:
        """Waivers that match no control of the run (a typo, or a control since removed)."""
        return [w for w in self.waiver if not any(w.covers(c.id) for c in controls)]


def disposition(control: ControlResult, waiver: Waiver | None, today: date) -> Disposition:
    if waiver is not None and waiver.expired(today):
        return Disposition.EXPIRED
    if control.verdict is Verdict.PASS:
        return Disposition.PASSED
    if control.verdict is Verdict.NOT_APPLICABLE:
        return Disposition.NOT_APPLICABLE
    return Disposition.WAIVED if waiver is not None else Disposition.FAILED


def load_waivers(path: str | os.PathLike[str]) -> Waivers:
    """Read and validate a waiver file; any mistake is one ConfigError line.

    >>> load_waivers("targets/waivers.example.toml").waiver[0].owner  # doctest: +SKIP
    'mail-ops@example.test'
    """
    source = Path(path)
    data = read_toml(source, "waiver file")
    try:
        return Waivers.model_validate(data)
    except ValidationError as exc:
        field = partial(_field, data=data)
        problem = first_error(exc, field=field, expected=partial(fields_at, Waivers))
        raise ConfigError(f"{source}: {problem}") from None


def _field(loc: Location, data: dict[str, Any]) -> str:
    """``waiver[1] (SPF-ALL).owner``: the waiver's index and control, as a user finds it."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
        if i == 1 and isinstance(item, int):
            control = _control_at(data, item)
            if control:
                parts[-1] += f" ({control})"
    return ".".join(parts) or "(top level)"


def _control_at(data: dict[str, Any], index: int) -> str:
    items = data.get("waiver")
    if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
        return str(items[index].get("control", ""))
    return ""
