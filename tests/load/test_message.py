"""Message profiles: seeded draws, the default mix's proportions, MIME that parses, and the
body hash the full-chain ledger checks."""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from maildrill.errors import ConfigError
from maildrill.load.ledger import body_hash, make_message, parse_message
from maildrill.load.message import (
    DEFAULT_PROFILE,
    Band,
    MessageFactory,
    MessageProfile,
    load_profile,
    parse_recipients,
)

KB, MB = 1024, 1024 * 1024
DRAWS = 4000


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count()
    return lambda: f"{next(numbers):032x}"


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_one_seed_draws_one_sequence_of_messages() -> None:
    def draw(seed: int) -> list[tuple[int, str, bytes]]:
        factory = MessageFactory(DEFAULT_PROFILE, "run1", seed=seed, unique=counter_ids())
        out = []
        for _ in range(60):
            count = factory.recipient_count()
            message = factory.make("a@x.test", [f"u{i}@example.test" for i in range(count)])
            # the Date header is the clock's; everything else comes from the seed
            body = message.raw.split(b"\r\n\r\n", 1)[1]
            out.append((count, message.kind, body))
        return out

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_default_mix_proportions_over_many_draws() -> None:
    """80 % 2-8 KB, 15 % 20-200 KB, 5 % 1-5 MB; 85 % one recipient (within 2.5 points)."""
    factory = MessageFactory(DEFAULT_PROFILE, "run1", seed=3)
    bands: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for _ in range(DRAWS):
        message = factory.make("a@x.test", ["b@example.test"])
        size = len(message.raw)
        band = "small" if size < 10 * KB else "medium" if size < 300 * KB else "large"
        bands[band] += 1
        kinds[message.kind] += 1
        limits = {"small": (2 * KB, 8 * KB), "medium": (20 * KB, 200 * KB), "large": (MB, 5 * MB)}
        low, high = limits[band]
        assert low * 0.95 <= size <= high * 1.02, (band, size)
        if band == "small":
            assert message.kind in ("plain", "alternative")
        else:
            assert message.kind == "mixed"  # only messages with an attachment are big
    share = {k: v / DRAWS for k, v in bands.items()}
    assert abs(share["small"] - 0.80) < 0.025, share
    assert abs(share["medium"] - 0.15) < 0.025, share
    assert abs(share["large"] - 0.05) < 0.015, share
    assert abs(kinds["plain"] / DRAWS - 0.40) < 0.03, kinds  # small ones: half each
    counts = Counter(factory.recipient_count() for _ in range(DRAWS))
    assert abs(counts[1] / DRAWS - 0.85) < 0.025, counts
    assert set(counts) == {1, 2, 3, 4, 5}, counts


@pytest.mark.parametrize("seed", range(40))
def test_every_message_parses_and_keeps_its_id_and_hash(seed: int) -> None:
    factory = MessageFactory(DEFAULT_PROFILE, "run1", seed=seed)
    rcpts = ["b@example.test", "c@example.test", "d@example.test"]
    message = factory.make("a@x.test", rcpts)
    mime = parsed(message.raw)
    assert not mime.defects and all(not part.defects for part in mime.walk())
    assert mime["Message-ID"] == message.message_id
    assert [str(a.addr_spec) for a in mime["To"].addresses] == rcpts
    assert mime["X-Maildrill-Hash"] == message.digest
    expected = {"plain": "text/plain", "alternative": "multipart/alternative"}
    assert mime.get_content_type() == expected.get(message.kind, "multipart/mixed")
    if message.kind == "alternative":
        assert [p.get_content_type() for p in mime.iter_parts()] == ["text/plain", "text/html"]
    if message.kind == "mixed":
        text, attachment = mime.iter_parts()
        assert text.get_content_type() == "text/plain"
        assert attachment.get_content_disposition() == "attachment"
        payload = attachment.get_content()
        assert isinstance(payload, bytes)
        assert base64.b64encode(payload)[:76] in message.raw  # base64 that decodes whole
    # the hash is the ledger's, computed from the raw body, and survives what a store does
    body = message.raw.split(b"\r\n\r\n", 1)[1]
    assert message.digest == body_hash(body)
    stored = b"Received: from mx\n" + message.raw.replace(b"\r\n", b"\n")
    assert parse_message(stored) == (message.message_id, message.digest)


def test_a_changed_attachment_byte_changes_the_hash() -> None:
    profile = MessageProfile("big", (DEFAULT_PROFILE.sizes[1],))
    message = MessageFactory(profile, "run1").make("a@x.test", ["b@example.test"])
    raw = bytearray(message.raw)
    at = len(raw) - 200  # inside the attachment
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")
    assert parse_message(bytes(raw))[1] != message.digest


def test_fixed_profile_is_the_raw_rate_message() -> None:
    factory = MessageFactory(load_profile("fixed", message_size=4096), "run1")
    assert factory.recipient_count() == 1
    message = factory.make("a@x.test", ["b@example.test"])
    _, reference, _ = make_message("run1", "a@x.test", "b@example.test", 4096)
    assert len(message.raw) == len(reference) and message.kind == "plain"
    assert b"MIME-Version" not in message.raw  # byte for byte today's message shape
    assert parse_message(message.raw) == (message.message_id, message.digest)


def test_profile_file_round_trips_into_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "office.toml"
    path.write_text(
        """name = "office"
seed = 11
[[sizes]]
weight = 9
min = "2KB"
max = "4KB"
mime = ["plain", "alternative"]
[[sizes]]
weight = 1
min = 50000
max = "1.5MB"
mime = "mixed"
[[recipients]]
weight = 3
min = 1
[[recipients]]
weight = 1
min = 2
max = 3
""",
        encoding="utf-8",
    )
    profile = load_profile(str(path))
    assert profile.name == "office" and profile.seed == 11
    assert [(b.low, b.high, b.mime) for b in profile.sizes] == [
        (2 * KB, 4 * KB, ("plain", "alternative")),
        (50000, int(1.5 * MB), ("mixed",)),
    ]
    assert profile.recipients == (Band(3, 1, 1), Band(1, 2, 3))
    assert MessageProfile.from_json(profile.to_json()) == profile
    assert load_profile(str(path), recipients="4").recipients == (Band(1, 4, 4),)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[[sizes]]\nmin = 2000\nmax = 4000\nmime = ["rtf"]\n', "sizes[0].mime"),
        ("[[sizes]]\nmin = 4000\nmax = 2000\n", "sizes[0]: need"),
        ('[[sizes]]\nmin = "lots"\n', "sizes[0].min"),
        ("[[sizes]]\nmin = 4000\nweight = 0\n", "sizes[0].weight"),
        ("name = 'x'\n", "needs at least one [[sizes]]"),
        ("[[sizes]]\nmin = 4000\n[[recipients]]\nmin = 0\n", "recipients[0]"),
        ("sizes = [", "not valid TOML"),
    ],
)
def test_a_bad_profile_file_is_one_line_naming_the_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="--message-profile") as info:
        load_profile(str(path))
    assert field in str(info.value) and "\n" not in str(info.value)


def test_option_mistakes_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--message-size: only with"):
        load_profile("default", message_size=4096)
    with pytest.raises(ConfigError, match="message profile not found"):
        load_profile(str(tmp_path / "missing.toml"))
    assert parse_recipients("2-5") == (Band(1, 2, 5),)
    for bad in ("0", "5-2", "x", "1-"):
        with pytest.raises(ConfigError, match="--recipients"):
            parse_recipients(bad)
