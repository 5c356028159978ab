"""Tables as data (:class:`Table` of :class:`Cell`) and their rendering to Markdown, LaTeX and HTML.

Markdown goes through tabulate (GitHub flavour); LaTeX and HTML use tabulate's raw formats with our own
escaping, so that bold entries survive (``**x**``, ``\\textbf{x}``, ``<b>x</b>``).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from tabulate import tabulate

from ..errors import PinnbenchError
from ..statistics import MISSING

FORMATS = {"md": ".md", "latex": ".tex", "html": ".html"}
"""Table formats and their file extensions."""


@dataclass(frozen=True)
class Cell:
    """One table entry: its plain text, whether it is the row's winner, and the number that decided it."""

    text: str
    bold: bool = False
    value: float | None = None


@dataclass(frozen=True)
class Table:
    """A titled table with a footnote saying what its numbers are."""

    name: str  # file stem, e.g. "comparison_anagram_vs_amstramgram"
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    footnote: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)  # extra lines under the footnote

    def column(self, name: str) -> list[Cell]:
        """The cells of the column called ``name`` (for checks and tests)."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def check_formats(formats: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PinnbenchError(f"unknown report format(s) {', '.join(map(repr, unknown))}; "
                             f"accepted: {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(formats))


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"±": r"$\pm$", "—": "---", "×": r"$\times$", "≤": r"$\le$", "≥": r"$\ge$", "≈": r"$\approx$",
                  "Σ": r"$\Sigma$", "²": r"$^2$", "−": "-", "✓": r"$\checkmark$", "✗": r"$\times$",
                  "u*": r"$u^*$", "·": r"$\cdot$", "†": r"\textdagger{}",
                  "…": r"\ldots{}", "τ": r"$\tau$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    for symbol, replacement in _LATEX_UNICODE.items():
        out = out.replace(symbol, replacement)
    return out


def _markdown_escape(text: str, in_table: bool = True) -> str:
    text = text.replace("*", r"\*")
    return text.replace("|", r"\|") if in_table else text


def _cell(cell: Cell, fmt: str) -> str:
    if fmt == "md":
        text = _markdown_escape(cell.text)
        return f"**{text}**" if cell.bold else text
    if fmt == "latex":
        text = latex_escape(cell.text)
        return rf"\textbf{{{text}}}" if cell.bold else text
    text = html.escape(cell.text)
    return f"<b>{text}</b>" if cell.bold else text


def table_body(table: Table, fmt: str) -> str:
    """The table alone (no title, no footnote) in ``fmt``."""
    rows = [[_cell(c, fmt) for c in row] for row in table.rows]
    if fmt == "md":
        headers = [_markdown_escape(c) for c in table.columns]
        return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    if fmt == "latex":
        headers = [latex_escape(c) for c in table.columns]
        return tabulate(rows, headers=headers, tablefmt="latex_raw", disable_numparse=True)
    if fmt == "html":
        headers = [html.escape(c) for c in table.columns]
        return tabulate(rows, headers=headers, tablefmt="unsafehtml", disable_numparse=True)
    raise PinnbenchError(f"unknown table format {fmt!r}; accepted: {', '.join(FORMATS)}")


def render_table(table: Table, fmt: str) -> str:
    """Title, table and footnote in ``fmt`` ("md", "latex" or "html"), ready to paste or include."""
    notes = [n for n in (table.footnote, *table.notes) if n]
    body = table_body(table, fmt)
    if fmt == "md":
        title = f"**{_markdown_escape(table.title, in_table=False)}**"
        return "\n\n".join([title, body, *(f"*{_markdown_escape(n, in_table=False)}*" for n in notes)]) + "\n"
    if fmt == "latex":
        lines = [r"\begin{table}[ht]", r"\centering", r"\small", rf"\caption{{{latex_escape(table.title)}}}",
                 body, r"\par\footnotesize"]
        lines += [latex_escape(n) + r"\par" for n in notes]
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"
    return "\n".join([f"<h4>{html.escape(table.title)}</h4>", f'<div class="table-wrap">{body}</div>',
                      *[f'<p class="note">{html.escape(n)}</p>' for n in notes]]) + "\n"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Image:
    """A figure: path relative to the page, a caption, and optional alternative files (e.g. the SVG)."""

    path: str
    caption: str
    alternatives: tuple[str, ...] = ()


Block = Heading | Text | Table | Image

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
.table-wrap{max-width:100%;overflow-x:auto}table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;overflow-wrap:anywhere}th{background:#eee}
p.note{font-size:.85em;color:#444;max-width:1100px}
img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:.85em;color:#444}"""
"""Wide tables fit the page: cells wrap, even inside a long word, and a table that still cannot fit scrolls
inside its own ``table-wrap`` box instead of widening the page."""


def render_page(title: str, blocks: list[Block], fmt: str) -> str:
    """A whole page (README.md with ``fmt="md"``, index.html with ``fmt="html"``) from blocks in order."""
    if fmt not in ("md", "html"):
        raise PinnbenchError(f"pages are written as md or html, not {fmt!r}")
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}" if fmt == "md"
                         else f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            parts.append(block.text if fmt == "md" else f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(render_table(block, fmt).rstrip())
        elif isinstance(block, Image):
            if fmt == "md":
                links = " ".join(f"[{_file_kind(a)}]({a})" for a in block.alternatives)
                parts.append(f"![{block.caption}]({block.path})\n\n*{block.caption}* {links}".rstrip())
            else:
                links = " ".join(f'<a href="{html.escape(a)}">{html.escape(_file_kind(a))}</a>'
                                 for a in block.alternatives)
                parts.append(f'<figure><img src="{html.escape(block.path)}" alt="{html.escape(block.caption)}">'
                             f"<figcaption>{html.escape(block.caption)} {links}</figcaption></figure>")
    if fmt == "md":
        return "\n\n".join(parts) + "\n"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def _file_kind(path: str) -> str:
    """'SVG' for 'figures/x.svg'."""
    return path.rsplit(".", 1)[-1].upper()
