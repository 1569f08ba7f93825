"""HTML as documentation sites publish it: main content only, with its outline.

Page chrome (navigation bars, headers, footers, breadcrumbs, tables of contents, "Prev / Next"
links) is removed; note/tip/warning boxes stay inside the section they sit in; definition-list
entries (one per parameter on reference pages) become sub-sections named by their term; table
rows are rendered as `header: value` lines so each row can be read alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.services.kb.text import (
    Block,
    Outline,
    ParsedDocument,
    check_text_size,
    decode_text,
    split_long_lines,
)

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

_DROP_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "form", "button")
_CHROME_TAGS = ("nav", "footer", "menu")
_CHROME_ROLES = {
    "navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar",
    "doc-toc",
}  # fmt: skip
# Class or id tokens that documentation generators (Sphinx, DocBook, MkDocs, Read the Docs,
# Docusaurus, MediaWiki) give to page chrome.
_CHROME_NAMES = {
    "nav", "navbar", "navigation", "navheader", "navfooter", "breadcrumb", "breadcrumbs",
    "toc", "toctree-wrapper", "table-of-contents", "tableofcontents", "sidebar", "sphinxsidebar",
    "sphinxsidebarwrapper", "related", "footer", "header", "site-header", "site-footer",
    "page-header", "page-footer", "headerlink", "prev-next", "prevnext", "pager", "pagination",
    "skip-link", "skip-to-content", "edit-link", "edit-this-page", "rst-footer-buttons",
    "wy-nav-side", "wy-nav-top", "md-sidebar", "md-header", "md-footer", "md-tabs",
    "mw-navigation", "printfooter", "catlinks", "localtoc", "globaltoc", "menu", "topbar",
    "copyright", "feedback", "theme-doc-toc-mobile", "theme-doc-breadcrumbs",
}  # fmt: skip
_MAIN_SELECTORS = (
    "[role=main]", "main", "article", "div.body", "div.document", "div.rst-content",
    "div.md-content", "div#content", "div.content", "div#main", "div.main",
)  # fmt: skip
_ADMONITIONS = {
    "admonition", "note", "tip", "hint", "warning", "caution", "important", "danger",
    "attention", "error", "seealso", "callout", "notice", "alert", "info",
}  # fmt: skip
_NAV_WORDS = {"prev", "previous", "next", "up", "home", "top", "index", "contents", "back"}
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "blockquote", "figure", "figcaption",
    "caption", "header", "aside", "ul", "ol", "address", "details", "summary", "center",
}  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SITE_SUFFIX = re.compile(r"\s+(?:[\u2014\u2013|\u00b7]|-{1,2})\s+.*$")


def _tokens(tag: Tag) -> set[str]:
    classes = tag.get("class")
    names: set[str] = set()
    if isinstance(classes, str):
        names.add(classes.lower())
    elif classes:
        names.update(str(name).lower() for name in classes)
    identifier = tag.get("id")
    if isinstance(identifier, str):
        names.add(identifier.lower())
    return names


def _is_chrome(tag: Tag) -> bool:
    if tag.name in _CHROME_TAGS:
        return True
    role = tag.get("role")
    if isinstance(role, str) and role.lower() in _CHROME_ROLES:
        return True
    names = _tokens(tag)
    if names & _CHROME_NAMES:
        return True
    # Sphinx's local table of contents: <div class="contents topic">.
    if "contents" in names and ("topic" in names or tag.name in ("div", "nav", "section")):
        return True
    if tag.name in ("div", "p", "table", "ul", "td"):
        words = re.findall(r"\w+", tag.get_text(" ").lower())
        # "Prev  Up  Home  Next" and the like: short blocks made of navigation words.
        if 0 < len(words) <= 12 and sum(word in _NAV_WORDS for word in words) * 2 >= len(words):
            return bool(tag.find("a"))
    return False


def _is_admonition(tag: Tag) -> bool:
    return tag.name in ("div", "aside", "section", "p") and bool(_tokens(tag) & _ADMONITIONS)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _main_content(soup: BeautifulSoup) -> Tag:
    for selector in _MAIN_SELECTORS:
        found = soup.select_one(selector)
        if found is not None and found.get_text(strip=True):
            return found
    return soup.body or soup


@dataclass
class _Walker:
    """Turns the cleaned tree into blocks, tracking the outline and the inline text buffer."""

    outline: Outline = field(default_factory=Outline)
    blocks: list[Block] = field(default_factory=list)
    buffer: list[str] = field(default_factory=list)
    terms: tuple[str, ...] = ()

    @property
    def path(self) -> tuple[str, ...]:
        return self.outline.path + self.terms

    def flush(self) -> None:
        text = "".join(self.buffer)
        self.buffer.clear()
        text = re.sub(r"[ \t\r\f\v]+", " ", text)
        text = re.sub(r" *\n *", "\n", text).strip()
        if text:
            self.blocks.append(Block(text, section=_last(self.path), path=self.path))

    def walk(self, node: Tag, *, in_admonition: bool = False) -> None:
        from bs4.element import NavigableString, Tag

        for child in list(node.children):
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not comments, CDATA or doctypes
                    self.buffer.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADINGS:
                text = _clean(child.get_text(" "))
                if not text:
                    continue
                self.flush()
                if in_admonition:
                    # A box's own heading ("Note", "Tip") labels the box, not a section.
                    self.buffer.append(text + "\n")
                    continue
                self.terms = ()
                self.outline.heading(_HEADINGS[name], text)
                self.blocks.append(
                    Block(text, section=_last(self.path), heading=True, path=self.path)
                )
            elif name == "table":
                self.flush()
                self.table(child)
            elif name == "dl":
                self.flush()
                self.definitions(child, in_admonition=in_admonition)
            elif name == "pre":
                self.flush()
                text = child.get_text().strip("\n")
                if text.strip():
                    self.blocks.append(Block(text, section=_last(self.path), path=self.path))
            elif name == "br":
                self.buffer.append("\n")
            elif name == "hr":
                self.flush()
            elif name in _BLOCK_TAGS or name in ("dt", "dd", "tr", "td", "th"):
                self.flush()
                self.walk(child, in_admonition=in_admonition or _is_admonition(child))
                self.flush()
            else:
                self.walk(child, in_admonition=in_admonition)

    def definitions(self, dl: Tag, *, in_admonition: bool) -> None:
        """Each <dt> term starts a sub-section holding the <dd> that follows it."""
        outer = self.terms
        for item in dl.find_all(["dt", "dd"]):
            if item.find_parent("dl") is not dl:
                continue  # a nested list is read with its own entry
            if item.name == "dt":
                term = _clean(item.get_text(" "))
                if term:
                    self.flush()
                    self.terms = (*outer, term[:200])
                    self.blocks.append(
                        Block(term, section=_last(self.path), heading=True, path=self.path)
                    )
            else:
                self.walk(item, in_admonition=in_admonition)
                self.flush()
        self.terms = outer

    def table(self, table: Tag) -> None:
        """One block per row, each cell prefixed by its column header when the table has one."""
        rows: list[list[str]] = []
        header: list[str] | None = None
        for row in table.find_all("tr"):
            if row.find_parent("table") is not table:
                continue  # a nested table's rows are read with their own table
            cells = row.find_all(["td", "th"], recursive=False)
            values = [_clean(cell.get_text(" ")) for cell in cells]
            if not any(values):
                continue
            if header is None and not rows and all(cell.name == "th" for cell in cells):
                header = values
                continue
            rows.append(values)
        caption = table.find("caption")
        if caption is not None and _clean(caption.get_text(" ")):
            self.blocks.append(
                Block(_clean(caption.get_text(" ")), section=_last(self.path), path=self.path)
            )
        for values in rows:
            text = render_row(header, values)
            if text:
                self.blocks.append(Block(text, section=_last(self.path), path=self.path))


def render_row(header: list[str] | None, values: list[str]) -> str:
    """A table row as `header: value` lines (or cells joined by ` | ` without a header)."""
    if header and len(header) == len(values):
        return "\n".join(
            f"{name}: {value}" if name else value
            for name, value in zip(header, values, strict=True)
            if value
        )
    return " | ".join(value for value in values if value)


def _last(path: tuple[str, ...]) -> str | None:
    return path[-1] if path else None


def parse_html(data: bytes, *, max_text_chars: int | None = None) -> ParsedDocument:
    """HTML: the main content's text in blocks with heading paths; the title from <h1>/<title>."""
    from bs4 import BeautifulSoup

    text = decode_text(data)
    if max_text_chars is not None:
        check_text_size(len(text), max_text_chars)
    # lxml's parser (a C library, already installed with python-docx) is several times faster
    # than Python's html.parser and as forgiving.
    soup = BeautifulSoup(split_long_lines(text), "lxml")
    title_tag = soup.find("title")
    page_title = _clean(title_tag.get_text(" ")) if title_tag is not None else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    chrome = [tag for tag in soup.find_all(True) if _is_chrome(tag) and not _holds_main(tag)]
    for tag in chrome:
        # Detaching (not decomposing) leaves any chrome nested in it safe to detach as well.
        tag.extract()
    main = _main_content(soup)
    heading = main.find("h1") or soup.find("h1")
    title = _clean(heading.get_text(" ")) if heading is not None else ""
    if not title:
        title = _SITE_SUFFIX.sub("", page_title).strip()
    walker = _Walker()
    walker.outline.title = title or None
    walker.walk(main)
    walker.flush()
    return ParsedDocument(walker.blocks, title=title or page_title or None)


def _holds_main(tag: Tag) -> bool:
    """Whether removing the tag would remove the page's main content (a wrapping <header>)."""
    if tag.name not in ("div", "header", "section", "nav", "aside", "footer", "table", "body"):
        return False  # inline chrome (permalink marks, edit links) never wraps the page
    return any(tag.select_one(selector) is not None for selector in _MAIN_SELECTORS[:3])
