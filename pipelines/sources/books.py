"""Books: Project Gutenberg e-texts (header and licence removed) and plain-text book files."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from pipelines.budget import DocumentTimeout, time_budget
from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import (
    Record,
    Rejected,
    base_name,
    decode_text,
    read_capped,
    register,
    tar_files,
    too_slow,
)

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
def read_gutenberg(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    name = base_name(path)
    data = read_capped(fh, limits.max_document_bytes)
    if data is None:
        doc = make_document(source, f"gutenberg:{name}", "")
        yield Rejected(doc, "extract:too_large", f"over {limits.max_document_bytes} bytes")
        return
    try:
        with time_budget(limits.max_document_seconds):
            body, fields = strip_gutenberg(decode_text(data).lstrip("\ufeff"))
    except DocumentTimeout as exc:
        yield too_slow(make_document(source, f"gutenberg:{name}", ""), exc)
        return
    ebook = fields.get("ebook") or name.split(".", 1)[0]
    yield make_document(
        source,
        f"gutenberg:{ebook}",
        body,
        url=f"https://www.gutenberg.org/ebooks/{ebook}" if ebook.isdigit() else None,
        title=fields.get("title"),
        meta={k: v for k, v in fields.items() if k != "title"} or None,
    )


def _book(source: str, origin: str, name: str, data: bytes | None, limits: ExtractConfig) -> Record:
    doc = make_document(source, origin, "", title=name.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    if data is None:
        return Rejected(doc, "extract:too_large", f"over {limits.max_document_bytes} bytes")
    doc["text"] = decode_text(data).lstrip("\ufeff").replace("\r\n", "\n")
    return doc


@register("books-text")
def read_books_text(
    path: str, source: str, fh: BinaryIO, limits: ExtractConfig
) -> Iterator[Record]:
    """One book per .txt file, or per .txt member of a tar (Books3 is a tar of texts)."""
    name = base_name(path)
    if not name.endswith((".tar", ".tar.gz", ".tgz")):
        yield _book(source, name, name, read_capped(fh, limits.max_document_bytes), limits)
        return
    with tarfile.open(fileobj=fh, mode="r|") as tar:
        for member in tar_files(tar, source, lambda member_name: f"{name}:{member_name}", limits):
            if isinstance(member, Rejected):
                yield member
            elif member.name.endswith(".txt"):
                extracted = tar.extractfile(member)
                data = read_capped(extracted, limits.max_document_bytes) if extracted else b""
                yield _book(source, f"{name}:{member.name}", member.name, data, limits)
