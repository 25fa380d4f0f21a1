"""XML dumps read element by element: the `<page>` elements of a MediaWiki dump, the `<row>`
elements of a StackExchange Posts.xml. Each element is cut out of the byte stream and parsed
on its own (with defusedxml), so a damaged element costs that element, and bytes that belong
to no element are skipped up to the next one and counted, never the rest of the file.

The prolog before the first element (the XML declaration, the root's start tag, MediaWiki's
siteinfo) is parsed too: a DTD or entity declaration there refuses the whole file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml.ElementTree import iterparse

from pipelines.document import make_document
from pipelines.sources.base import Rejected, escaped

_CHUNK = 1 << 20
MAX_PROLOG_BYTES = 1 << 24  # a siteinfo block is a few KB


@dataclass
class Prolog:
    data: bytes


@dataclass
class Element:
    offset: int
    data: bytes


@dataclass
class Skipped:
    """Bytes that are not a whole element: garbage, a damaged element, or (at_end) an element
    the file ends inside; or (too_large) an element over the size limit."""

    offset: int
    nbytes: int
    what: str
    at_end: bool = False
    too_large: bool = False
    head: bytes = b""  # the first bytes of what was skipped, raw
    whole_file: bool = False  # no element at all: the file is not this kind of dump


# Where the element at the start of a buffer ends, given how far earlier calls searched.
EndOf = Callable[[bytes | bytearray, int], int | None]

# The end of a `<row .../>` start tag: quoted attribute values may hold `>` and `/>`.
_ROW_END = re.compile(rb"""<row\b(?:[^"'<>]|"[^"<]*"|'[^'<]*')*/?>""")


def row_end(buffer: bytes | bytearray, searched: int) -> int | None:
    """Where the `<row .../>` element at the buffer's start ends, or None (not there yet, or
    damaged)."""
    match = _ROW_END.match(buffer)
    return match.end() if match else None


def page_end(buffer: bytes | bytearray, searched: int) -> int | None:
    """Where the `<page>` element at the buffer's start ends (its end is not before
    `searched`), or None."""
    end = buffer.find(b"</page>", max(0, searched - len(b"</page>")))
    return end + len(b"</page>") if end != -1 else None


class _Buffer:
    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.data = bytearray()
        self.offset = 0  # of data[0] in the file
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        more = self.fh.read(_CHUNK)
        if not more:
            self.eof = True
            return False
        self.data += more
        return True

    def drop(self, n: int) -> bytes:
        taken = bytes(self.data[:n])
        del self.data[:n]
        self.offset += n
        return taken


def split_elements(
    fh: BinaryIO,
    start_tag: bytes,
    end_of: EndOf,
    closing: tuple[bytes, ...],
    max_element_bytes: int,
) -> Iterator[Prolog | Element | Skipped]:
    """The prolog, then every element that starts with `start_tag` (its end found by
    `end_of`), with what lies between elements reported as Skipped unless it is white space
    or one of the `closing` tags."""
    buffer = _Buffer(fh)
    # The prolog: everything before the first element.
    while True:
        found = buffer.data.find(start_tag)
        if found != -1 or len(buffer.data) > MAX_PROLOG_BYTES or not buffer.fill():
            break
    if found == -1:
        excerpt = bytes(buffer.data[:60])
        while buffer.data or buffer.fill():
            buffer.drop(len(buffer.data))
        what = f"no {start_tag.decode()} element in the file: {escaped(excerpt)}"
        yield Skipped(0, buffer.offset, what, at_end=True, whole_file=True)
        return
    yield Prolog(buffer.drop(found))
    while True:
        # Between elements: white space and the root's end tag, or bytes to skip and count.
        offset, size, head, blank = buffer.offset, 0, b"", True
        while (found := buffer.data.find(start_tag)) == -1:
            if len(buffer.data) > _CHUNK:  # a long run of garbage is counted, not kept
                gap = buffer.drop(len(buffer.data) - 64)
                size, head = size + len(gap), (head + gap)[:4096]
                blank = blank and not _not_blank(gap, closing)
            if not buffer.fill():
                break
        gap = buffer.drop(found if found != -1 else len(buffer.data))
        size, head = size + len(gap), (head + gap)[:4096]
        if not blank or _not_blank(gap, closing):
            what = f"not a {start_tag.decode()} element: {escaped(head.strip())}"
            yield Skipped(offset, size, what, head=head)
        if found == -1:
            return
        yield from _one_element(buffer, start_tag, end_of, max_element_bytes)


def _one_element(
    buffer: _Buffer,
    start_tag: bytes,
    end_of: EndOf,
    max_element_bytes: int,
) -> Iterator[Element | Skipped]:
    """The element at the start of the buffer, or what it cost when it is damaged."""
    searched = len(start_tag)
    while True:
        end = end_of(buffer.data, searched)
        following = buffer.data.find(start_tag, searched)
        if end is not None and (following == -1 or end <= following):
            yield Element(buffer.offset, buffer.drop(end))
            return
        if following != -1:
            # The next element starts before this one ends: this one is damaged.
            offset = buffer.offset
            damaged = buffer.drop(following)
            what = f"a damaged element: {escaped(damaged)}"
            yield Skipped(offset, len(damaged), what, head=damaged[:4096])
            return
        if len(buffer.data) > max_element_bytes:
            yield from _skip_large(buffer, start_tag)
            return
        searched = max(len(start_tag), len(buffer.data) - len(start_tag))
        if not buffer.fill():
            offset, size = buffer.offset, len(buffer.data)
            head = buffer.drop(size)
            what = f"an element cut short: {escaped(head)}"
            yield Skipped(offset, size, what, at_end=True, head=head[:4096])
            return


def _skip_large(buffer: _Buffer, start_tag: bytes) -> Iterator[Skipped]:
    """Skip an element over the size limit up to its end, keeping only its head."""
    offset, head = buffer.offset, bytes(buffer.data[:4096])
    closing = b"</page>" if start_tag == b"<page>" else b"/>"
    size = 0
    while True:
        end = buffer.data.find(closing)
        if end != -1:
            size += end + len(closing)
            buffer.drop(end + len(closing))
            yield Skipped(offset, size, f"{size} bytes", too_large=True, head=head)
            return
        keep = len(closing) - 1
        size += len(buffer.data) - keep
        buffer.drop(len(buffer.data) - keep)
        if not buffer.fill():
            size += len(buffer.data)
            buffer.drop(len(buffer.data))
            yield Skipped(offset, size, "an element cut short", at_end=True, head=head)
            return


def _not_blank(gap: bytes, closing: tuple[bytes, ...]) -> bool:
    for tag in closing:
        gap = gap.replace(tag, b"")
    return bool(gap.strip())


def xml_damage(source: str, name: str, piece: Skipped) -> Rejected:
    """The rejection that stands for skipped bytes of a dump: damaged_record, damaged_file
    when the file ends inside them, wrong_format when the file holds no element at all.
    `piece.what` is printable already."""
    if piece.whole_file:
        reason, origin = "extract:wrong_format", f"{name}#file"
    else:
        reason = "extract:damaged_file" if piece.at_end else "extract:damaged_record"
        origin = f"{name}#file@{piece.offset}"
    detail = f"{name}: {piece.what}; {piece.nbytes} bytes skipped at byte {piece.offset}"
    return Rejected(make_document(source, origin, ""), reason, detail, piece.nbytes)


def check_prolog(prolog: bytes) -> list:
    """The elements completed in a dump's prolog (MediaWiki's siteinfo). It is parsed as XML
    so that a DTD or an entity declaration there refuses the whole file (defusedxml raises a
    ValueError), and so does an XML declaration naming an encoding nobody knows."""
    done = []
    try:
        for _, elem in iterparse(io.BytesIO(prolog), events=("end",)):
            done.append(elem)
    except ParseError:
        pass  # the root element is still open where the prolog ends
    except LookupError as exc:
        raise ValueError(f"the XML declaration names {exc}") from None
    return done
