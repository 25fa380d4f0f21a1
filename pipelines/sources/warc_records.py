"""WARC framing that survives damage: records are cut out of the byte stream here and each is
then parsed on its own, so a bad record or a run of garbage costs that record and those bytes,
never the rest of the file.

Plain WARC: a record starts at a `WARC/<version>` line, its header ends at the first empty
line, and its block is Content-Length bytes long. Gzipped WARC: every record is its own gzip
member (what the WARC standard recommends and every crawler writes); a member that does not
inflate is skipped up to the next gzip header, and a member that holds several records (or a
whole file compressed as one stream) is framed like plain WARC inside it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pipelines.sources.base import escaped

GZIP_MAGIC = b"\x1f\x8b\x08"
MAX_HEADER_BYTES = 1 << 16  # a WARC header block is a few hundred bytes
_CHUNK = 1 << 16
_VERSION_RE = re.compile(rb"WARC/\d+\.\d+\r?\n\Z")
_LENGTH_RE = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Framed:
    """One whole record: its header block and content, as a plain WARC record."""

    offset: int  # where it starts in the file (the gzip member's offset for gzipped files)
    data: bytes


@dataclass
class Oversized:
    """A record whose content is over the size limit: its header only, the content skipped."""

    offset: int
    header: bytes
    content_length: int


@dataclass
class Damage:
    """Bytes that are not a readable record, skipped up to the next record that is."""

    offset: int
    skipped_bytes: int
    what: str
    at_end: bool = False  # the file ends inside it (cut short), nothing follows


class _Truncated(Exception):
    """The compressed stream ended inside a gzip member."""


class _Broken(Exception):
    """A gzip member does not inflate."""


class _RawSource:
    """The file's bytes with push-back, counting the absolute offset of what comes next."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.pending = bytearray()
        self.offset = 0

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at the end of the file."""
        data = bytes(self.pending[:n])
        del self.pending[:n]
        while len(data) < n:
            more = self.fh.read(n - len(data))
            if not more:
                break
            data += more
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self.pending[:0] = data
        self.offset -= len(data)


class _Member:
    """The inflated bytes of one gzip member, read on demand; the raw bytes it consumed are
    kept (up to a limit) so that after damage the search for the next member can start right
    after this member's header."""

    def __init__(self, raw: _RawSource, keep_limit: int):
        self.raw = raw
        self.start = raw.offset
        self.inflater = zlib.decompressobj(31)
        self.consumed = bytearray()
        self.keep_limit = keep_limit
        self.capped = False  # consumed more than it kept: a new search starts where it stopped

    def read(self, n: int) -> bytes:
        while True:
            if self.inflater.eof:
                return b""
            if self.inflater.unconsumed_tail:
                data = self.inflater.unconsumed_tail
            else:
                data = self.raw.read(_CHUNK)
                if not data:
                    raise _Truncated
                if len(self.consumed) + len(data) <= self.keep_limit:
                    self.consumed += data
                else:
                    self.capped = True
            try:
                out = self.inflater.decompress(data, n)
            except zlib.error as exc:
                raise _Broken(str(exc)) from None
            if self.inflater.eof:
                # What follows the member's end belongs to the next member (zlib may leave
                # the same bytes in unconsumed_tail too: unused_data is the one to trust).
                rest = self.inflater.unused_data
                self.raw.unread(rest)
                del self.consumed[max(len(self.consumed) - len(rest), 0) :]
            if out:
                return out

    def rewind_after_header(self) -> None:
        """Give back what this member consumed after its first byte, so that the search for the
        next member starts there (or, past the limit of what was kept, where reading stopped)."""
        if not self.capped and self.consumed:
            self.raw.unread(bytes(self.consumed[1:]))


class _Lines:
    """Buffered line and block reads over anything with read(n), tracking the offset."""

    def __init__(self, source, offset: int = 0):
        self.source = source
        self.buffer = bytearray()
        self.offset = offset  # of the first byte in the buffer

    def _fill(self) -> bool:
        data = self.source.read(_CHUNK)
        self.buffer += data
        return bool(data)

    def readline(self, limit: int) -> bytes:
        while True:
            end = self.buffer.find(b"\n", 0, limit)
            if end != -1 or len(self.buffer) >= limit:
                take = end + 1 if end != -1 else limit
                return self._take(take)
            if not self._fill():
                return self._take(len(self.buffer))

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n and self._fill():
            pass
        return self._take(min(n, len(self.buffer)))

    def skip(self, n: int) -> int:
        """Discard up to n bytes without holding them; how many there were."""
        skipped = 0
        while skipped < n:
            if not self.buffer and not self._fill():
                break
            take = min(n - skipped, len(self.buffer))
            self._take(take)
            skipped += take
        return skipped

    def _take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        self.offset += n
        return data


