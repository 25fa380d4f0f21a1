"""CommonCrawl WET (text as Common Crawl extracted it) and WARC (HTML, main text extracted).

HTML to text uses resiliparse: on 530 real pages it extracted about as much text as
trafilatura at ~24x the speed (see ENVIRONMENT.md), which matters at CommonCrawl's size.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParser

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import (
    Record,
    Rejected,
    base_name,
    cleaned,
    decode_text,
    escaped,
    file_rejection,
    read_capped,
    register,
)
from pipelines.sources.warc_records import Damage, Framed, Oversized, frame_records

# Room for the WARC and HTTP headers around a document's bytes.
_HEADER_ALLOWANCE = 1 << 20
# The record types besides warcinfo: a reader parses only its own (response or conversion)
# and skips the others on their header alone.
_RECORD_TYPES = frozenset(
    ("request", "metadata", "resource", "revisit", "continuation", "response", "conversion")
)


def _crawl_id(warcinfo_payload: bytes) -> str | None:
    for line in warcinfo_payload.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "isPartOf":
            return value.strip()
    return None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {escaped(str(exc).encode(), 200)}"


def _damage(name: str, source: str, item: Damage) -> Rejected:
    reason = "extract:damaged_file" if item.at_end else "extract:damaged_record"
    doc = make_document(source, f"{name}#file@{item.offset}", "")
    detail = f"{name}: {item.what}; {item.skipped_bytes} bytes skipped at byte {item.offset}"
    return Rejected(doc, reason, detail, skipped_bytes=item.skipped_bytes)


def _document(
    source: str, name: str, offset: int, headers, crawl_id: str | None
) -> dict | Rejected:
    """The document a record stands for (text still empty), from its WARC headers."""
    record_id = headers.get_header("WARC-Record-ID")
    url = headers.get_header("WARC-Target-URI")
    if not record_id and not url:
        doc = make_document(source, f"{name}@{offset}", "")
        return Rejected(doc, "extract:incomplete_record", "no WARC-Record-ID or WARC-Target-URI")
    meta = {"crawl": crawl_id, "warc_record_id": record_id}
    language = headers.get_header("WARC-Identified-Content-Language")
    if language:
        meta["cc_languages"] = language
    return make_document(
        source, record_id or url, "", url=url, timestamp=headers.get_header("WARC-Date"), meta=meta
    )


def _warc_documents(
    path: str,
    source: str,
    fh: BinaryIO,
    limits: ExtractConfig,
    record_type: str,
    to_text: Callable[[bytes], str],
    refuse: Callable[[ArcWarcRecord], tuple[str, str] | None] = lambda record: None,
) -> Iterator[Record]:
    """One document per `record_type` record: URL, date and the crawl id kept. A record too
    large, refused or malformed is recorded instead; damaged bytes are skipped up to the next
    readable record and recorded with their count."""
    name = base_name(path)
    crawl_id = None
    first_damage = None  # held back: if nothing but damage follows, the file is not a WARC
    others = _RECORD_TYPES - {record_type}
    for item in frame_records(fh, limits.max_document_bytes + _HEADER_ALLOWANCE):
        if first_damage is not None:
            yield _damage(name, source, first_damage)
            first_damage = None
        if isinstance(item, Damage):
            if item.offset == 0 and not item.at_end:
                first_damage = item
            else:
                yield _damage(name, source, item)
            continue
        if isinstance(item, Oversized):
            headers = StatusAndHeadersParser(["WARC/1.0", "WARC/1.1", "WARC/0.17", "WARC/0.18"])
            try:
                parsed = headers.parse(io.BytesIO(item.header))
            except Exception as exc:  # noqa: BLE001 (a header that does not parse is damage)
                yield _damage(name, source, Damage(item.offset, len(item.header), str(exc)))
                continue
            if parsed.get_header("WARC-Type") == record_type:
                doc = _document(source, name, item.offset, parsed, crawl_id)
                if isinstance(doc, Rejected):
                    yield doc
                else:
                    why = f"{item.content_length} bytes (limit {limits.max_document_bytes})"
                    yield Rejected(doc, "extract:too_large", why)
            continue
        if item.record_type() in others:
            continue  # a request or metadata record: not worth parsing
        try:
            record = next(iter(ArchiveIterator(io.BytesIO(item.data))))
        except Exception as exc:  # noqa: BLE001 (anything warcio cannot parse is one bad record)
            doc = make_document(source, f"{name}@{item.offset}", "")
            detail = f"{name}: byte {item.offset}: {_error_text(exc)}"
            yield Rejected(doc, "extract:damaged_record", detail)
            continue
        if record.rec_type == "warcinfo":
            crawl_id = _crawl_id(record.content_stream().read())
            continue
        if record.rec_type != record_type:
            continue
        yield _record_document(source, name, item, record, limits, to_text, refuse, crawl_id)
    if first_damage is not None:
        what = f"no WARC record in {first_damage.skipped_bytes} bytes ({first_damage.what})"
        rejection = file_rejection(path, source, "extract:wrong_format", what)
        rejection.skipped_bytes = first_damage.skipped_bytes
        yield rejection


def _record_document(
    source: str,
    name: str,
    item: Framed,
    record: ArcWarcRecord,
    limits: ExtractConfig,
    to_text: Callable[[bytes], str],
    refuse: Callable[[ArcWarcRecord], tuple[str, str] | None],
    crawl_id: str | None,
) -> Record:
    doc = _document(source, name, item.offset, record.rec_headers, crawl_id)
    if isinstance(doc, Rejected):
        return doc
    try:
        refusal = refuse(record)
        if refusal is not None:
            return Rejected(doc, *refusal)
        body = read_capped(record.content_stream(), limits.max_document_bytes)
        if body is None:
            return Rejected(doc, "extract:too_large", f"over {limits.max_document_bytes} bytes")
        return cleaned(doc, limits, len(body), lambda: to_text(body))
    except Exception as exc:  # noqa: BLE001 (a payload that does not decode is one bad record)
        detail = f"byte {item.offset}: {_error_text(exc)}"
        return Rejected(doc, "extract:damaged_record", detail)


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


# WARC files are gzipped record by record: the framing inflates member by member itself.
read_wet.decompresses = True  # type: ignore[attr-defined]
read_warc.decompresses = True  # type: ignore[attr-defined]
