"""Server-rendered SVG chart of a key's requests and errors per hour (the key page's usage panel).

No JavaScript and no CDN. Colours come from Django admin's CSS variables (``--link-fg``,
``--error-fg``, ``--body-quiet-color``, ``--hairline-color``), which its dark theme redefines, so
the chart follows light and dark mode; the fallbacks are the light theme's values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# (width, height, left, right, top, bottom, font px): the wide chart, and a compact one for
# phones, drawn at about the size it is shown so its labels stay readable (the key page shows
# one or the other with a media query).
LAYOUTS = {
    "wide": (760, 230, 56, 12, 28, 34, 11),
    "compact": (360, 210, 44, 8, 28, 32, 12),
}
REQUEST_FILL = "var(--link-fg, #417690)"
ERROR_FILL = "var(--error-fg, #ba2121)"
TEXT_COLOR = "var(--body-quiet-color, #666)"
GRID_COLOR = "var(--hairline-color, #e8e8e8)"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2 or 5 times a power of ten at or above ``value`` (a readable top of the y axis)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def _hour(entry: Mapping[str, Any]) -> datetime:
    hour = entry["hour"]
    return hour if isinstance(hour, datetime) else datetime.fromisoformat(hour)


def usage_chart(
    hourly: Sequence[Mapping[str, Any]], *, chart_id: str = "usage-chart", layout: str = "wide"
) -> SafeString:
    """An inline SVG of ``hourly`` ([{hour, requests, errors}], oldest first, as key_usage
    returns it), with a title and a text description for screen readers."""
    WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, FONT = LAYOUTS[layout]
    compact = layout == "compact"
    cid = escape(chart_id)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    n = max(len(hourly), 1)
    slot = plot_w / n
    total = sum(int(e["requests"]) for e in hourly)
    errors = sum(int(e["errors"]) for e in hourly)
    peak = max((int(e["requests"]) for e in hourly), default=0)
    top = nice_ceiling(peak)
    first = _hour(hourly[0]) if hourly else None
    last = _hour(hourly[-1]) if hourly else None

    description = "No requests in this period."
    if total:
        busiest = max(hourly, key=lambda e: int(e["requests"]))
        description = (
            f"{total:,} requests and {errors:,} errors in {len(hourly)} hours"
            f"{_span(first, last)}. Busiest hour: {_hour(busiest):%a %d %b %H:00} UTC "
            f"with {int(busiest['requests']):,} requests."
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" class="usage-chart usage-chart--{layout}" '
        f'style="width:100%;max-width:{WIDTH}px;height:auto;color:{TEXT_COLOR};'
        f'font:{FONT}px var(--font-family-primary, sans-serif)">',
        f'<title id="{cid}-title">Requests and errors per hour, last 7 days (UTC)</title>',
        f'<desc id="{cid}-desc">{escape(description)}</desc>',
    ]
    # Grid and y labels: 0, half, top.
    parts.append(f'<g style="stroke:{GRID_COLOR}" stroke-width="1">')
    for fraction in (0, 0.5, 1):
        y = base - fraction * plot_h
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
    parts.append("</g>")
    parts.append('<g fill="currentColor" text-anchor="end">')
    for fraction in (0, 0.5, 1):
        y = base - fraction * plot_h
        label = f"{top * fraction:,.0f}" if top * fraction >= 1 or fraction == 0 else ""
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}">{label}</text>')
    parts.append("</g>")

    # Day ticks at midnight UTC.
    parts.append('<g fill="currentColor" text-anchor="middle">')
    for i, entry in enumerate(hourly):
        hour = _hour(entry)
        if hour.hour == 0:
            x = LEFT + i * slot
            label = f"{hour:%d}" if compact else f"{hour:%a %d}"
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" '
                f'style="stroke:{GRID_COLOR}"/>'
                f'<text x="{x:.1f}" y="{base + 16}">{label}</text>'
            )
    parts.append("</g>")

    # Bars: requests, then errors over them (errors are a subset of requests, same scale).
    bar_w = max(slot * 0.8, 1)
    for fill, field_name, css in (
        (REQUEST_FILL, "requests", "usage-chart-requests"),
        (ERROR_FILL, "errors", "usage-chart-errors"),
    ):
        parts.append(f'<g class="{css}" style="fill:{fill}">')
        for i, entry in enumerate(hourly):
            value = int(entry[field_name])
            if not value:
                continue
            height = max(value / top * plot_h, 1)
            x = LEFT + i * slot + (slot - bar_w) / 2
            tip = (
                f"{_hour(entry):%a %d %b %H:00} UTC: {int(entry['requests']):,} requests, "
                f"{int(entry['errors']):,} errors"
            )
            parts.append(
                f'<rect x="{x:.1f}" y="{base - height:.1f}" width="{bar_w:.1f}" '
                f'height="{height:.1f}"><title>{escape(tip)}</title></rect>'
            )
        parts.append("</g>")

    # Legend.
    parts.append(
        f'<g fill="currentColor"><rect x="{LEFT}" y="8" width="10" height="10" '
        f'style="fill:{REQUEST_FILL}"/><text x="{LEFT + 14}" y="17">Requests</text>'
        f'<rect x="{LEFT + 80}" y="8" width="10" height="10" style="fill:{ERROR_FILL}"/>'
        f'<text x="{LEFT + 94}" y="17">Errors</text></g>'
    )
    if not total:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle" fill="currentColor">No requests in the last 7 days</text>'
        )
    parts.append("</svg>")
    # Every interpolated value above is a number, a formatted date or escaped text.
    return mark_safe("".join(parts))  # noqa: S308


def _span(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return ""
    return f", {first:%d %b %H:00} to {last:%d %b %H:00} UTC"