def _frame_plain(lines: _Lines, max_content_bytes: int) -> Iterator[Framed | Oversized | Damage]:
    """Records of a plain WARC stream; garbage between them comes out as Damage."""
    garbage_at, garbage, excerpt = 0, 0, b""

    def flush() -> Iterator[Damage]:
        nonlocal garbage
        if garbage:
            yield Damage(garbage_at, garbage, f"not a WARC record: {escaped(excerpt)}")
            garbage = 0

    while True:
        start = lines.offset
        line = lines.readline(MAX_HEADER_BYTES)
        if not line:
            break
        if not _VERSION_RE.match(line):
            # Garbage without a line break before the next record still ends there.
            inside = line.find(b"WARC/", 1)
            head = line if inside == -1 or not _VERSION_RE.match(line, inside) else line[:inside]
            if head.strip() and not garbage:
                garbage_at, excerpt = start, head
            if head.strip() or garbage:
                garbage += len(head)
            if head is line:
                continue
            line, start = line[inside:], start + inside
        header = [line]
        size = len(line)
        while True:
            line = lines.readline(MAX_HEADER_BYTES)
            header.append(line)
            size += len(line)
            if not line or line in (b"\r\n", b"\n") or size > MAX_HEADER_BYTES:
                break
        head = b"".join(header)
        if not line or size > MAX_HEADER_BYTES:
            what = "a WARC header cut short" if not line else "a WARC header over 64 KiB"
            yield from flush()
            yield Damage(start, size, f"{what}: {escaped(head)}", at_end=not line)
            continue
        length = _LENGTH_RE.search(head)
        if length is None:
            if not garbage:
                garbage_at, excerpt = start, head
            garbage += size  # without a length the block cannot be framed: skip to the next
            continue
        yield from flush()
        content_length = int(length.group(1))
        if content_length > max_content_bytes:
            got = lines.skip(content_length)
            if got < content_length:
                yield Damage(start, size + got, "a WARC record cut short", at_end=True)
                return
            yield Oversized(start, head, content_length)
            continue
        block = lines.read(content_length)
        if len(block) < content_length:
            what = f"a WARC record cut short ({len(block)} of {content_length} content bytes)"
            yield Damage(start, size + len(block), what, at_end=True)
            return
        yield Framed(start, head + block + b"\r\n\r\n")
    yield from flush()


def _frame_gzip(raw: _RawSource, max_content_bytes: int) -> Iterator[Framed | Oversized | Damage]:
    """Records of a gzipped WARC, member by member, resynchronising after a bad member."""
    pending: Damage | None = None  # consecutive bad members are reported as one region

    def damage(offset: int, nbytes: int, what: str, at_end: bool = False) -> Damage | None:
        """Merge into the pending region, or start a new one and return the finished one."""
        nonlocal pending
        if pending is not None and pending.offset + pending.skipped_bytes >= offset:
            pending.skipped_bytes = max(pending.skipped_bytes, offset + nbytes - pending.offset)
            pending.at_end = at_end
            return None
        finished, pending = pending, Damage(offset, nbytes, what, at_end)
        return finished

    while True:
        head = raw.read(len(GZIP_MAGIC))
        if not head:
            break
        start = raw.offset - len(head)
        if head != GZIP_MAGIC:
            # Garbage between members: skip to the next gzip header.
            raw.unread(head[1:])
            skipped = 1 + _skip_to_magic(raw)
            finished = damage(start, skipped, f"not a gzip member: {escaped(head)}")
            if finished:
                yield finished
            continue
        raw.unread(head)
        member = _Member(raw, keep_limit=max_content_bytes + MAX_HEADER_BYTES)
        try:
            for item in _frame_plain(_Lines(member), max_content_bytes):
                if pending is not None:
                    yield pending
                    pending = None
                # Offsets are the member's: that is where a reader seeks to in the file.
                item.offset = member.start
                if isinstance(item, Damage):
                    item.at_end = False  # the member ended, not the file
                yield item
        except _Truncated:
            size = raw.offset - member.start
            finished = damage(member.start, size, "a gzip member cut short", at_end=True)
            if finished:
                yield finished
        except _Broken as exc:
            member.rewind_after_header()
            skipped = raw.offset - member.start + _skip_to_magic(raw)
            finished = damage(member.start, skipped, f"a gzip member that does not inflate ({exc})")
            if finished:
                yield finished
    if pending is not None:
        yield pending


def _skip_to_magic(raw: _RawSource) -> int:
    """Read up to (not including) the next gzip header; how many bytes were skipped."""
    skipped, tail = 0, b""
    while True:
        chunk = raw.read(_CHUNK)
        if not chunk:
            return skipped + len(tail)
        window = tail + chunk
        found = window.find(GZIP_MAGIC)
        if found != -1:
            raw.unread(window[found:])
            return skipped + found
        # A header may straddle two chunks: keep the last bytes for the next search.
        tail = window[-(len(GZIP_MAGIC) - 1) :]
        skipped += len(window) - len(tail)


def frame_records(fh: BinaryIO, max_content_bytes: int) -> Iterator[Framed | Oversized | Damage]:
    """Every record of a WARC file (gzipped or not, whatever its name says), with the bytes
    that are not records reported as Damage."""
    raw = _RawSource(fh)
    head = raw.read(2)
    raw.unread(head)
    if head == GZIP_MAGIC[:2]:
        yield from _frame_gzip(raw, max_content_bytes)
    else:
        yield from _frame_plain(_Lines(raw), max_content_bytes)
