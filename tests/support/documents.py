"""Reading back what a page or an export shows: its visible text, whitespace folded, for round-trip checks."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from pypdf import PdfReader


class _VisibleText(HTMLParser):
    """The text a reader sees: no markup, no script or style, each tag a word break."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.hidden += tag in ("script", "style", "title")
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style", "title")
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def folded(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def page_text(html: str) -> str:
    """The visible text of an HTML page, whitespace folded to single spaces."""
    parser = _VisibleText()
    parser.feed(html)
    return folded("".join(parser.parts))


def section_text(html: str, section_id: str) -> str:
    """The visible text of the element with id ``section_id`` (a documentation section's panel)."""
    start = html.index(f'id="{section_id}"')
    end = html.find('<div class="panel"', start + 1)
    return page_text(html[start : end if end != -1 else len(html)].split(">", 1)[1])


def pdf_text(content: bytes) -> str:
    """Every page's text of a PDF, whitespace folded (a value wrapped onto two lines reads as one)."""
    reader = PdfReader(io.BytesIO(content))
    return folded(" ".join(page.extract_text() or "" for page in reader.pages))
