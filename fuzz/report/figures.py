"""How ``python -m fuzz report`` looks: each section's figure, drawn from its data
(``fuzz.report.command.build``) with matplotlib's Agg canvas and encoded as PNG, the HTML page that
embeds them, and the same tables as text.  matplotlib is the ``[report]`` extra, imported
here only, inside the functions that draw."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from typing import Any

from fuzz.campaign.features import KINDS
from fuzz.report.sections import Corpus, Section, Table

__all__ = ["figure", "png", "render_html", "render_text"]

BLUE = "#4878a8"
WIDTH = 11.0  # inches; at 100 dpi the page's 1,100 pixels
VERDICT_COLORS = {"pass": "#4c9a2a", "skipped": "#b8b8b8", "benign": "#7fb3d5",
                  "failed": "#c0392b", "not run": "#e0a030", "not sampled": "#e8e8e8",
                  "off": "#f4f4f4"}


def _count_axis(axis: Any, label: str) -> None:
    """Whole-number ticks for a count."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_label_text(label)


def _new(height: float, ncols: int = 1, nrows: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _lines(ax: Any, series: dict[str, list[dict[str, float]]], key: str) -> None:
    for name, rows in series.items():
        ax.plot([r["elapsed_s"] for r in rows], [r.get(key, 0) for r in rows],
                marker="o" if len(rows) < 30 else None, markersize=3, label=name)
    ax.set_xlabel("elapsed s")
    ax.grid(alpha=0.3)


def _coverage(plot: dict[str, Any]) -> Any:
    fig, axes = _new(6.5, ncols=3, nrows=2)
    for ax, kind in zip(axes.flat, KINDS, strict=True):
        _lines(ax, plot["series"], kind)
        _count_axis(ax.yaxis, "")
        ax.set_title(kind.replace("_", " "), fontsize=11)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center",
               ncols=len(plot["series"]))
    return fig


def _records(plot: dict[str, Any]) -> Any:
    fig, axes = _new(3.2)
    _lines(axes[0, 0], plot["series"], "records")
    _count_axis(axes[0, 0].yaxis, "records in the corpus")
    axes[0, 0].legend()
    return fig


def _timings(plot: dict[str, Any]) -> Any:
    stages = plot["stages"]
    fig, axes = _new(4.2)
    ax = axes[0, 0]
    ax.boxplot([[max(s, 1e-6) * 1000 for s in v] for v in stages.values()],
               flierprops={"markersize": 3})
    ax.set_xticks(range(1, len(stages) + 1), list(stages), rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("ms per record (log scale)")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _sizes(plot: dict[str, Any]) -> Any:
    fig, axes = _new(3.2)
    ax = axes[0, 0]
    bins = plot["bins"]
    ax.bar([label for label, _ in bins], [n for _, n in bins], color=BLUE)
    ax.set_xlabel("statements in the entry function")
    _count_axis(ax.yaxis, "records")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _bars(plot: dict[str, Any]) -> Any:
    from matplotlib.ticker import PercentFormatter

    bars = plot["bars"]
    fig, axes = _new(0.2 * len(bars) + 1.0)
    ax = axes[0, 0]
    ax.barh([k for k, _ in bars], [v for _, v in bars], color=BLUE)
    ax.invert_yaxis()
    ax.margins(y=0.01)
    ax.tick_params(axis="y", labelsize=8)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(plot["xlabel"])
    ax.grid(alpha=0.3, axis="x")
    return fig


def _ranked(plot: dict[str, Any]) -> Any:
    most, least = plot["most"], plot["least"]
    fig, axes = _new(0.24 * max(len(most), len(least), 1) + 1.2, ncols=2)
    for ax, items, title in ((axes[0, 0], most, "most common"),
                             (axes[0, 1], least, "least common")):
        ax.barh([k for k, _ in items], [n for _, n in items], color=BLUE)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(title, fontsize=11)
        _count_axis(ax.xaxis, plot["xlabel"])
        ax.grid(alpha=0.3, axis="x")
        if not items:
            ax.set_axis_off()
    return fig


def _oracles(plot: dict[str, Any]) -> Any:
    oracles, verdicts = plot["oracles"], plot["verdicts"]
    fig, axes = _new(0.35 * len(oracles) + 1.4)
    ax = axes[0, 0]
    left = [0] * len(oracles)
    for verdict in verdicts:
        counts = [c.get(verdict, 0) for c in oracles.values()]
        ax.barh(list(oracles), counts, left=left, label=verdict, edgecolor="#999",
                linewidth=0.5, color=VERDICT_COLORS.get(verdict))
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.invert_yaxis()
    _count_axis(ax.xaxis, "programs")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=9)
    return fig


