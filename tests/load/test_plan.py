"""Safety: load only inside the allowed networks and within max_rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from maildrill.errors import ConfigError, PolicyViolation
from maildrill.load.plan import PLAN_ENV, current_plan, make_plan
from maildrill.target import parse_target


def _target(url: str = "smtp://127.0.0.1:2525", **safety: object) -> object:
    return parse_target(
        {
            "name": "t",
            "domain": "example.test",
            "endpoints": {"smtp": {"url": url}, "imaps": {"url": "imaps://127.0.0.1:9993"}},
            "safety": safety,
        },
        source=Path("t.toml"),
    )


def test_plan_resolves_nodes_inside_allowed_networks() -> None:
    plan = make_plan(_target(), "full_chain", duration_s=5, rate=10)  # type: ignore[arg-type]
    assert plan.roles == {"send": "smtp", "read": "imaps"}
    assert plan.nodes["smtp"] == [("127.0.0.1", 2525)]
    assert plan.pace_rate == 10


def test_load_outside_allowed_networks_is_refused() -> None:
    target = _target("smtp://192.0.2.10:25")
    with pytest.raises(PolicyViolation, match=r"192\.0\.2\.10.*allowed_networks"):
        make_plan(target, "full_chain")  # type: ignore[arg-type]


def test_rate_above_max_rate_is_refused_and_default_is_capped() -> None:
    target = _target(max_rate=50)
    with pytest.raises(PolicyViolation, match="max_rate"):
        make_plan(target, "full_chain", rate=51)  # type: ignore[arg-type]
    assert make_plan(target, "full_chain").pace_rate == 50  # type: ignore[arg-type]


def test_scenario_needing_a_missing_endpoint_names_it() -> None:
    with pytest.raises(ConfigError, match="pop3"):
        make_plan(_target(), "pop3_session")  # type: ignore[arg-type]


def test_shapes_follow_their_schedule() -> None:
    step = make_plan(_target(), "smtp_inbound", duration_s=40, rate=40, shape="step")  # type: ignore[arg-type]
    assert [step.rate_at(t) for t in (0, 10, 20, 39)] == [10, 20, 30, 40]
    spike = make_plan(_target(), "smtp_inbound", duration_s=10, rate=40, shape="spike")  # type: ignore[arg-type]
    assert [spike.rate_at(t) for t in (1, 4, 5.9, 6)] == [10, 40, 40, 10]
    with pytest.raises(ConfigError, match="shape"):
        make_plan(_target(), "smtp_inbound", shape="sine")  # type: ignore[arg-type]


def test_full_chain_watches_over_imap_by_default_or_pop3_when_asked() -> None:
    imap = make_plan(_target(), "full_chain")  # type: ignore[arg-type]
    assert (imap.watch, imap.poll_interval_s, imap.roles["read"]) == ("imap", 0.1, "imaps")
    with pytest.raises(ConfigError, match="endpoint pop3s or pop3"):
        make_plan(_target(), "full_chain", watch="pop3")  # type: ignore[arg-type]
    target = parse_target(
        {
            "name": "t",
            "domain": "example.test",
            "endpoints": {
                "smtp": {"url": "smtp://127.0.0.1:25"},
                "pop3": {"url": "pop3://127.0.0.2"},
            },
        },
        source=Path("t.toml"),
    )
    pop3 = make_plan(target, "full_chain", watch="pop3", poll_interval_s=2)
    assert (pop3.watch, pop3.poll_interval_s) == ("pop3", 2)
    assert pop3.nodes["pop3"] == [("127.0.0.2", 110)]


@pytest.mark.parametrize(
    ("scenario", "options", "error"),
    [
        ("smtp_inbound", {"watch": "pop3"}, "only the full_chain scenario"),
        ("full_chain", {"watch": "jmap"}, "--watch: unknown 'jmap'"),
        ("full_chain", {"poll_interval_s": 0}, "--poll-interval"),
    ],
)
def test_watch_options_out_of_place_are_one_error_line(
    scenario: str, options: dict[str, object], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        make_plan(_target(), scenario, **options)  # type: ignore[arg-type]


def test_plain_locust_takes_the_scenario_from_the_locustfile_and_the_watcher_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``locust -f loadtests/X.py --maildrill-target FILE [--maildrill-watch pop3]``."""
    embedded = pytest.importorskip("maildrill.embedded")
    monkeypatch.delenv(PLAN_ENV, raising=False)
    monkeypatch.delenv("MAILDRILL_SCENARIO", raising=False)
    with embedded.launch(tmp_path / "lab", accounts=2) as target_file:
        reader = current_plan(str(target_file), "loadtests/pop3_session.py")
        chain = current_plan(str(target_file), "loadtests/full_chain.py", "pop3")
    assert reader.scenario == "pop3_session" and reader.roles["read"] == "pop3s"
    assert chain.scenario == "full_chain" and chain.watch == "pop3"
    assert chain.roles["read"] == "pop3s"


@pytest.mark.parametrize("rate", [0, -5])
def test_a_rate_of_zero_or_less_is_refused(rate: float) -> None:
    """Before: 0 fell back to safety.max_rate (100/s)."""
    with pytest.raises(ConfigError, match="--rate: must be more than 0"):
        make_plan(_target(), "smtp_inbound", rate=rate)  # type: ignore[arg-type]
