"""Server-rendered SVG charts.

Inline SVG needs no script and passes the strict Content-Security-Policy; colours come from
CSS classes (no `style` attributes). Every piece of text is escaped here, because labels and
series names can come from users (owner names, pipeline names)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Number = int | float | Decimal


@dataclass
class Series:
    name: str
    values: Sequence[Number]
    css_class: str = "bar"


def nice_step(maximum: float, ticks: int = 4) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10ⁿ) so that `ticks` steps cover `maximum`."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def compact(value: Number) -> str:
    """12500 → "12.5k": axis labels must stay short."""
    v = float(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            text = f"{v / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{v:.0f}" if v == int(v) else f"{v:.2f}"


def full(value: Number) -> str:
    return f"{float(value):,.2f}".removesuffix(".00")


def bar_chart(
    *,
    labels: Sequence[str],
    series: Sequence[Series],
    title: str,
    width: int = 720,
    height: int = 280,
    unit: str = "",
) -> SafeString:
    """Grouped bars: one group per label, one bar per series, a y axis with round ticks, a
    legend, and a `<title>` tooltip on every bar with the exact value."""
    left, right, top, bottom = 56, 12, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    all_values = [float(v) for s in series for v in s.values]
    step = nice_step(max(all_values, default=0.0))
    top_value = step * max(1, math.ceil(max(all_values, default=0.0) / step))
    scale = plot_h / top_value if top_value else 0
    suffix = f" {unit}" if unit else ""
    title_id = "chart-" + str(abs(hash((title, tuple(labels)))) % 10**8)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{title_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
    ]
    # Grid and y-axis labels.
    tick = 0.0
    while tick <= top_value + 1e-9:
        y = top + plot_h - tick * scale
        parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(compact(tick))}</text>')
        tick += step
    group_w = plot_w / max(1, len(labels))
    bar_w = max(2.0, (group_w * 0.8) / max(1, len(series)))
    for i, label in enumerate(labels):
        gx = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            value = float(s.values[i]) if i < len(s.values) else 0.0
            h = max(0.0, value * scale)
            x = gx + j * bar_w
            y = top + plot_h - h
            tooltip = f"{s.name} · {label}: {full(value)}{suffix}"
            parts.append(
                f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" data-value="{value:.2f}"><title>{escape(tooltip)}</title></rect>'
            )
        parts.append(
            f'<text x="{left + i * group_w + group_w / 2:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    # Legend along the top.
    x = left
    for s in series:
        parts.append(f'<rect class="{escape(s.css_class)}" x="{x}" y="8" width="12" height="12"/>')
        parts.append(f'<text x="{x + 16}" y="18">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    # Every interpolated string above went through escape(); numbers are formatted by us.
    return mark_safe("".join(parts))  # noqa: S308
