"""The server-rendered SVG bar chart: escaped text, proportional bars, round axis ticks."""

import re
from decimal import Decimal

from rapport.web.charts import Series, bar_chart, compact, nice_step


def bars(svg: str) -> list[tuple[str, float, float]]:
    return [
        (cls, float(h), float(v))
        for cls, h, v in re.findall(
            r'<rect class="([^"]+)" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)" data-value="([^"]+)"',
            svg,
        )
    ]


def test_bar_heights_are_proportional_to_values():
    svg = bar_chart(labels=["Jan", "Feb"], series=[Series("W", [Decimal("100"), Decimal("50")])], title="t")
    (c1, h1, v1), (c2, h2, v2) = bars(svg)
    assert (v1, v2) == (100.0, 50.0)
    assert abs(h1 - 2 * h2) < 0.2


def test_grouped_series_each_get_a_bar_with_a_tooltip():
    svg = bar_chart(
        labels=["Jan"],
        series=[Series("Weighted", [10], "bar"), Series("Won", [20], "bar-won")],
        title="t",
    )
    assert [b[0] for b in bars(svg)] == ["bar", "bar-won"]
    assert "<title>Weighted · Jan: 10</title>" in svg and "<title>Won · Jan: 20</title>" in svg


def test_all_text_is_escaped():
    evil = '<script>alert(1)</script>"&'
    svg = bar_chart(labels=[evil], series=[Series(evil, [1])], title=evil)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and "&quot;&amp;" in svg


def test_empty_and_zero_data_render_without_dividing_by_zero():
    svg = bar_chart(labels=[], series=[], title="nothing")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    svg = bar_chart(labels=["Jan"], series=[Series("W", [0])], title="zeros")
    assert bars(svg)[0][1] == 0.0


def test_axis_has_round_ticks_and_compact_labels():
    assert nice_step(1000) == 250
    assert nice_step(9) == 2.5
    assert compact(12500) == "12.5k" and compact(2_000_000) == "2M" and compact(7) == "7"
    svg = bar_chart(labels=["Jan"], series=[Series("W", [1000])], title="t")
    assert ">1k</text>" in svg and ">250</text>" in svg


def test_svg_is_accessible():
    svg = bar_chart(labels=["Jan"], series=[Series("W", [1])], title="Forecast")
    assert 'role="img"' in svg and re.search(r'aria-labelledby="(chart-\d+)"', svg)
