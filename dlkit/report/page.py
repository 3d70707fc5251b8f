"""What a report page is made of (sections of text, tables and figures) and how it becomes HTML.

A page is one self-contained HTML file with its PNG figures beside it: inline CSS, no scripts, no
fonts or links to fetch, so it opens from a copied folder or an offline machine.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from dlkit.atomic import atomic_write_text


@dataclass
class Table:
    """Rows of cells under `columns`; rows whose index is in `marked` are highlighted (differences)."""

    columns: list[str]
    rows: list[list]
    marked: set[int] = field(default_factory=set)
    caption: str = ""


@dataclass
class Figure:
    """A PNG in the report folder (`file` relative to the page) and what it shows."""

    file: str
    caption: str = ""


@dataclass
class Link:
    text: str
    href: str


@dataclass
class Section:
    """One block of a page. `alerts` are shown as warnings (unhealthy gradients, a lost verdict);
    `good` ones as a success line; `code` as preformatted text (the resolved config)."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    good: list[str] = field(default_factory=list)
    code: str = ""
    links: list[Link] = field(default_factory=list)
    collapsed: bool = False  # long material (the config) starts folded


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;
background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d1de;font-size:14px}
nav{padding:8px 32px;background:#e9edf3;font-size:14px}nav a{margin-right:14px;color:#0b4f8a}
main{padding:8px 32px 48px;max-width:1280px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:12px 20px;margin:16px 0}
h2{font-size:18px;margin:6px 0 10px}p{line-height:1.45;margin:6px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px}caption{text-align:left;color:#555;padding:4px 0}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.marked td{background:#fff3c4}
.alert{background:#fdecea;border-left:4px solid #c0392b;padding:6px 10px;margin:6px 0}
.good{background:#e7f5ec;border-left:4px solid #1e8449;padding:6px 10px;margin:6px 0}
figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;color:#444;max-width:640px}
pre{background:#f4f6f8;padding:10px;overflow:auto;font-size:12px}
"""


def _cell(value) -> tuple[str, bool]:
    """(text, is it a number): floats to 4 significant figures, None as a dash."""
    if value is None:
        return "-", False
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, float):
        return (f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"), True
    if isinstance(value, int):
        return str(value), True
    return str(value), False


def _table(t: Table) -> str:
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in t.columns) + "</tr>")
    for i, row in enumerate(t.rows):
        cells = []
        for value in row:
            text, num = _cell(value)
            cells.append(f"<td{' class=num' if num else ''}>{html.escape(text)}</td>")
        out.append(f"<tr{' class=marked' if i in t.marked else ''}>{''.join(cells)}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _section(s: Section, anchor: str) -> str:
    parts = [f'<section id="{anchor}"><h2>{html.escape(s.title)}</h2>']
    parts += [f'<div class="good">{html.escape(g)}</div>' for g in s.good]
    parts += [f'<div class="alert">{html.escape(a)}</div>' for a in s.alerts]
    parts += [f"<p>{html.escape(t)}</p>" for t in s.text]
    if s.links:
        items = "".join(
            f'<li><a href="{html.escape(k.href)}">{html.escape(k.text)}</a></li>' for k in s.links
        )
        parts.append(f"<ul>{items}</ul>")
    body = [_table(t) for t in s.tables]
    body += [
        f'<figure><img src="{html.escape(f.file)}" alt="{html.escape(f.caption or f.file)}">'
        f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
        for f in s.figures
    ]
    if s.code:
        body.append(f"<pre>{html.escape(s.code)}</pre>")
    if s.collapsed and body:
        body = ["<details><summary>show</summary>", *body, "</details>"]
    parts += body
    parts.append("</section>")
    return "\n".join(parts)


def write_page(path: Path, title: str, subtitle: str, sections: list[Section]) -> Path:
    """Render `sections` into `path` (written atomically); the path."""
    anchors = [f"s{i}" for i in range(len(sections))]
    nav = " ".join(
        f'<a href="#{a}">{html.escape(s.title)}</a>' for a, s in zip(anchors, sections, strict=True)
    )
    body = "\n".join(_section(s, a) for s, a in zip(sections, anchors, strict=True))
    page = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>\n{body}\n</main></body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return path