DRAW: dict[str, Callable[[dict[str, Any]], Any]] = {
    "coverage": _coverage, "records": _records, "timings": _timings, "sizes": _sizes,
    "categories": _bars, "families": _bars, "stablehlo_ops": _ranked, "passes": _ranked,
    "oracles": _oracles}


def figure(name: str, plot: dict[str, Any]) -> Any:
    """The matplotlib ``Figure`` of section ``name`` from its data."""
    return DRAW[name](plot)


def png(name: str, plot: dict[str, Any]) -> bytes:
    """Section ``name``'s figure as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figure(name, plot)
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


_NOT_DIGITS = str.maketrans("", "", "%-/")  # 12.5%, 1-9, 77/105


def _numeric(cell: str) -> bool:
    """A number, a share, a range, a ratio, or "-" (none): aligned right."""
    return cell == "-" or cell.replace(".", "", 1).translate(_NOT_DIGITS).isdigit()


def _text_table(t: Table) -> list[str]:
    widths = [max(len(r[i]) for r in (t.header, *t.rows)) for i in range(len(t.header))]
    return ["  " + "  ".join(c.rjust(w) if _numeric(c) and i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in (t.header, *t.rows)]


def render_text(main: Corpus, sections: Sequence[Section]) -> str:
    """The same tables for a terminal: a ``[table id]`` line heads each."""
    lines = [f"jaxsmith report: {main.path}"]
    for s in sections:
        lines += ["", f"== {s.title} ==", *s.notes]
        for t in s.tables:
            if t.rows:
                lines += [f"[{t.id}] {t.caption}".rstrip(), *_text_table(t)]
    return "\n".join(lines)


_CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
img{max-width:100%}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}td.n{text-align:right;
font-variant-numeric:tabular-nums}.note{color:#555}nav a{margin-right:1em}"""


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(
        f"<td class=n>{html.escape(c)}</td>" if _numeric(c) else f"<td>{html.escape(c)}</td>"
        for c in row) + "</tr>" for row in t.rows)
    caption = f"<caption>{html.escape(t.caption)}</caption>" if t.caption else ""
    table = f'<table id="tab-{html.escape(t.id)}">{caption}<tr>{head}</tr>{body}</table>'
    return table if not t.fold else \
        f"<details><summary>{html.escape(t.caption)}: {len(t.rows)} rows</summary>" \
        f"{table}</details>"


def render_html(main: Corpus, sections: Sequence[Section], images: dict[str, bytes]) -> str:
    """The page: ``images`` are the PNGs of the sections with a figure, by section id."""
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>jaxsmith report: "
             f"{html.escape(main.name)}</title><style>{_CSS}</style></head><body>"
             f"<h1>jaxsmith report: {html.escape(str(main.path))}</h1><nav>"
             + "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
             + "</nav>"]
    for s in sections:
        parts.append(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>')
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in s.notes]
        if s.id in images:
            data = base64.b64encode(images[s.id]).decode("ascii")
            parts.append(f'<img id="fig-{s.id}" alt="{html.escape(s.title)}" '
                         f'src="data:image/png;base64,{data}">')
        parts += [_html_table(t) for t in s.tables if t.rows]
        parts.append("</section>")
    return "\n".join(parts) + "\n</body></html>\n"
