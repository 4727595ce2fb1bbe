"""Inline SVG charts (no JavaScript, no external resources): heatmap, grouped horizontal bars, scatter.

Every chart is a pure function of report data returning an ``<svg>`` string; all text is escaped, and every mark
carries a ``<title>`` so hovering shows the exact value and CI in any browser.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from safepeft.records import Metric
from safepeft.report.model import Matrix, Scatter

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c755f", "#ff9da7", "#edc948",
           "#bab0ac")
CHAR_W = 6.6  # average glyph width of the 12px sans-serif font, for layout
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'


def color_of(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.0f}%" if percent else f"{value:+.2f}"


def _interval(metric: Metric, percent: bool) -> str:
    text = fmt(metric.value, percent)
    if metric.ci95 is not None:
        text += f" [{fmt(metric.ci95[0], percent)}, {fmt(metric.ci95[1], percent)}]"
    return text


def _clip(text: str, width: float) -> str:
    limit = max(4, int(width / CHAR_W))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _heat_color(value: float) -> str:
    """White -> orange -> dark red over [0, 1]."""
    stops = ((0.0, (255, 255, 255)), (0.5, (244, 165, 130)), (1.0, (178, 24, 43)))
    value = min(1.0, max(0.0, value))
    for (x0, c0), (x1, c1) in zip(stops, stops[1:], strict=False):
        if value <= x1:
            t = (value - x0) / (x1 - x0)
            return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(c0, c1, strict=True))
    return "#b2182b"


def heatmap(matrix: Matrix, variants: list[str], chart_id: str) -> str:
    """Variants (rows) x groups (columns), cell colour = value in [0, 1], value printed in the cell."""
    rows = [v for v in variants if v in matrix.values]
    label_w = min(220.0, max(60.0, CHAR_W * max((len(v) for v in rows), default=8) + 12))
    cell_w, cell_h, head_h = 54.0, 28.0, 170.0
    width = label_w + cell_w * len(matrix.groups) + head_h * 0.6  # room for the last rotated header
    height = head_h + cell_h * len(rows) + 50
    out = [_open(width, height, f"{matrix.title}: variants by category")]
    out.append(f'<defs><linearGradient id="{chart_id}-grad">'
               + "".join(f'<stop offset="{p}" stop-color="{_heat_color(p)}"/>' for p in (0, 0.5, 1))
               + "</linearGradient></defs>")
    for j, label in enumerate(matrix.group_labels):
        x = label_w + cell_w * j + cell_w / 2
        out.append(f'<text x="{x:.1f}" y="{head_h - 8}" transform="rotate(-55 {x:.1f} {head_h - 8})" '
                   f'fill="#333">{escape(_clip(label, head_h * 1.15))}<title>{escape(label)}</title></text>')
    for i, name in enumerate(rows):
        y = head_h + cell_h * i
        out.append(f'<text x="{label_w - 8}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end" fill="#222">'
                   f'{escape(_clip(name, label_w - 10))}<title>{escape(name)}</title></text>')
        for j, group in enumerate(matrix.groups):
            x = label_w + cell_w * j
            metric = matrix.values[name].get(group)
            if metric is None or metric.value is None:
                out.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="#f0f0f0">'
                           f'<title>{escape(name)} · {escape(matrix.group_labels[j])}: not measured</title></rect>')
                continue
            ink = "#fff" if metric.value > 0.6 else "#222"
            n = matrix.counts.get(name, {}).get(group)
            # A cell from one prompt is a single verdict, not a rate: dashed, and said in its tooltip.
            single = n == 1
            stroke = 'stroke="#333" stroke-width="1.2" stroke-dasharray="3 2"' if single else \
                'stroke="#ddd" stroke-width="0.5"'
            about = "one prompt: a single verdict, not a rate" if single else (f"n={n}" if n is not None else "")
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" rx="2" '
                f'fill="{_heat_color(metric.value)}" {stroke} data-n="{n if n is not None else ""}">'
                f'<title>{escape(name)} · {escape(matrix.group_labels[j])}: {escape(_interval(metric, True))}'
                f'{escape(" · " + about) if about else ""}</title></rect>'
                f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2:.1f}" text-anchor="middle" '
                f'fill="{ink}" pointer-events="none">{fmt(metric.value, True)}</text>'
            )
            if n is not None:
                out.append(f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h - 6:.1f}" text-anchor="middle" '
                           f'font-size="8" fill="{ink}" pointer-events="none">n={n}</text>')
    legend_y = head_h + cell_h * len(rows) + 16
    out.append(f'<rect x="{label_w}" y="{legend_y}" width="160" height="10" fill="url(#{chart_id}-grad)" '
               f'stroke="#ccc" stroke-width="0.5"/><text x="{label_w}" y="{legend_y + 24}" fill="#555">0%</text>'
               f'<text x="{label_w + 160}" y="{legend_y + 24}" text-anchor="end" fill="#555">100%</text>'
               f'<text x="{label_w + 170}" y="{legend_y + 9}" fill="#555">{escape(matrix.metric)}</text>')
    return "".join(out) + "</svg>"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _domain(matrix: Matrix, percent: bool) -> tuple[float, float]:
    if percent:
        return 0.0, 1.0
    extent = 0.1
    for row in matrix.values.values():
        for metric in row.values():
            for v in (metric.value, *(metric.ci95 or ())):
                if v is not None:
                    extent = max(extent, abs(v))
    extent = min(1.0, math.ceil(extent * 10) / 10)
    return -extent, extent


def bars(matrix: Matrix, variants: list[str], percent: bool) -> str:
    """One block per group, one horizontal bar per variant with its 95% CI whisker."""
    rows = [v for v in variants if v in matrix.values]
    low, high = _domain(matrix, percent)
    label_w = min(200.0, max(80.0, CHAR_W * max((len(g) for g in matrix.group_labels), default=8) + 14))
    plot_w, bar_h, gap = 420.0, 12.0, 12.0
    legend_rows = math.ceil(len(rows) / 4) if rows else 0
    top = 14 + 18 * legend_rows
    block = bar_h * len(rows) + gap
    height = top + block * len(matrix.groups) + 40
    width = label_w + plot_w + 90
    x_of = scale(low, high, label_w, plot_w)
    out = [_open(width, height, f"{matrix.title}: bars per group and variant")]
    for k, name in enumerate(rows):
        lx, ly = label_w + (k % 4) * (plot_w / 4), 10 + 18 * (k // 4)
        out.append(f'<rect x="{lx:.1f}" y="{ly}" width="10" height="10" fill="{color_of(k)}"/>'
                   f'<text x="{lx + 14:.1f}" y="{ly + 9}" fill="#222">{escape(_clip(name, plot_w / 4 - 18))}'
                   f'<title>{escape(name)}</title></text>')
    axis_bottom = top + block * len(matrix.groups)
    for tick in nice_ticks(low, high):
        if low - 1e-9 <= tick <= high + 1e-9:
            x = x_of(tick)
            stroke = "#888" if abs(tick) < 1e-12 else "#e4e4e4"
            out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_bottom}" stroke="{stroke}"/>'
                       f'<text x="{x:.1f}" y="{axis_bottom + 16}" text-anchor="middle" fill="#555">'
                       f'{fmt(tick, percent) if percent else f"{tick:g}"}</text>')
    origin = x_of(max(low, min(0.0, high)))
    for g, (group, label) in enumerate(zip(matrix.groups, matrix.group_labels, strict=True)):
        y0 = top + block * g
        out.append(f'<text x="{label_w - 8}" y="{y0 + bar_h * len(rows) / 2 + 4:.1f}" text-anchor="end" '
                   f'fill="#222">{escape(_clip(label, label_w - 10))}<title>{escape(label)}</title></text>')
        for k, name in enumerate(rows):
            metric = matrix.values[name].get(group)
            if metric is None or metric.value is None:
                continue
            y, x = y0 + bar_h * k, x_of(metric.value)
            tip = f"{escape(name)} · {escape(label)}: {escape(_interval(metric, percent))}"
            out.append(f'<rect x="{min(origin, x):.1f}" y="{y + 1}" width="{max(abs(x - origin), 1):.1f}" '
                       f'height="{bar_h - 2}" fill="{color_of(k)}"><title>{tip}</title></rect>')
            if metric.ci95 is not None:
                a, b = x_of(metric.ci95[0]), x_of(metric.ci95[1])
                mid = y + bar_h / 2
                out.append(f'<path d="M{a:.1f},{mid - 3}v6M{a:.1f},{mid}H{b:.1f}M{b:.1f},{mid - 3}v6" '
                           f'stroke="#222" stroke-width="1" fill="none"/>')
            out.append(f'<text x="{label_w + plot_w + 8}" y="{y + bar_h - 2}" fill="#555" font-size="10">'
                       f'{fmt(metric.value, percent)}</text>')
    return "".join(out) + "</svg>"


def scatter(data: Scatter) -> str:
    """Utility (x) against harm (y); the Pareto front (most utility for least harm) drawn and highlighted."""
    left, top, plot_w, plot_h = 64.0, 16.0, 520.0, 320.0
    xs, ys = [p.x for p in data.points], [p.y for p in data.points]
    x_lo, x_hi = _padded(min(xs), max(xs))
    y_lo, y_hi = _padded(min(ys), max(ys))
    x_of = scale(x_lo, x_hi, left, plot_w)
    y_of = scale(y_hi, y_lo, top, plot_h)  # SVG y grows downwards: the top edge is the high value
    longest = max(len(p.variant) for p in data.points)
    out = [_open(left + plot_w + min(200.0, CHAR_W * longest + 20), top + plot_h + 56,
                 "Safety against utility with the Pareto front")]
    for tick in nice_ticks(x_lo, x_hi):
        if x_lo <= tick <= x_hi:
            out.append(f'<line x1="{x_of(tick):.1f}" y1="{top}" x2="{x_of(tick):.1f}" y2="{top + plot_h}" '
                       f'stroke="#eee"/><text x="{x_of(tick):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                       f'fill="#555">{tick:g}</text>')
    for tick in nice_ticks(y_lo, y_hi):
        if y_lo <= tick <= y_hi:
            out.append(f'<line x1="{left}" y1="{y_of(tick):.1f}" x2="{left + plot_w}" y2="{y_of(tick):.1f}" '
                       f'stroke="#eee"/><text x="{left - 6}" y="{y_of(tick) + 4:.1f}" text-anchor="end" '
                       f'fill="#555">{tick:g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
               f'<text x="{left + plot_w / 2}" y="{top + plot_h + 36}" text-anchor="middle" fill="#222">'
               f'{escape(data.x_label)} (higher is better) →</text>'
               f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" fill="#222" '
               f'transform="rotate(-90 14 {top + plot_h / 2})">{_y_label(data)}</text>')
    by_name = {p.variant: p for p in data.points}
    front = [by_name[n] for n in data.front]
    if len(front) > 1:
        path = " ".join(f"{x_of(p.x):.1f},{y_of(p.y):.1f}" for p in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.5" '
                   f'stroke-dasharray="5 3"><title>Pareto front</title></polyline>')
    placed: list[tuple[float, float]] = []  # label anchors so far, to push overlapping labels apart
    for p in sorted(data.points, key=lambda p: (y_of(p.y), p.x)):
        x, y = x_of(p.x), y_of(p.y)
        label_y = y + 4
        while any(abs(px - x) < 120 and abs(py - label_y) < 13 for px, py in placed):
            label_y += 13
        placed.append((x, label_y))
        fill, radius = ("#d62728", 6) if p.on_front else ("#4e79a7", 4.5)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{fill}" stroke="#fff">'
                   f'<title>{escape(p.variant)}: x={p.x:.3f}, y={p.y:.3f}'
                   f'{" (Pareto front)" if p.on_front else ""}</title></circle>'
                   f'<text x="{x + 8:.1f}" y="{label_y:.1f}" fill="#222">{escape(_clip(p.variant, 190))}</text>')
    return "".join(out) + "</svg>"


def _y_label(data: Scatter) -> str:
    # rotated -90 degrees: text runs bottom to top, so "→" points up, towards high values
    if data.y_better == "higher":
        return f"{escape(data.y_label)} (higher is better) →"
    return f"← {escape(data.y_label)} (lower is better)"


def scale(low: float, high: float, start: float, length: float) -> Callable[[float], float]:
    """Linear map of data [low, high] onto pixels [start, start + length]."""

    def to_pixels(value: float) -> float:
        return start + (value - low) / (high - low) * length

    return to_pixels


def _padded(low: float, high: float) -> tuple[float, float]:
    pad = max((high - low) * 0.08, 0.02)
    return max(0.0, low - pad) if low >= 0 else low - pad, min(1.0, high + pad) if high <= 1 else high + pad


def _open(width: float, height: float, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
            f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" {FONT}>')
