"""Inline SVG charts for the reviewer pages and the HTML report (no scripts, no assets)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

# Japanese labels need a Japanese font: IPA's (Debian fonts-ipafont-gothic), else the default.
FONT = "IPAPGothic, IPAGothic, sans-serif"
PALETTE = ["#2f6f4f", "#c0392b", "#d68910", "#2e86c1", "#7d3c98", "#566573", "#17a589"]


# Outcomes keep one colour everywhere: green is good, red is refused.
OUTCOME_COLOURS = {
    "verified": "#2f6f4f",
    "reuse_granted": "#2e86c1",
    "rejected": "#c0392b",
    "reverification_required": "#d68910",
    "declined": "#7d3c98",
    "expired": "#566573",
}


def outcome_colour(name: str, position: int) -> str:
    return OUTCOME_COLOURS.get(name, PALETTE[(position + 3) % len(PALETTE)])


def _day(label: str) -> str:
    return label[5:]  # 2026-11-25 -> 11-25


def stacked_bars(
    labels: list[str],
    series: dict[str, list[int]],
    *,
    title: str,
    label: Callable[[str], str] = _day,
) -> str:
    """Vertical stacked bars: one per label, one colour per series, with a legend."""
    width, height, left, bottom, top = 640, 260, 40, 40, 30
    plot_height = height - bottom - top
    count = max(len(labels), 1)
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = max(totals, default=0) or 1
    slot = (width - left - 10) / count
    bar = min(48.0, max(4.0, slot * 0.7))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_height}" x2="{width - 10}" y2="{top + plot_height}" '
        'stroke="#555"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_height}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, name in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_height
        for s, (series_name, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_height * value / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{outcome_colour(series_name, s)}"><title>{escape(name)} '
                f"{escape(series_name)}: {value}"
                "</title></rect>"
            )
        if count <= 16 or i % max(1, count // 8) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_height + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label(name))}</text>'
            )
    for s, name in enumerate(series):
        x = left + s * 130
        parts.append(
            f'<rect x="{x}" y="{height - 16}" width="10" height="10" '
            f'fill="{outcome_colour(name, s)}"/>'
            f'<text x="{x + 14}" y="{height - 7}" font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(counts: list[tuple[str, int]], *, title: str) -> str:
    """Horizontal bars with their label and value (rejection reasons)."""
    row, left, width = 22, 230, 640
    height = max(row * len(counts) + 10, 40)
    peak = max((value for _, value in counts), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="{FONT}"><title>{escape(title)}</title>'
    ]
    if not counts:
        parts.append('<text x="10" y="24" font-size="12">none in this period</text>')
    for i, (label, value) in enumerate(counts):
        y = 5 + i * row
        w = (width - left - 60) * value / peak
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#c0392b"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 14}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
