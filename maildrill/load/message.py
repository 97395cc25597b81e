"""Message profiles: what the load scenarios send (size, recipients, MIME structure).

A :class:`MessageProfile` is a set of weighted size bands, each with the MIME structures
its messages take, and weighted recipient-count bands. A :class:`MessageFactory` draws
messages from it with its own seeded ``random.Random``, so one seed gives one sequence of
shapes (sizes, recipient counts, structures, contents); only the Message-ID token is
unique per message (several Locust workers draw the same sequence)::

    factory = MessageFactory(load_profile("default"), run_id="r1", seed=7)
    count = factory.recipient_count()               # 1 mostly, 2-5 sometimes
    message = factory.make("a@x.test", ["b@example.test"])
    message.message_id, len(message.raw), message.digest

Every message carries the unique Message-ID and the body hash (``X-Maildrill-Hash``) that
the full-chain ledger checks; the hash covers the whole MIME body, boundaries included, so
any change to a part is corruption.

**The default profile** (:data:`DEFAULT_PROFILE`) is an assumption, to be replaced by the
operator's own figures (Postfix logs ``size=`` per message in its queue manager lines):

- 80 % 2-8 KB text (text/plain, or multipart/alternative with an HTML part): most mail is
  short correspondence; these stress the per-message cost (connections, commands, fsyncs);
- 15 % 20-200 KB multipart/mixed with a base64 attachment (documents, images in replies);
- 5 % 1-5 MB multipart/mixed (presentations, scans): they carry most of the bytes, so they
  stress the queue, the filters and the store. The mean is ~170 KB, the median ~5 KB;
- recipients: 85 % one, 15 % two to five (internal distribution lists are mostly small).

**The fixed profile** (:func:`fixed_profile`) is one text/plain message of one size to one
recipient (``--message-size``): the raw-rate case, byte for byte what
:func:`~maildrill.load.ledger.make_message` has always built, so smtp_* throughput figures
stay comparable with smtp-source's.

Attachments are slices of one base64 pool built once per process (its size is the
profile's largest band), so the hot path only joins pre-built bytes and hashes the body.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from maildrill.config_files import read_toml
from maildrill.errors import ConfigError
from maildrill.load.ledger import body_hash, header_date, make_message, unique_token

__all__ = [
    "DEFAULT_PROFILE",
    "MIME_KINDS",
    "Band",
    "Message",
    "MessageFactory",
    "MessageProfile",
    "SizeBand",
    "fixed_profile",
    "load_profile",
    "parse_recipients",
]

MIME_KINDS = ("plain", "alternative", "mixed")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # the attachment pool is this big at most
B64_LINE = 78  # 76 base64 characters + CRLF (RFC 2045 §6.8)
TEXT_PART = 1024  # the text part of a multipart/mixed message, bytes
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024 * 1024, "MB": 1024 * 1024}


@dataclass(frozen=True)
class Band:
    """A weighted range [low, high], both included (recipient counts)."""

    weight: float
    low: int
    high: int


@dataclass(frozen=True)
class SizeBand(Band):
    """A weighted size range in bytes and the MIME structures its messages take."""

    mime: tuple[str, ...] = ("plain",)


@dataclass(frozen=True)
class MessageProfile:
    name: str
    sizes: tuple[SizeBand, ...]
    recipients: tuple[Band, ...] = (Band(1, 1, 1),)
    seed: int = 0

    @property
    def fixed(self) -> bool:
        """One size, one text/plain structure: the raw-rate message of ``make_message``."""
        return (
            len(self.sizes) == 1
            and self.sizes[0].low == self.sizes[0].high
            and (self.sizes[0].mime == ("plain",))
        )

    @property
    def largest(self) -> int:
        return max(band.high for band in self.sizes)

    def to_json(self) -> dict[str, Any]:
        """As written into load-plan.json and results.json."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageProfile:
        return cls(
            name=data["name"],
            sizes=tuple(
                SizeBand(b["weight"], b["low"], b["high"], tuple(b["mime"])) for b in data["sizes"]
            ),
            recipients=tuple(Band(b["weight"], b["low"], b["high"]) for b in data["recipients"]),
            seed=int(data.get("seed", 0)),
        )

    def with_recipients(self, bands: tuple[Band, ...]) -> MessageProfile:
        return MessageProfile(self.name, self.sizes, bands, self.seed)


KB, MB = 1024, 1024 * 1024
DEFAULT_PROFILE = MessageProfile(
    name="default",
    sizes=(
        SizeBand(80, 2 * KB, 8 * KB, ("plain", "alternative")),
        SizeBand(15, 20 * KB, 200 * KB, ("mixed",)),
        SizeBand(5, 1 * MB, 5 * MB, ("mixed",)),
    ),
    recipients=(Band(85, 1, 1), Band(15, 2, 5)),
)


def fixed_profile(size: int = 2048) -> MessageProfile:
    """Today's raw-rate message: ``size`` bytes of text/plain to one recipient."""
    return MessageProfile(name="fixed", sizes=(SizeBand(1, size, size, ("plain",)),))


