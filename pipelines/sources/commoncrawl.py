"""CommonCrawl WET (text as Common Crawl extracted it) and WARC (HTML, main text extracted).

HTML to text uses resiliparse: on 530 real pages it extracted about as much text as
trafilatura at ~24x the speed (see ENVIRONMENT.md), which matters at CommonCrawl's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import (
    Record,
    Rejected,
    decode_text,
    file_rejection,
    read_capped,
    register,
)


def _truncated(record: ArcWarcRecord) -> bool:
    """A record cut short: no headers at all, or less content than its Content-Length."""
    return record.rec_type is None or getattr(record.raw_stream, "limit", 0) > 0


def _truncation(path: str, source: str) -> Rejected:
    return file_rejection(path, source, "extract:damaged_file", "truncated WARC record")


def _crawl_id(warcinfo_payload: bytes) -> str | None:
    for line in warcinfo_payload.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "isPartOf":
            return value.strip()
    return None


def _warc_documents(
    path: str,
    source: str,
    fh: BinaryIO,
    limits: ExtractConfig,
    record_type: str,
    to_text: Callable[[bytes], str],
    refuse: Callable[[ArcWarcRecord], tuple[str, str] | None] = lambda record: None,
) -> Iterator[Record]:
    """One document per `record_type` record: URL, date and the crawl id kept; a record too
    large, refused, or cut short is recorded instead."""
    crawl_id = None
    for record in ArchiveIterator(fh):
        if record.rec_type is None:
            yield _truncation(path, source)
            return
        if record.rec_type == "warcinfo":
            crawl_id = _crawl_id(record.content_stream().read())
            continue
        if record.rec_type != record_type:
            continue
        headers = record.rec_headers
        meta = {"crawl": crawl_id, "warc_record_id": headers.get_header("WARC-Record-ID")}
        language = headers.get_header("WARC-Identified-Content-Language")
        if language:
            meta["cc_languages"] = language
        doc = make_document(
            source,
            headers.get_header("WARC-Record-ID") or headers.get_header("WARC-Target-URI"),
            "",
            url=headers.get_header("WARC-Target-URI"),
            timestamp=headers.get_header("WARC-Date"),
            meta=meta,
        )
        refusal = refuse(record)
        if refusal is not None:
            yield Rejected(doc, *refusal)
            continue
        body = read_capped(record.content_stream(), limits.max_document_bytes)
        if body is None:
            yield Rejected(doc, "extract:too_large", f"over {limits.max_document_bytes} bytes")
            continue
        if _truncated(record):
            yield _truncation(path, source)
            return
        doc["text"] = to_text(body)
        yield doc


def _html_to_text(body: bytes) -> str:
    return extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)


def _not_html(record: ArcWarcRecord) -> tuple[str, str] | None:
    headers = record.http_headers
    content_type = headers.get_header("Content-Type", "") if headers else ""
    if "html" in content_type.lower():
        return None
    return "extract:not_html", content_type or "no Content-Type"


@register("wet")
def read_wet(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    """Text as Common Crawl extracted it: the `conversion` records."""
    return _warc_documents(path, source, fh, limits, "conversion", decode_text)


@register("warc")
def read_warc(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    """HTML `response` records, main text extracted."""
    return _warc_documents(path, source, fh, limits, "response", _html_to_text, _not_html)


# warcio reads gzip member by member itself, which is how WARC files are compressed.
read_wet.decompresses = True  # type: ignore[attr-defined]
read_warc.decompresses = True  # type: ignore[attr-defined]
