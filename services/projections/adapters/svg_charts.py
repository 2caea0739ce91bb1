"""Charts as inline SVG, drawn on the server: no script, no font or library from the internet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#2f6fb0", "#e08a2c", "#3a9a5b", "#b03a48", "#7a5ab5")
GOOD, LATE, BAD, WAITING = "#3a9a5b", "#e08a2c", "#b03a48", "#7f8c99"  # colours that mean something


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def grouped_bars(
    title: str,
    groups: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[str],
    value_label: Callable[[float], str] | None = None,
    *,
    maximum: float | None = None,
    width: int = 640,
    height: int = 260,
    colours: Sequence[str] = PALETTE,
) -> str:
    """Bars per group (one per series, coloured in order from ``colours``); a missing value draws no bar and is
    labelled 'n/a'."""
    value_label = value_label or number_label
    left, right, top, bottom = 56, 12, 36, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, row in groups for v in row if v is not None]
    top_value = maximum if maximum is not None else _nice_max(max(values, default=0.0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="20" font-size="14" font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    for tick in range(5):
        value = top_value * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#555">'
            f"{escape(value_label(value))}</text>"
        )
    slot = plot_w / max(1, len(groups))
    bar_w = max(4.0, min(36.0, (slot - 12) / max(1, len(series))))
    for index, (label, row) in enumerate(groups):
        x0 = left + index * slot + (slot - bar_w * len(series)) / 2
        for position, value in enumerate(row):
            x = x0 + position * bar_w
            colour = colours[position % len(colours)]
            if value is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 4}" font-size="9" text-anchor="middle" '
                    f'fill="#999">n/a</text>'
                )
                continue
            bar_h = plot_h * min(value, top_value) / top_value
            y = top + plot_h - bar_h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{bar_h:.1f}" fill="{colour}">'
                f"<title>{escape(label)} {escape(series[position])}: {escape(value_label(value))}</title></rect>"
            )
        parts.append(
            f'<text x="{left + index * slot + slot / 2:.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle" fill="#222">{escape(label)}</text>'
        )
    legend_x = left
    for position, name in enumerate(series):
        colour = colours[position % len(colours)]
        parts.append(f'<rect x="{legend_x}" y="{height - 16}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{height - 7}" font-size="11" fill="#222">{escape(name)}</text>')
        legend_x += 24 + 7 * len(name)
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/></svg>'
    )
    return "".join(parts)


def number_label(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def minutes_label(minutes: float) -> str:
    return f"{number_label(minutes)} min"


def percent_label(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"
