"""Inline SVG line charts, so that every report opens offline with no script and no CDN.

Usage::

    chart = line_chart(
        [Series("offered", [(0, 10), (1, 20)]), Series("achieved", [(0, 9), (1, 18)])],
        title="Rate", x_label="s", y_label="req/s",
    )
    html = f"<figure>{chart}</figure>"      # chart is markupsafe.Markup
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

__all__ = ["Series", "line_chart", "nice_ticks"]

# Okabe-Ito palette: tells series apart for colour-blind readers and in greyscale print
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

_W, _H = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 28, 40


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False
    step: bool = False  # draw as a staircase (a CDF, per-second counts)
    color: str = field(default="")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    lo_exp = math.floor(math.log10(lo))
    hi_exp = math.ceil(math.log10(hi))
    return [10.0**e for e in range(lo_exp, hi_exp + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.6g}"
    return f"{v:.3g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    y_min: float | None = 0.0,
    y_max: float | None = None,
    width: int = _W,
    height: int = _H,
) -> Markup:
    """One chart with a legend; every label and value is escaped."""
    pts = [p for s in series for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if log_x:
        pts = [p for p in pts if p[0] > 0]
    if not pts:
        return Markup(
            '<svg class="chart empty" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{width}" height="60" viewBox="0 0 {width} 60" font-family="sans-serif" '
            f'font-size="11"><title>{escape(title)}</title>'
            f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
            f'<text x="{_LEFT}" y="40" fill="#57606a">no per-second data in this run</text></svg>'
        )
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x_lo, x_hi = min(xs), max(xs)
    y_lo = min(ys) if y_min is None else min(y_min, min(ys))
    y_hi = max(ys) if y_max is None else y_max
    if log_x:
        x_ticks = _log_ticks(x_lo, x_hi if x_hi > x_lo else x_lo * 10)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
    else:
        x_ticks = nice_ticks(x_lo, x_hi)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
    y_ticks = nice_ticks(y_lo, y_hi, 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM

    def sx(x: float) -> float:
        if log_x:
            frac = (math.log10(x) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))
        else:
            frac = (x - x_lo) / (x_hi - x_lo)
        return _LEFT + frac * plot_w

    def sy(y: float) -> float:
        return _TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        f'font-size="11"><title>{escape(title)}</title>',
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for t in y_ticks:
        y = sy(t)
        out.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(t))}</text>'
        )
    for t in x_ticks:
        x = sx(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
            f"{escape(_fmt(t))}</text>"
        )
    out.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#888"/>'
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text transform="translate(14,{_TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        points = [p for p in s.points if math.isfinite(p[0]) and math.isfinite(p[1])]
        if log_x:
            points = [p for p in points if p[0] > 0]
        coords: list[tuple[float, float]] = []
        for j, (x, y) in enumerate(points):
            if s.step and j:
                coords.append((sx(x), sy(points[j - 1][1])))
            coords.append((sx(x), sy(y)))
        dash = ' stroke-dasharray="5,3"' if s.dashed else ""
        if len(coords) == 1:
            cx, cy = coords[0]
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>')
        elif coords:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            out.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} '
                f'points="{path}"><title>{escape(s.label)}</title></polyline>'
            )
        ly = _TOP + 10 + i * 16
        lx = _LEFT + plot_w + 12
        out.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
            f'<text x="{lx + 24}" y="{ly + 4}">{escape(s.label[:22])}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))
