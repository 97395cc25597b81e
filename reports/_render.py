"""What the three renderers share: the Jinja environment, formatting and reference links."""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

__all__ = ["environment", "ms", "reference_link"]

_RFC = re.compile(r"RFC\s*(\d{3,5})(?:\s*§\s*([\d.]+\d))?", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"']+")
_PROFILES = {
    "mozilla": "https://wiki.mozilla.org/Security/Server_Side_TLS",
    "ncsc": "https://english.ncsc.nl/publications/publications/2021/january/19/it-security-guidelines-for-transport-layer-security-2.1",
}


def ms(us: float | None, digits: int = 3) -> str:
    """Microseconds as milliseconds with enough digits to tell 0.120 ms from 0.180 ms."""
    if us is None:
        return "–"
    return f"{us / 1000:,.{digits}f}"


def num(value: float | None, digits: int = 3) -> str:
    """A figure for a table: thousands separated, ``digits`` significant decimals kept."""
    if value is None:
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def signed_pct(fraction: float | None) -> str:
    if fraction is None:
        return "–"
    if fraction in (float("inf"), float("-inf")):
        return "new" if fraction > 0 else "gone"
    return f"{fraction * 100:+.1f} %"


def reference_link(reference: str) -> Markup:
    """Link what can be linked (an RFC clause, a URL, a named TLS profile); escape the rest."""
    m = _URL.search(reference)
    if m:
        url = m.group(0)
        return Markup('<a href="{}">{}</a>').format(url, reference)
    m = _RFC.search(reference)
    if m:
        url = f"https://www.rfc-editor.org/rfc/rfc{m.group(1)}"
        if m.group(2):
            url += f"#section-{m.group(2)}"
        return Markup('<a href="{}">{}</a>').format(url, reference)
    for word, url in _PROFILES.items():
        if word in reference.lower():
            return Markup('<a href="{}">{}</a>').format(url, reference)
    return Markup(escape(reference))


def _tojson_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        # evidence comes from the servers under test: escape everything, always
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = ms
    env.filters["num"] = num
    env.filters["signed_pct"] = signed_pct
    env.filters["reference_link"] = reference_link
    env.filters["pretty_json"] = _tojson_pretty
    return env
