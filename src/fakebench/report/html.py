"""One self-contained HTML page: every figure embedded as a base64 PNG, CSS and a few lines of
plain JS inline (sortable tables, a section menu), no external URL anywhere, so the file opens
offline and makes no network request.

The page is a list of :class:`Section` s, each a list of blocks (:class:`Text`,
:class:`Table`, :class:`Figure`, :class:`Gallery`, :class:`Pre`, :class:`Link`); any report
(evaluate, transfer, robustness, compare) builds the blocks it has data for and calls
:func:`write_page`. :func:`table_from_rows` turns any list of dicts into a table, so extra
result tables render without code of their own.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a table cell: a value (formatted by :func:`fmt_cell`) or ``(shown text, sort key)``
Cell = Any


def fmt_cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(t, (int, float)) for t in v):
        return f"[{fmt_cell(float(v[0]))}, {fmt_cell(float(v[1]))}]"
    return str(v)


@dataclass
class Text:
    text: str
    raw_html: bool = False  # only for markup fakebench writes itself, never for data


@dataclass
class Pre:
    text: str


@dataclass
class Link:
    href: str  # a relative path next to the report
    text: str


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    caption: str = ""
    tips: Sequence[str] = ()  # hover text per header
    css_id: str = ""


@dataclass
class Figure:
    png: bytes | Path
    caption: str = ""
    alt: str = ""


@dataclass
class GalleryItem:
    title: str
    images: Sequence[tuple[str, bytes | Path]]  # (caption, PNG)
    lines: Sequence[str] = ()


@dataclass
class Gallery:
    items: Sequence[GalleryItem]
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)
    sid: str = ""


def table_from_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, caption: str = "",
                    css_id: str = "") -> Table:
    """Any list of dicts as a table (columns: ``columns`` or every key, in first-seen order)."""
    cols = list(columns or dict.fromkeys(k for r in rows for k in r))
    return Table(cols, [[r.get(c) for c in cols] for r in rows], caption=caption, css_id=css_id)


def data_uri(png: bytes | Path) -> str:
    data = Path(png).read_bytes() if isinstance(png, Path) else png
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _sort_key(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (int, float)):
        return "" if isinstance(v, float) and not math.isfinite(v) else repr(float(v))
    if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[1], (int, float)) and not isinstance(v[0], (int, float)):
        return _sort_key(v[1])
    return ""


def _cell(v: Cell) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], (int, float)):
        shown = v[0]
    else:
        shown = fmt_cell(v)
    key = _sort_key(v)
    attr = f' data-sort="{_e(key)}"' if key else ""
    return f"<td{attr}>{_e(shown)}</td>"


def _table(t: Table) -> str:
    tips = list(t.tips) + [""] * (len(t.headers) - len(t.tips))
    head = "".join(f'<th title="{_e(tip)}">{_e(h)}</th>' for h, tip in zip(t.headers, tips))
    body = "\n".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in t.rows)
    idattr = f' id="{_e(t.css_id)}"' if t.css_id else ""
    cap = f'<p class="cap">{_e(t.caption)}</p>' if t.caption else ""
    return (f'{cap}<div class="scroll"><table class="sortable"{idattr}><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def _img(png: bytes | Path, alt: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{_e(alt)}" src="{data_uri(png)}">'


def _block(b: Any) -> str:
    if isinstance(b, Text):
        return b.text if b.raw_html else f"<p>{_e(b.text)}</p>"
    if isinstance(b, Pre):
        return f"<pre>{_e(b.text)}</pre>"
    if isinstance(b, Link):
        return f'<p><a href="{_e(b.href)}">{_e(b.text)}</a></p>'
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        cap = f"<figcaption>{_e(b.caption)}</figcaption>" if b.caption else ""
        return f"<figure>{_img(b.png, b.alt or b.caption)}{cap}</figure>"
    if isinstance(b, Gallery):
        cards = []
        for it in b.items:
            imgs = "".join(f'<figure class="thumb">{_img(p, f"{it.title}: {c}", "pix")}<figcaption>{_e(c)}'
                           "</figcaption></figure>" for c, p in it.images)
            lines = "".join(f"<div>{_e(line)}</div>" for line in it.lines)
            cards.append(f'<div class="card"><div class="ct">{_e(it.title)}</div><div class="row">{imgs}</div>'
                         f'<div class="meta">{lines}</div></div>')
        cap = f"<p>{_e(b.caption)}</p>" if b.caption else ""
        return cap + '<div class="gallery">' + "".join(cards) + "</div>"
    raise TypeError(f"unknown report block {type(b).__name__}")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1b1f24;background:#fafafa}
header{background:#23313f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header .sub{opacity:.8;font-size:13px;margin-top:4px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;z-index:2}
nav a{margin-right:14px;font-size:13px;color:#235;text-decoration:none}nav a:hover{text-decoration:underline}
main{padding:8px 24px 40px}section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:14px 0;
padding:6px 16px 12px}h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
.cap{font-size:12px;color:#555;margin:4px 0;max-width:1100px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f0f3f6;cursor:pointer;user-select:none;position:sticky;top:0}th.asc:after{content:" \\25B2"}
th.desc:after{content:" \\25BC"}td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}
tr:nth-child(even) td{background:#fafbfc}figure{margin:10px 0}figure img{max-width:100%}
figcaption{font-size:12px;color:#555}.gallery{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:5px;padding:6px;background:#fcfcfc}.ct{font-size:12px;font-weight:600}
.row{display:flex;gap:6px}.thumb{margin:4px 0}.thumb figcaption{text-align:center}
img.pix{width:128px;height:128px;image-rendering:pixelated;object-fit:contain;background:#eee}
.meta{font-size:11.5px;color:#333;font-family:ui-monospace,monospace}pre{background:#f4f4f4;padding:8px;
overflow-x:auto;font-size:12px}.note{color:#8a4b00}
"""

