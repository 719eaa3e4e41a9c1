"""Small line and paired-value charts as inline SVG, generated server-side with every label escaped (no JS, no images)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

WIDTH, HEIGHT, PAD = 560, 200, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def line_chart(title: str, labels: list[str], series: dict[str, list[float | None]],
               threshold: float | None = None) -> str:
    """An SVG line chart of ``series`` (name -> values, one per label); ``None`` values are gaps."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if threshold is not None:
        values.append(threshold)
    if not labels or not values:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    y, parts = _frame(title, values)

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / max(len(labels) - 1, 1))

    for i, label in enumerate(labels):
        parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - PAD + 14}" font-size="9" text-anchor="middle">'
                     f'{escape(str(label))}</text>')
    if threshold is not None:
        parts.append(f'<line x1="{PAD}" y1="{y(threshold):.1f}" x2="{WIDTH - PAD}" y2="{y(threshold):.1f}" '
                     f'stroke="#d62728" stroke-dasharray="4 3"><title>threshold {_fmt(threshold)}</title></line>')
    for n, (name, vs) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points)
        parts.append(f'<text x="{PAD + 130 * n}" y="32" font-size="10" fill="{colour}">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str, values: list[float]) -> tuple[Callable[[float], float], list[str]]:
    """(value -> y coordinate, the chart's opening parts: title, axis, lowest and highest value)."""
    low, high = min(values), max(values)
    if high == low:  # one value (a first model): a band of 10% around it, not +-1 on an r2 of 0.9
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad

    def y(v: float) -> float:
        return HEIGHT - PAD + (PAD * 2 - HEIGHT) * (v - low) / (high - low)

    return y, [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{HEIGHT}" '
               f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{escape(title)}</title>',
               f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
               f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
               f'<text x="2" y="{y(high) + 4:.1f}" font-size="10">{_fmt(high)}</text>',
               f'<text x="2" y="{y(low) + 4:.1f}" font-size="10">{_fmt(low)}</text>']


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def paired_chart(title: str, groups: list[tuple[str, dict[str, tuple[float, float | None, float | None]]]]) -> str:
    """An SVG of side-by-side values with interval whiskers, one group per label and no line between groups.

    ``groups`` holds (label, {series name: (value, low, high)}): the values of one group were measured
    on the same rows, those of different groups were not, so nothing joins them.
    """
    values = [v for _, members in groups for point in members.values() for v in point if v is not None]
    if not groups or not values:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    names = list(dict.fromkeys(name for _, members in groups for name in members))
    y, parts = _frame(title, values)
    step = (WIDTH - 2 * PAD) / len(groups)
    for g, (label, members) in enumerate(groups):
        centre = PAD + step * (g + 0.5)
        parts.append(f'<text x="{centre:.1f}" y="{HEIGHT - PAD + 14}" font-size="9" text-anchor="middle">'
                     f'{escape(str(label))}</text>')
        for n, name in enumerate(names):
            if name not in members:
                continue
            value, lo, hi = members[name]
            colour, cx = COLOURS[n % len(COLOURS)], centre + 10 * (n - (len(names) - 1) / 2)
            if lo is not None and hi is not None:
                parts.append(f'<line x1="{cx:.1f}" y1="{y(lo):.1f}" x2="{cx:.1f}" y2="{y(hi):.1f}" '
                             f'stroke="{colour}" stroke-width="2"/>')
            parts.append(f'<circle cx="{cx:.1f}" cy="{y(value):.1f}" r="4" fill="{colour}"><title>'
                         f'{escape(name)} {_fmt(value)}</title></circle>')
    parts.extend(f'<text x="{PAD + 130 * n}" y="32" font-size="10" fill="{COLOURS[n % len(COLOURS)]}">'
                 f'{escape(name)}</text>' for n, name in enumerate(names))
    parts.append("</svg>")
    return "".join(parts)


KIND_COLOURS = {"source": "#fde8e8", "raw": "#fdf3e1", "validated": "#e8f6e8", "training set": "#e6effb",
                "holdout set": "#e6effb", "model version": "#efe6fb", "predictions": "#e1f5f5",
                "drift report": "#fbe6f3"}


def lineage_chart(graph: dict) -> str:
    """The lineage graph of ``core.lineage.lineage_graph`` as a lineage tool draws it: datasets (boxes,
    coloured by kind) and jobs (rounded, dark) left to right, each job between what it read and wrote."""
    from mlops_pack.core.lineage import layout

    succ, columns = layout(graph)
    box_w, box_h, gap_x, gap_y = 150, 34, 40, 14
    height = PAD + max(len(c) for c in columns.values()) * (box_h + gap_y) + PAD
    width = PAD * 2 + len(columns) * (box_w + gap_x)
    at = {node: (PAD + col * (box_w + gap_x), PAD + row * (box_h + gap_y))
          for col, members in enumerate(columns.values()) for row, node in enumerate(members)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for node, targets in succ.items():
        for target in targets:
            (x1, y1), (x2, y2) = at[node], at[target]
            dashed = ' stroke-dasharray="4 3"' if node[0] == target[0] == "d" else ""
            parts.append(f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" '
                         f'stroke="#777"{dashed} marker-end="url(#arrow)"/>')
    for node, (x, y) in at.items():
        if node[0] == "j":
            label, sub, fill, ink, radius = node[1].split(".", 1)[-1], node[1].split(".", 1)[0], "#37474f", "white", 12
            full = node[1]
        else:
            namespace, name = node[1]
            kind = graph["datasets"].get(node[1], "dataset")
            label, sub = kind, "/".join(name.rstrip("/").split("/")[-2:])
            fill, ink, radius = KIND_COLOURS.get(kind, "#eeeeee"), "#222", 2
            full = f"{namespace}: {name}"  # as lineage tools name a dataset: its namespace, then its name
        parts.append(f'<g><title>{escape(full)}</title><rect x="{x}" y="{y}" width="{box_w}" '
                     f'height="{box_h}" rx="{radius}" fill="{fill}" stroke="#555"/>'
                     f'<text x="{x + 6}" y="{y + 14}" font-size="11" fill="{ink}">{escape(label[:24])}</text>'
                     f'<text x="{x + 6}" y="{y + 27}" font-size="9" fill="{ink}">{escape(sub[-28:])}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)
