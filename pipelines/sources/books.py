"""Books: Project Gutenberg e-texts (header and licence removed) and plain-text book files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from pipelines.document import make_document
from pipelines.sources.base import Record, base_name, register

# Old and new spellings of the markers around a Gutenberg e-text's body.
_START_RE = re.compile(
    r"^\s*\*{3}\s*START OF (?:THIS|THE) PROJECT GUTENBERG E-?BOOK.*$"
    r"|^\s*\*END\*\s*THE SMALL PRINT.*$",
    re.IGNORECASE | re.MULTILINE,
)
_END_RE = re.compile(
    r"^\s*\*{3}\s*END OF (?:THIS|THE) PROJECT GUTENBERG E-?BOOK.*$"
    r"|^\s*End of (?:the )?Project Gutenberg'?s? .*$",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD_RE = re.compile(r"^(Title|Author|Language|Release Date):\s*(.+)$", re.MULTILINE)
_EBOOK_NO_RE = re.compile(r"\[E-?Book #(\d+)\]", re.IGNORECASE)


def strip_gutenberg(text: str) -> tuple[str, dict[str, str]]:
    """The body of a Gutenberg e-text without header and licence, plus its header fields."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _START_RE.search(text)
    header = text[: start.start()] if start else ""
    fields = {k.lower().replace(" ", "_"): v.strip() for k, v in _FIELD_RE.findall(header)}
    ebook = _EBOOK_NO_RE.search(header)
    if ebook:
        fields["ebook"] = ebook.group(1)
    body = text[start.end() :] if start else text
    end = _END_RE.search(body)
    if end:
        body = body[: end.start()]
    return body.strip("\n"), fields


@register("gutenberg")
def read_gutenberg(path: str, source: str, fh: BinaryIO) -> Iterator[Record]:
    raw = fh.read().decode("utf-8", "replace").lstrip("\ufeff")
    body, fields = strip_gutenberg(raw)
    name = base_name(path)
    ebook = fields.get("ebook") or name.split(".", 1)[0]
    yield make_document(
        source,
        f"gutenberg:{ebook}",
        body,
        url=f"https://www.gutenberg.org/ebooks/{ebook}" if ebook.isdigit() else None,
        title=fields.get("title"),
        meta={k: v for k, v in fields.items() if k != "title"} or None,
    )


@register("books-text")
def read_books_text(path: str, source: str, fh: BinaryIO) -> Iterator[Record]:
    name = base_name(path)
    text = fh.read().decode("utf-8", "replace").lstrip("\ufeff").replace("\r\n", "\n")
    yield make_document(source, name, text, title=name.rsplit(".", 1)[0])
