"""MediaWiki `pages-articles` XML dumps (.xml or .xml.bz2), streamed page by page.

Read in two phases: a scan cuts the pages out of the stream (decompressing and parsing the
XML, the part that must run in order) and a render cleans each article's wikitext (the
expensive part), so the articles of one large dump can be cleaned on many workers.

Main namespace only, redirects skipped; wikitext becomes plain text with links reduced to
their anchor text and templates, references, comments, tables, categories and files removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import unescape

import mwparserfromhell
from defusedxml.ElementTree import fromstring
from mwparserfromhell.nodes import Node, Tag, Wikilink

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import (
    Raw,
    ReadAhead,
    Record,
    Rejected,
    base_name,
    cleaned,
    register_split,
)
from pipelines.sources.xml_records import (
    Prolog,
    Skipped,
    check_prolog,
    page_end,
    split_elements,
    xml_damage,
)

# Links to files, images and categories carry no article text (any language's prefix is
# matched through the dump's namespace list; these are the English and canonical ones).
_DEFAULT_NON_TEXT_PREFIXES = ("file", "image", "category", "media")
_TABLE_RE = re.compile(r"\{\|.*?\|\}", re.DOTALL)
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
# References are removed before parsing: inside some templates the parser leaves them as text.
_REF_RE = re.compile(r"<ref[^>]*/>|<ref(?:\s[^>]*)?>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text
    return None


_DROPPED_TAGS = frozenset({"ref", "references", "gallery", "math", "table", "timeline", "score"})


def _is_boilerplate(node: Node, non_text_prefixes: tuple[str, ...]) -> bool:
    if isinstance(node, Wikilink):
        target = str(node.title).strip().lstrip(":").split(":", 1)
        return len(target) == 2 and target[0].strip().lower() in non_text_prefixes
    if isinstance(node, Tag):
        return str(node.tag).strip().lower() in _DROPPED_TAGS
    return False


def wikitext_to_text(
    wikitext: str, non_text_prefixes: tuple[str, ...] = _DEFAULT_NON_TEXT_PREFIXES
) -> str:
    """Plain text of a wikitext page, as the paper describes its Wikipedia cleaning."""
    # Comments first: editors' notes may mention "<ref>" and would derail the others.
    cleaned = _REF_RE.sub("", _TABLE_RE.sub("", _COMMENT_RE.sub("", wikitext)))
    code = mwparserfromhell.parse(cleaned)
    # One pass over the top-level nodes, as Wikicode.strip_code does, skipping files,
    # categories and reference-like tags (removing them from the tree first is quadratic).
    pieces = []
    for node in code.nodes:
        if _is_boilerplate(node, non_text_prefixes):
            continue
        stripped = node.__strip__(normalize=True, collapse=True, keep_template_params=False)
        if stripped:
            pieces.append(str(stripped))
    text = "".join(pieces)
    lines = [line.strip() for line in text.splitlines()]
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


@dataclass
class WikiPage(Raw):
    """An article as the scan leaves it: its document without text, and its wikitext."""

    wikitext: str
    prefixes: tuple[str, ...]  # of links to files and categories: they carry no text


def render_page(page: WikiPage, limits: ExtractConfig) -> Record:
    """The document of an article, its text cleaned from its wikitext (the expensive part)."""
    wikitext, prefixes = page.wikitext, page.prefixes
    return cleaned(page.row, limits, len(wikitext), lambda: wikitext_to_text(wikitext, prefixes))


@register_split("mediawiki", render_page)
def scan_mediawiki(
    path: str, source: str, fh: BinaryIO, limits: ExtractConfig
) -> Iterator[Record | WikiPage]:
    """Every article of a dump as a WikiPage to render; redirects, pages over the size limit
    and damage as rejections. Pages outside the main namespace are not documents at all."""
    name = base_name(path)
    site = _Site()
    # Decompressing runs ahead in a thread, beside the parsing: it is most of a scan's time.
    with ReadAhead(fh) as ahead:
        pages = split_elements(
            ahead, b"<page>", page_end, (b"</mediawiki>",), 2 * limits.max_document_bytes
        )
        for piece in pages:
            if isinstance(piece, Prolog):
                site = _site_info(piece.data)
            elif isinstance(piece, Skipped):
                yield _skipped_page(source, name, site, piece, limits)
            else:
                try:
                    page = fromstring(piece.data)
                except ParseError as exc:
                    what = f"a <page> that does not parse ({exc})"
                    yield xml_damage(source, name, Skipped(piece.offset, len(piece.data), what))
                    continue
                yield from _page(page, source, site)


@dataclass
class _Site:
    dbname: str | None = None
    base_url: str | None = None
    prefixes: tuple[str, ...] = _DEFAULT_NON_TEXT_PREFIXES


def _site_info(prolog: bytes) -> _Site:
    """The wiki's name, base URL and file/category prefixes from the dump's siteinfo. The
    prolog is parsed as XML so that a DTD or entity declaration refuses the file."""
    site = _Site()
    for elem in check_prolog(prolog):
        if _local(elem.tag) != "siteinfo":
            continue
        base = _child_text(elem, "base") or ""
        site.base_url = base.rsplit("/", 1)[0] + "/" if "/wiki/" in base else None
        site.dbname = _child_text(elem, "dbname")
        prefixes = set(_DEFAULT_NON_TEXT_PREFIXES)
        for child in elem.iter():
            # Namespaces 6 (File) and 14 (Category) in the dump's own language.
            if _local(child.tag) == "namespace" and child.get("key") in ("6", "14") and child.text:
                prefixes.add(child.text.lower())
        site.prefixes = tuple(sorted(prefixes))
    return site


_TITLE_RE = re.compile(rb"<title>([^<]*)</title>")
_ID_RE = re.compile(rb"<id>(\d+)</id>")


def _skipped_page(
    source: str, name: str, site: _Site, piece: Skipped, limits: ExtractConfig
) -> Rejected:
    """A page over the size limit (named by its id when its head shows it), or damage."""
    page_id = _ID_RE.search(piece.head)
    if piece.too_large and page_id:
        title = _TITLE_RE.search(piece.head)
        doc = make_document(
            source,
            f"{site.dbname or 'wiki'}:{page_id.group(1).decode()}",
            "",
            title=unescape(title.group(1).decode("utf-8", "replace")) if title else None,
        )
        return Rejected(doc, "extract:too_large", f"{piece.nbytes} bytes of XML")
    return xml_damage(source, name, piece)


def _page(page: Element, source: str, site: _Site) -> Iterator[Record | WikiPage]:
    dbname, base_url = site.dbname, site.base_url
    title = _child_text(page, "title") or ""
    namespace = _child_text(page, "ns") or "0"
    page_id = _child_text(page, "id") or title
    redirect = any(_local(child.tag) == "redirect" for child in page)
    wikitext, timestamp = "", None
    for child in page:
        if _local(child.tag) == "revision":
            wikitext = _child_text(child, "text") or ""
            timestamp = _child_text(child, "timestamp")
    if namespace != "0":
        return  # talk pages, templates, user pages... are not articles: not documents at all
    url = f"{base_url}{title.replace(' ', '_')}" if base_url else None
    doc = make_document(
        source,
        f"{dbname or 'wiki'}:{page_id}",
        "",
        url=url,
        title=title,
        timestamp=timestamp,
        meta={"wiki": dbname, "page_id": page_id},
    )
    # Only the head is lowered: lowering a whole page costs as much as parsing its XML.
    if redirect or wikitext.lstrip()[:9].lower().startswith("#redirect"):
        yield Rejected(doc, "extract:redirect", title)
        return
    yield WikiPage(doc, len(wikitext), wikitext, site.prefixes)