def parse_recipients(text: str) -> tuple[Band, ...]:
    """``--recipients``: ``N`` (every message) or ``A-B`` (uniform), e.g. ``"2-5"``."""
    low, dash, high = text.partition("-")
    try:
        band = Band(1, int(low), int(high if dash else low))
    except ValueError:
        raise ConfigError(f"--recipients: {text!r} is not N or A-B (e.g. 3 or 2-5)") from None
    if not 1 <= band.low <= band.high:
        raise ConfigError(f"--recipients: {text!r}: need 1 <= A <= B")
    return (band,)


def load_profile(
    spec: str, *, message_size: int | None = None, recipients: str | None = None
) -> MessageProfile:
    """``--message-profile``: ``fixed`` (with ``--message-size``), ``default`` or a TOML
    file (format in docs/load.md); ``recipients`` (``--recipients``) overrides its
    recipient bands."""
    if spec == "fixed":
        profile = fixed_profile(message_size or 2048)
    elif message_size is not None:
        raise ConfigError("--message-size: only with --message-profile fixed")
    elif spec == "default":
        profile = DEFAULT_PROFILE
    else:
        profile = _read_file(Path(spec))
    if recipients is not None:
        profile = profile.with_recipients(parse_recipients(recipients))
    return profile


def _read_file(path: Path) -> MessageProfile:
    where = f"--message-profile {path}"
    data = read_toml(path, "message profile", where=where)
    sizes = []
    for i, row in enumerate(_rows(data, "sizes", where)):
        low, high = (_size(row, key, f"{where}: sizes[{i}].{key}") for key in ("min", "max"))
        mime = row.get("mime", ["plain"])
        mime = [mime] if isinstance(mime, str) else mime
        bad = [m for m in mime if m not in MIME_KINDS]
        if not mime or bad:
            raise ConfigError(f"{where}: sizes[{i}].mime: one or more of {', '.join(MIME_KINDS)}")
        sizes.append(SizeBand(_weight(row, f"{where}: sizes[{i}]"), low, high, tuple(mime)))
        _check_range(low, high, 100, MAX_MESSAGE_BYTES, f"{where}: sizes[{i}]")
    recipients = []
    for i, row in enumerate(_rows(data, "recipients", where, required=False)):
        field = f"{where}: recipients[{i}]"
        low, high = int(row.get("min", 1)), int(row.get("max", row.get("min", 1)))
        _check_range(low, high, 1, 1000, field)
        recipients.append(Band(_weight(row, field), low, high))
    seed = data.get("seed", 0)
    if not isinstance(seed, int):
        raise ConfigError(f"{where}: seed must be an integer")
    return MessageProfile(
        name=str(data.get("name", path.stem)),
        sizes=tuple(sizes),
        recipients=tuple(recipients) or (Band(1, 1, 1),),
        seed=seed,
    )


def _rows(data: dict[str, Any], key: str, where: str, *, required: bool = True) -> list[Any]:
    rows = data.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(f"{where}: {key} must be an array of tables ([[{key}]])")
    if required and not rows:
        raise ConfigError(f"{where}: needs at least one [[{key}]] band")
    return rows


def _weight(row: dict[str, Any], field: str) -> float:
    weight = row.get("weight", 1)
    if not isinstance(weight, int | float) or weight <= 0:
        raise ConfigError(f"{field}.weight: must be a number above 0")
    return float(weight)


def _size(row: dict[str, Any], key: str, field: str) -> int:
    """Bytes from an integer or a string such as ``"8KB"`` or ``"2M"`` (binary units)."""
    value = row.get(key, row.get("min" if key == "max" else "max"))
    if isinstance(value, int):
        return value
    text = str(value).strip().upper().replace(" ", "")
    digits = text.rstrip("KMB")
    unit = text[len(digits) :]
    try:
        return int(float(digits) * _UNITS[unit])
    except (ValueError, KeyError):
        example = '(e.g. 4096, "8KB", "2MB")'
        raise ConfigError(f"{field}: {value!r} is not a size {example}") from None


def _check_range(low: int, high: int, least: int, most: int, field: str) -> None:
    if not least <= low <= high <= most:
        raise ConfigError(f"{field}: need {least} <= min <= max <= {most} (got {low}, {high})")


@dataclass(frozen=True)
class Message:
    message_id: str
    raw: bytes
    digest: str
    kind: str  # one of MIME_KINDS


@lru_cache(maxsize=2)
def attachment_pool(size: int) -> tuple[bytes, bytes]:
    """Base64 lines of at least ``size`` bytes, built once per process: (CRLF, LF) forms.

    The LF form is what :func:`~maildrill.load.ledger.body_hash` hashes; keeping it saves
    converting megabytes per message (the conversion, not SHA-256, was 3/4 of the cost)."""
    lines = size // B64_LINE + 2
    rng = random.Random(size)  # the content does not matter; being the same does not hurt
    encoded = base64.encodebytes(rng.randbytes(lines * 57))  # 57 bytes -> one 76-char line
    return encoded.replace(b"\n", b"\r\n"), encoded


