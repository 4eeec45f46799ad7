"""Chart types the dashboard needs beyond `rapport.web.charts.bar_chart`: stacked bars (volume
by sentiment over time) and horizontal bars (share of voice). Same rules: inline SVG, colours
from CSS classes, every string escaped, a `<title>` tooltip with the exact figure."""

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from rapport.web.charts import Series, compact, full, nice_step


def stacked_bar_chart(
    *,
    labels: Sequence[str],
    series: Sequence[Series],
    title: str,
    width: int = 760,
    height: int = 280,
    links: Sequence[str] | None = None,
) -> SafeString:
    """One bar per label, one segment per series (bottom to top in order). `links`, one per
    label, make each bar a link (drill-down to the mentions of that day)."""
    left, right, top, bottom = 48, 12, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(float(s.values[i]) for s in series) for i in range(len(labels))]
    peak = max(totals, default=0.0)
    step = nice_step(peak)
    top_value = step * max(1, math.ceil(peak / step)) if peak else step
    scale = plot_h / top_value
    title_id = "chart-" + str(abs(hash((title, tuple(labels)))) % 10**8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{title_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
    ]
    tick = 0.0
    while tick <= top_value + 1e-9:
        y = top + plot_h - tick * scale
        parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(compact(tick))}</text>')
        tick += step
    n = max(1, len(labels))
    slot = plot_w / n
    bar_w = max(1.5, slot * 0.78)
    label_every = max(1, math.ceil(n / 12))
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        segs = []
        for s in series:
            value = float(s.values[i]) if i < len(s.values) else 0.0
            h = value * scale
            y -= h
            tip = f"{label} · {s.name}: {full(value)}"
            segs.append(
                f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(0.0, h):.1f}" '
                f'data-value="{value:.0f}"><title>{escape(tip)}</title></rect>'
            )
        group = "".join(segs)
        if links and i < len(links) and links[i]:
            group = f'<a href="{escape(links[i])}" aria-label="{escape(label)}: {escape(full(totals[i]))} mentions">{group}</a>'
        parts.append(group)
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    x = left
    for s in series:
        parts.append(f'<rect class="{escape(s.css_class)}" x="{x}" y="8" width="12" height="12"/>')
        parts.append(f'<text x="{x + 16}" y="18">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every interpolated string is escaped above


def hbar_chart(
    *, rows: Sequence[tuple[str, float, str]], title: str, width: int = 420, unit: str = "%"
) -> SafeString:
    """Horizontal bars: (label, value, css class) per row, values 0–100 for shares."""
    row_h, label_w = 26, 130
    height = max(1, len(rows)) * row_h + 8
    peak = max((v for _, v, _ in rows), default=0.0) or 1.0
    title_id = "chart-" + str(abs(hash((title, tuple(r[0] for r in rows)))) % 10**8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{title_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
    ]
    bar_space = width - label_w - 60
    for i, (label, value, css) in enumerate(rows):
        y = 4 + i * row_h
        w = bar_space * float(value) / peak
        text = f"{float(value):.1f}{unit}"
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(label[:24])}</text>')
        parts.append(
            f'<rect class="{escape(css)}" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(text)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every interpolated string is escaped above