JS = """
(function(){
function key(td){var s=td.getAttribute('data-sort');if(s!==null&&s!=='')return[0,parseFloat(s)];
var t=td.textContent.trim();if(t==='-'||t==='')return[2,0];return[1,t.toLowerCase()];}
function cmp(a,b){if(a[0]!==b[0])return a[0]-b[0];return a[1]<b[1]?-1:a[1]>b[1]?1:0;}
document.querySelectorAll('table.sortable').forEach(function(tb){
 tb.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var asc=!th.classList.contains('asc');tb.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
  th.classList.add(asc?'asc':'desc');var body=tb.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(r1,r2){var c=cmp(key(r1.cells[i]),key(r2.cells[i]));return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r);});});});});
function check(){var imgs=document.images,ok=0;for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;}
var res=(window.performance&&performance.getEntriesByType)?performance.getEntriesByType('resource').length:-1;
var b=document.body;b.setAttribute('data-images',String(imgs.length));b.setAttribute('data-images-loaded',String(ok));
b.setAttribute('data-resource-requests',String(res));}
if(document.readyState==='complete'){check();}else{window.addEventListener('load',check);}
})();
"""


def render_page(title: str, sections: Iterable[Section], subtitle: str = "") -> str:
    """The whole page as one string (no external reference)."""
    secs = [s for s in sections if s.blocks]
    for i, s in enumerate(secs):
        s.sid = s.sid or f"s{i}"
    nav = "".join(f'<a href="#{_e(s.sid)}">{_e(s.title)}</a>' for s in secs)
    body = "\n".join(f'<section id="{_e(s.sid)}"><h2>{_e(s.title)}</h2>\n' + "\n".join(_block(b) for b in s.blocks)
                     + "</section>" for s in secs)
    sub = f'<div class="sub">{_e(subtitle)}</div>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>"
            f"<header><h1>{_e(title)}</h1>{sub}</header><nav>{nav}</nav><main>\n{body}\n</main>"
            f"<script>{JS}</script></body></html>\n")


def write_page(path: str | Path, title: str, sections: Iterable[Section], subtitle: str = "") -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    tmp.write_text(render_page(title, sections, subtitle), encoding="utf-8")
    tmp.replace(p)
    return p