class MessageFactory:
    """Draws messages from a profile; one per Locust user (``seed`` = profile seed + user).

    ``unique`` makes each Message-ID's token (default:
    :func:`~maildrill.load.ledger.unique_token`, unique across every worker process)."""

    def __init__(
        self,
        profile: MessageProfile,
        run_id: str,
        *,
        seed: int = 0,
        unique: Callable[[], str] = unique_token,
    ) -> None:
        self.profile = profile
        self.run_id = run_id
        self.rng = random.Random(profile.seed * 1_000_003 + seed)
        self.unique = unique
        self._sizes = profile.sizes
        self._size_weights = [b.weight for b in profile.sizes]
        self._rcpt_weights = [b.weight for b in profile.recipients]
        self._pool, self._pool_lf = (
            (b"", b"") if profile.fixed else attachment_pool(profile.largest)
        )

    def recipient_count(self) -> int:
        bands = self.profile.recipients
        if len(bands) == 1 and bands[0].low == bands[0].high:
            return bands[0].low
        band = self.rng.choices(bands, self._rcpt_weights)[0]
        return self.rng.randint(band.low, band.high)

    def make(self, sender: str, recipients: Sequence[str]) -> Message:
        """One message to ``recipients`` (its To: header), drawn from the profile."""
        if self.profile.fixed:
            size = self._sizes[0].low
            message_id, raw, digest = make_message(self.run_id, sender, recipients, size)
            return Message(message_id, raw, digest, "plain")
        rng = self.rng
        band = rng.choices(self._sizes, self._size_weights)[0]
        size = rng.randint(band.low, band.high)
        kind = band.mime[0] if len(band.mime) == 1 else rng.choice(band.mime)
        token = self.unique()
        message_id = f"<{self.run_id}.{token}@maildrill.test>"
        boundary = f"=_md{token}"
        head = _headers(sender, recipients, token, message_id, kind, boundary)
        parts, digest = self._body(kind, boundary, token, max(64, size - len(head) - 100))
        raw = b"".join([head, b"X-Maildrill-Hash: ", digest.encode(), b"\r\n\r\n", *parts])
        return Message(message_id, raw, digest, kind)

    def _body(
        self, kind: str, boundary: str, token: str, size: int
    ) -> tuple[list[bytes | memoryview], str]:
        """The body's parts and its :func:`~maildrill.load.ledger.body_hash`."""
        sep = f"--{boundary}\r\n".encode()
        if kind == "plain":
            text = _text(token, size)
            return [text], body_hash(text)
        if kind == "alternative":
            half = max(32, size // 2 - 100)
            body = b"".join(
                [
                    sep,
                    b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                    _text(token, half),
                    sep,
                    b"Content-Type: text/html; charset=us-ascii\r\n\r\n<html><body><pre>\r\n",
                    _text(token[::-1], half),
                    b"</pre></body></html>\r\n",
                    f"--{boundary}--\r\n".encode(),
                ]
            )
            return [body], body_hash(body)
        text = _text(token, min(TEXT_PART, size))
        lines = max(1, (size - len(text) - 300) // B64_LINE)
        first = self.rng.randrange(max(1, len(self._pool) // B64_LINE - lines))
        lead = b"".join(
            [
                sep,
                b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                text,
                sep,
                b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
                f'Content-Disposition: attachment; filename="md-{token[-8:]}.bin"\r\n\r\n'.encode(),
            ]
        )
        end = f"--{boundary}--\r\n".encode()
        # views, not slices: the attachment is copied once, into the message
        attachment = memoryview(self._pool)[first * B64_LINE : (first + lines) * B64_LINE]
        lf_line = B64_LINE - 1
        attachment_lf = memoryview(self._pool_lf)[first * lf_line : (first + lines) * lf_line]
        # body_hash of lead + attachment + end, part by part, the attachment's LF form pre-built
        hasher = hashlib.sha256(lead.replace(b"\r\n", b"\n"))
        hasher.update(attachment_lf)
        hasher.update(end.replace(b"\r\n", b"\n").rstrip(b"\n"))
        return [lead, attachment, end], hasher.hexdigest()


def _headers(
    sender: str,
    recipients: Sequence[str],
    token: str,
    message_id: str,
    kind: str,
    boundary: str,
) -> bytes:
    content = (
        "text/plain; charset=us-ascii"
        if kind == "plain"
        else f'multipart/{kind}; boundary="{boundary}"'
    )
    to = ",\r\n ".join(f"<{r}>" for r in recipients)  # folded: RFC 5322 §2.2.3
    return (
        f"From: <{sender}>\r\nTo: {to}\r\nSubject: maildrill load {token[-8:]}\r\n"
        f"Date: {header_date()}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content}\r\n"
    ).encode("ascii")


def _text(token: str, size: int) -> bytes:
    line = (token * 3)[:76]
    return ((line + "\r\n") * max(1, size // (len(line) + 2))).encode("ascii")
