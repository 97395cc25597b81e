"""The target file: valid files load, every mistake names its field in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from maildrill.errors import ConfigError
from maildrill.target import Role, field_reference, load_target, parse_target

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "lab", "domain": "example.test", "endpoints": {"smtp": {"url": "smtp://mx1:2525"}}}


def test_example_target_loads() -> None:
    target = load_target(ROOT / "targets" / "example.toml")
    assert set(target.endpoints) == set(Role)
    assert target.endpoints[Role.SUBMISSION].port == 587
    assert target.endpoints[Role.WEBMAIL].port == 443  # scheme default
    assert target.endpoints[Role.IMAPS].implicit_tls
    assert not target.endpoints[Role.IMAP].implicit_tls


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoints": {"smtp": {"url": "smtp://a", "starttls_requird": True}}},
         "endpoints.smtp.starttls_requird: unknown field "
         "(expected one of: flavour, starttls_required"),
        ({"endpoints": {"smtp": {"urll": "smtp://a"}}}, "endpoints.smtp.urll: unknown field"),
        ({"endpoints": {"smtpx": {"url": "smtp://a"}}}, "endpoints.smtpx: unknown endpoint role"),
        ({"endpoints": {"imap": {"url": "smtp://a"}}}, "endpoints.imap.url: scheme must be imap://"),
        ({"endpoints": {"imap": {"url": "imap://a:99999"}}}, "endpoints.imap.url: bad port"),
        ({"dns": {"resolver": "127.0.0.1"}}, "dns.resolver: expected host:port"),
        ({"slo": {"smtp_p99": 5}}, "slo.smtp_p99: unknown field (expected one of: delivery_p99_s"),
        ({"endpoints": {"webmail": {"url": "https://w", "flavour": "horde"}}},
         "endpoints.webmail.flavour: input should be 'roundcube', got 'horde'"),
        ({"policy": "paranoid"}, "policy: input should be 'seed'"),
        ({"safety": {"allowed_networks": ["10.0.0"]}}, "safety.allowed_networks: '10.0.0' is not"),
        ({"accounts": {"pattern": "user{i}"}}, "accounts.pattern: must be a format string"),
        ({"accounts": {"count": 0}}, "accounts.count: input should be greater than or equal to 1"),
        ({"domain": None}, "domain: input should be a valid string"),
    ],
)  # fmt: skip
def test_mistakes_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target({**BASE, **change}, source=Path("lab.toml"))
    text = str(caught.value)
    assert text.startswith("lab.toml: ") and message in text, text
    assert "\n" not in text


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target file not found"):
        load_target(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_target(bad)


def test_passwords_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = parse_target({**BASE, "accounts": {"password_env": "MD_TEST_PW", "count": 3}})
    monkeypatch.setenv("MD_TEST_PW", "s3cret")
    account = env.account(2)
    assert account.address == "user0003@example.test"
    assert account.password == "s3cret"
    assert "s3cret" not in repr(account)
    monkeypatch.delenv("MD_TEST_PW")
    with pytest.raises(ConfigError, match="MD_TEST_PW is not set"):
        env.account(0)
    (tmp_path / "pw").write_text("user0001:one\nuser0002:two\n")
    (tmp_path / "t.toml").write_text(
        'name="x"\ndomain="d.test"\n[endpoints.smtp]\nurl="smtp://a"\n'
        '[accounts]\npassword_file="pw"\ncount=2\n'
    )
    per_user = load_target(tmp_path / "t.toml")
    assert [a.password for a in per_user.iter_accounts()] == ["one", "two"]


def test_safety_networks() -> None:
    target = parse_target({**BASE, "safety": {"allowed_networks": ["10.0.0.0/8", "::1/128"]}})
    assert target.safety.allows("10.1.2.3")
    assert target.safety.allows("::1")
    assert not target.safety.allows("127.0.0.1")


def test_field_reference_in_sync() -> None:
    readme = (ROOT / "targets" / "README.md").read_text()
    assert field_reference() in readme, "regenerate with: python -m maildrill.target"


def test_cli_reports_a_misspelled_field_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('name="x"\ndomain="d.test"\n[endpoints.smtp]\nurll="smtp://a"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "maildrill", "check", "--target", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"maildrill check: {path}: endpoints.smtp.urll: unknown field "
                     "(expected one of: flavour, starttls_required, url)"], proc.stderr  # fmt: skip
    assert "Traceback" not in proc.stdout + proc.stderr
