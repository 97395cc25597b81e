"""The target file: one TOML file describing one mail system under test.

Usage::

    target = load_target("targets/embedded.toml")
    target.endpoints["smtp"].port          # 2525
    target.account(3).address              # "user0003@example.test"

Every field is documented in ``targets/README.md``. A wrong or misspelled field raises
:class:`~maildrill.errors.ConfigError` whose message names the file, the field and what is
expected; the CLI prints it on one line and exits 2.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from maildrill.config_files import Location, fields_at, first_error, read_toml
from maildrill.errors import ConfigError

__all__ = [
    "POLICIES",
    "ROLES",
    "Account",
    "Endpoint",
    "Role",
    "Target",
    "load_target",
]


class Role(StrEnum):
    """What an endpoint is for; the key under ``[endpoints]``."""

    SMTP = "smtp"  # inbound MX, port 25 role
    SUBMISSION = "submission"  # authenticated submission, port 587 role (STARTTLS)
    SMTPS = "smtps"  # submission over implicit TLS, port 465 role
    IMAP = "imap"
    IMAPS = "imaps"
    POP3 = "pop3"
    POP3S = "pop3s"
    WEBMAIL = "webmail"


ROLES = tuple(Role)

# scheme each role's URL must use, and the port it defaults to (RFC 6186 / IANA)
_SCHEMES: dict[Role, tuple[tuple[str, ...], int]] = {
    Role.SMTP: (("smtp",), 25),
    Role.SUBMISSION: (("smtp", "submission"), 587),
    Role.SMTPS: (("smtps",), 465),
    Role.IMAP: (("imap",), 143),
    Role.IMAPS: (("imaps",), 993),
    Role.POP3: (("pop3", "pop"), 110),
    Role.POP3S: (("pop3s", "pops"), 995),
    Role.WEBMAIL: (("https", "http"), 443),
}

IMPLICIT_TLS = frozenset({Role.SMTPS, Role.IMAPS, Role.POP3S})
# RFC 8659 §4.2: issuer-domain-name = label *("." label); label = (ALPHA / DIGIT) *( *("-")
# (ALPHA / DIGIT))
_ISSUER_DOMAIN = re.compile(r"[A-Za-z0-9]+(-+[A-Za-z0-9]+)*(\.[A-Za-z0-9]+(-+[A-Za-z0-9]+)*)*")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Model):
    """One service of the mail system, reached at ``url``."""

    url: str = Field(description="service URL, e.g. smtp://mx1.example.com:25")
    starttls_required: bool = Field(
        default=False,
        description="the policy says this plaintext port must require STARTTLS before AUTH "
        "or mail (ignored on implicit-TLS ports); maildrill's own IMAP/POP3 sessions (load "
        "watchers, pre-population) then insist on STARTTLS, else they use it where offered "
        "and plain text where not",
    )
    flavour: Literal["roundcube"] = Field(
        default="roundcube",
        description="webmail only: the webmail product at this URL, which decides the "
        "requests of the webmail load scenario",
    )
    role: Role | None = Field(default=None, exclude=True)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        if parts.port:
            return parts.port
        assert self.role is not None
        return _SCHEMES[self.role][1]

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def implicit_tls(self) -> bool:
        return self.role in IMPLICIT_TLS or self.scheme == "https"

    def __str__(self) -> str:
        return f"{self.role} {self.host}:{self.port}"


class DNS(_Model):
    resolver: str | None = Field(
        default=None,
        description="host:port of the resolver every lookup goes through, including the "
        "endpoints' host names; omitted = the system resolver",
    )
    timeout: float = Field(default=3.0, gt=0, description="seconds per DNS query")
    dkim_selectors: list[str] = Field(
        default_factory=list, description="DKIM selectors published for the domain"
    )
    dnsbl_zones: list[str] = Field(
        default_factory=list,
        description="DNSBL zones the inbound MX consults (for the DNSBL behavioural checks)",
    )

    @field_validator("resolver")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @property
    def resolver_address(self) -> tuple[str, int] | None:
        if self.resolver is None:
            return None
        host, _, port = self.resolver.rpartition(":")
        return host.strip("[]"), int(port)


class Accounts(_Model):
    pattern: str = Field(
        default="user{n:04d}",
        description="local part of the n-th test account, a Python format string with {n}",
    )
    first: int = Field(default=1, ge=0, description="number of the first account")
    count: int = Field(default=10, ge=1, description="how many accounts exist")
    password_env: str | None = Field(
        default=None, description="environment variable holding the accounts' password"
    )
    password_file: Path | None = Field(
        default=None,
        description="file with the password on its first line, or 'name:password' lines",
    )

    @field_validator("pattern")
    @classmethod
    def _has_n(cls, value: str) -> str:
        try:
            value.format(n=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"must be a format string using only {{n}}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Accounts:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self


class SLO(_Model):
    smtp_p99_ms: float = Field(default=1000.0, gt=0, description="p99 of an SMTP transaction")
    imap_p99_ms: float = Field(default=1000.0, gt=0, description="p99 of an IMAP command")
    delivery_p99_s: float = Field(
        default=30.0, gt=0, description="p99 from SMTP 250 to the message visible over IMAP"
    )
    error_rate_pct: float = Field(default=1.0, ge=0, le=100, description="errors, % of requests")


class Safety(_Model):
    allowed_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        description="networks that may receive load; every resolved address must be inside",
    )
    max_rate: float = Field(default=100.0, gt=0, description="most messages or sessions per s")

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network such as 10.0.0.0/8") from None
        return value

    def allows(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)


class Expect(_Model):
    """What the operator declares of the system, so checks know the intended behaviour."""

    spam_action: Literal["reject", "tag", "junk"] = Field(
        default="reject", description="what the system does with GTUBE"
    )
    antivirus: bool = Field(default=False, description="EICAR must be rejected")
    max_message_size: int | None = Field(
        default=None, ge=1, description="SIZE the inbound MX should advertise and enforce"
    )
    lockout_after: int | None = Field(
        default=None, ge=1, description="failed logins after which a client is refused (S17)"
    )
    lockout_source: str | None = Field(
        default=None, description="loopback source address the lockout check may burn"
    )
    mx_priorities: list[int] = Field(
        default_factory=lambda: [10, 20], description="expected MX preferences (S11)"
    )
    relay_test_domain: str = Field(
        default="relay-test.invalid", description="foreign domain used by the open-relay check"
    )
    caa_issuers: list[str] = Field(
        default_factory=list,
        description="CAA issuer domain names of the CAs that issue this system's certificates, "
        'e.g. ["letsencrypt.org"] (RFC 8659 §4.2): DNS-CAA fails where a CAA record set '
        "forbids one of them; empty = only the presence of CAA is judged (a certificate does "
        "not say which CAA name its CA answers to)",
    )

    @field_validator("caa_issuers")
    @classmethod
    def _issuer_domains(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _ISSUER_DOMAIN.fullmatch(item):
                raise ValueError(f"{item!r} is not a domain name such as letsencrypt.org")
        return [item.lower() for item in value]


Policy = Literal["seed", "mozilla-intermediate", "mozilla-modern", "ncsc"]
POLICIES: tuple[str, ...] = get_args(Policy)  # the policy profiles' names, in this order


class Target(_Model):
    """A mail system under test, read from a target file."""

    name: str = Field(description="short name shown in reports")
    domain: str = Field(description="the mail domain, e.g. example.com")
    policy: Policy = Field(default="seed", description="policy profile to verify")
    ca_file: Path | None = Field(
        default=None, description="CA bundle for TLS verification (relative to the file)"
    )
    endpoints: dict[Role, Endpoint] = Field(description="services by role")
    dns: DNS = Field(default_factory=DNS)
    accounts: Accounts = Field(default_factory=Accounts)
    slo: SLO = Field(default_factory=SLO)
    safety: Safety = Field(default_factory=Safety)
    expect: Expect = Field(default_factory=Expect)
    source: Path | None = Field(default=None, exclude=True, description="file read from")

    @model_validator(mode="after")
    def _endpoint_roles(self) -> Target:
        for role, endpoint in self.endpoints.items():
            schemes, _ = _SCHEMES[role]
            parts = urlsplit(endpoint.url)
            if parts.scheme not in schemes:
                raise ValueError(
                    f"endpoints.{role}.url: scheme must be {' or '.join(schemes)}://, "
                    f"got {endpoint.url!r}"
                )
            if not parts.hostname:
                raise ValueError(f"endpoints.{role}.url: no host in {endpoint.url!r}")
            try:
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError:
                raise ValueError(f"endpoints.{role}.url: bad port in {endpoint.url!r}") from None
            object.__setattr__(endpoint, "role", role)
        if not self.endpoints:
            raise ValueError("endpoints: at least one endpoint is needed")
        return self

    # -- derived views -------------------------------------------------------------------

    def endpoint(self, role: Role | str) -> Endpoint | None:
        return self.endpoints.get(Role(role))

    def account(self, index: int) -> Account:
        """The ``index``-th test account (0-based), with its password."""
        if not 0 <= index < self.accounts.count:
            raise IndexError(f"account {index} outside 0..{self.accounts.count - 1}")
        local = self.accounts.pattern.format(n=self.accounts.first + index)
        return Account(local, f"{local}@{self.domain}", self._password_for(local))

    def iter_accounts(self) -> Iterator[Account]:
        for index in range(self.accounts.count):
            yield self.account(index)

    def _password_for(self, local: str) -> str:
        acc = self.accounts
        if acc.password_env:
            value = os.environ.get(acc.password_env)
            if value is None:
                raise ConfigError(
                    f"{self.source}: accounts.password_env: environment variable "
                    f"{acc.password_env} is not set"
                )
            return value
        if acc.password_file:
            return _password_from_file(self.resolve_path(acc.password_file), local)
        raise ConfigError(f"{self.source}: accounts: give password_env or password_file")

    def resolve_path(self, path: Path) -> Path:
        if path.is_absolute() or self.source is None:
            return path
        return self.source.parent / path

    @property
    def ca_path(self) -> Path | None:
        return None if self.ca_file is None else self.resolve_path(self.ca_file)

    def sha256(self) -> str:
        """SHA-256 of the target file as written (it holds no secrets, only their sources)."""
        if self.source is None:
            return ""
        return hashlib.sha256(self.source.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Account:
    local: str
    address: str
    password: str

    def __repr__(self) -> str:  # never print a password
        return f"Account({self.address!r})"


def _password_from_file(path: Path, local: str) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise ConfigError(f"accounts.password_file: cannot read {path}: {exc.strerror}") from None
    if not lines:
        raise ConfigError(f"accounts.password_file: {path} is empty")
    if ":" not in lines[0]:
        return lines[0]
    for line in lines:
        name, _, password = line.partition(":")
        if name in (local, local.split("@")[0]):
            return password
    raise ConfigError(f"accounts.password_file: {path} has no line for {local}")


def load_target(path: str | os.PathLike[str]) -> Target:
    """Read and validate a target file; :class:`ConfigError` names what is wrong."""
    path = Path(path)
    return parse_target(read_toml(path, "target file"), source=path)


def parse_target(data: dict[str, Any], source: Path | None = None) -> Target:
    try:
        target = Target.model_validate({**data, "source": source})
    except ValidationError as exc:
        problem = first_error(exc, expected=_expected, key="endpoint role")
        raise ConfigError(f"{source or '<target>'}: {problem}") from None
    return target


def _expected(loc: Location) -> str:
    """The names valid where an unknown one was written in a target file."""
    if loc[:-1] == ("endpoints",):
        return ", ".join(ROLES)
    return fields_at(Target, loc, hidden=frozenset({"source", "role"}))


def field_reference() -> str:
    """The Markdown table of every target-file field, generated from the model.

    ``python -m maildrill.target`` prints it; ``targets/README.md`` carries it and a test
    keeps the two in sync.
    """
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if name in ("source", "role"):
                continue
            annotation = info.annotation
            key = f"{prefix}{name}"
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{key}.")
                continue
            if name == "endpoints":
                rows.append(
                    f"| `endpoints.<role>` | table | — | one per service; role is one of "
                    f"{', '.join(f'`{r}`' for r in ROLES)} |"
                )
                walk(Endpoint, "endpoints.<role>.")
                continue
            default = "required" if info.is_required() else _default_text(info)
            type_name = str(annotation).replace("typing.", "").replace("pathlib.", "")
            type_name = type_name.replace("<class '", "").replace("'>", "").replace(" | ", " or ")
            rows.append(f"| `{key}` | {type_name} | {default} | {info.description or ''} |")

    walk(Target, "")
    return "\n".join(rows) + "\n"


def _default_text(info: Any) -> str:
    if info.default_factory is not None:
        return f"`{info.default_factory()}`"
    return f"`{info.default}`" if info.default is not None else "—"


if __name__ == "__main__":
    print(field_reference(), end="")
