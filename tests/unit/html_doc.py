"""A parsed HTML document for tests (html.parser, no regex on whole documents):
headings, tables as rows of cell texts, list items, the <html lang>, and every
<th> with its scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class HtmlDoc:
    lang: str | None = None
    title: str = ""
    headings: list[tuple[str, str]] = field(default_factory=list)  # (tag, text)
    tables: list[list[list[str]]] = field(default_factory=list)  # rows of cell texts
    captions: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # <li> texts
    paragraphs: list[str] = field(default_factory=list)
    header_scopes: list[str | None] = field(default_factory=list)  # each <th>'s scope
    text: str = ""  # all text, for "no raw key anywhere" checks

    def table_with(self, header: str) -> list[list[str]]:
        """The first table whose first row contains `header`."""
        for table in self.tables:
            if table and header in table[0]:
                return table
        raise AssertionError(f"no table with the column {header!r}: {self.tables}")

    def heading_texts(self) -> list[str]:
        return [text for _, text in self.headings]


class _Parser(HTMLParser):
    CAPTURED = ("title", "h1", "h2", "h3", "li", "p", "caption", "td", "th")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = HtmlDoc()
        self._stack: list[tuple[str, list[str]]] = []  # open captured elements
        self._row: list[str] | None = None
        self._all: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.doc.lang = dict(attrs).get("lang")
        elif tag == "table":
            self.doc.tables.append([])
        elif tag == "tr":
            self._row = []
        if tag == "th":
            self.doc.header_scopes.append(dict(attrs).get("scope"))
        if tag in self.CAPTURED:
            self._stack.append((tag, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.doc.tables[-1].append(self._row)
            self._row = None
        if not self._stack or self._stack[-1][0] != tag:
            return
        _, parts = self._stack.pop()
        text = " ".join("".join(parts).split())
        if tag in ("td", "th") and self._row is not None:
            self._row.append(text)
        elif tag == "title":
            self.doc.title = text
        elif tag in ("h1", "h2", "h3"):
            self.doc.headings.append((tag, text))
        elif tag == "li":
            self.doc.items.append(text)
        elif tag == "p":
            self.doc.paragraphs.append(text)
        elif tag == "caption":
            self.doc.captions.append(text)

    def handle_data(self, data: str) -> None:
        self._all.append(data)
        for _, parts in self._stack:
            parts.append(data)


def parse_html(page: str) -> HtmlDoc:
    parser = _Parser()
    parser.feed(page)
    parser.close()
    parser.doc.text = " ".join("".join(parser._all).split())
    return parser.doc
