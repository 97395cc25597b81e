"""What the three renderers share: the Jinja environment, formatting and reference links."""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from maildrill.suites import report_templates_dir

__all__ = ["environment", "ms", "reference_link"]

_RFC = re.compile(r"RFC\s*(\d{3,5})(?:\s*§\s*([\d.]*\d))?", re.IGNORECASE)
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
    """Link what can be linked (each RFC clause, URLs, named TLS profiles); escape the rest.

    >>> str(reference_link("RFC 5321 §4.2; seed S18"))
    '<a href="https://www.rfc-editor.org/rfc/rfc5321#section-4.2">RFC 5321 §4.2</a>; seed S18'
    """
    pattern = re.compile(f"{_URL.pattern}|{_RFC.pattern}|{'|'.join(_PROFILES)}", re.IGNORECASE)
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(reference):
        out.append(escape(reference[pos : m.start()]))
        text = m.group(0)
        if text.lower().startswith("http"):
            url = text
        elif text.lower() in _PROFILES:
            url = _PROFILES[text.lower()]
        else:
            rfc = _RFC.match(text)
            assert rfc is not None
            url = f"https://www.rfc-editor.org/rfc/rfc{rfc.group(1)}"
            if rfc.group(2):
                url += f"#section-{rfc.group(2)}"
        out.append(Markup('<a href="{}">{}</a>').format(url, text))
        pos = m.end()
    out.append(escape(reference[pos:]))
    return Markup("".join(out))


def _tojson_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(
        # the templates are the top-level reports/ folder: data, as the suites are
        loader=FileSystemLoader(report_templates_dir()),
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
