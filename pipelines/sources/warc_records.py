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
_MAX_HELD = 1024  # records of one gzip member held until its CRC is checked
_VERSION_RE = re.compile(rb"WARC/\d+\.\d+\r?\n\Z")
_LENGTH_RE = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_TYPE_RE = re.compile(rb"^warc-type:[ \t]*([a-z]+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Framed:
    """One whole record: its header block and content, as a plain WARC record."""

    offset: int  # where it starts in the file (the gzip member's offset for gzipped files)
    data: bytes
    header_size: int = 0  # the header block's bytes at the start of data

    def record_type(self) -> str | None:
        """WARC-Type as the header block spells it, when it is one plain word."""
        found = _TYPE_RE.search(self.data, 0, self.header_size)
        return found.group(1).decode() if found else None


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
    """The file's bytes with push-back, counting the absolute offset of what comes next. Reads
    are views into the current chunk of the file, so reading a member and giving back what
    follows it copies nothing."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.chunk = memoryview(b"")
        self.pos = 0
        self.offset = 0

    def read_some(self, n: int) -> memoryview:
        """Up to n bytes, fewer where the current chunk ends; empty only at the end of the file."""
        if self.pos >= len(self.chunk):
            self.chunk, self.pos = memoryview(self.fh.read(_CHUNK)), 0
        data = self.chunk[self.pos : self.pos + n]
        self.pos += len(data)
        self.offset += len(data)
        return data

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at the end of the file."""
        data = bytes(self.read_some(n))
        while len(data) < n:
            more = self.read_some(n - len(data))
            if not more:
                break
            data += more
        return data

    def unread(self, data: bytes | memoryview) -> None:
        """Give back the last bytes read, so that they are read again next."""
        size = len(data)
        if size <= self.pos:
            self.pos -= size
        else:  # they began in an earlier chunk
            self.chunk, self.pos = memoryview(bytes(data) + self.chunk[self.pos :]), 0
        self.offset -= size

    def push_back(self, data: bytes) -> None:
        """Put any bytes in front of what comes next."""
        self.chunk, self.pos = memoryview(data + self.chunk[self.pos :]), 0
        self.offset -= len(data)


class _Member:
    """The inflated bytes of one gzip member, read on demand; the raw bytes it consumed are
    kept (up to a limit) so that after damage the search for the next member can start right
    after this member's header."""

    def __init__(self, raw: _RawSource, keep_limit: int):
        self.raw = raw
        self.start = raw.offset
        self.inflater = zlib.decompressobj(31)
        self.consumed: list[memoryview] = []  # views of the file's chunks, not copies
        self.kept = 0
        self.keep_limit = keep_limit
        self.capped = False  # consumed more than it kept: a new search starts where it stopped

    def read(self, n: int) -> bytes:
        while True:
            if self.inflater.eof:
                return b""
            if self.inflater.unconsumed_tail:
                data = self.inflater.unconsumed_tail
            else:
                data = self.raw.read_some(_CHUNK)
                if not data:
                    raise _Truncated
                if self.kept + len(data) <= self.keep_limit:
                    self.consumed.append(data)
                    self.kept += len(data)
                else:
                    self.capped = True
            try:
                out = self.inflater.decompress(data, n)
            except zlib.error as exc:
                raise _Broken(str(exc)) from None
            if self.inflater.eof:
                # What follows the member's end belongs to the next member (zlib may leave
                # the same bytes in unconsumed_tail too: unused_data is the one to trust).
                self.raw.unread(self.inflater.unused_data)
                self.consumed.clear()  # a whole member is never searched again
            if out:
                return out

    def rewind_after_header(self) -> None:
        """Give back what this member consumed after its first byte, so that the search for the
        next member starts there (or, past the limit of what was kept, where reading stopped)."""
        if not self.capped and self.consumed:
            self.raw.push_back(b"".join(self.consumed)[1:])


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

    def read_to_blank_line(self, limit: int) -> bytes:
        """The lines up to and including the first empty one, read from the start of a line:
        a header's fields. Without an empty line within `limit` bytes, `limit` + 1 bytes; at
        the end of the stream, what is left (neither ends with an empty line)."""
        searched = 0
        while True:
            buffer = self.buffer
            if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
                return self._take(1 if buffer[:1] == b"\n" else 2)
            window = min(len(buffer), limit + 1)
            # Where the empty line ends, as "\r\n" or as "\n" (not found: 2 and 1).
            crlf = buffer.find(b"\n\r\n", searched, window) + 3
            lf = buffer.find(b"\n\n", searched, window) + 2
            found = [end for end in (crlf, lf) if end > 2]
            if found and min(found) <= limit:
                return self._take(min(found))
            if len(buffer) > limit:
                return self._take(limit + 1)
            searched = max(len(buffer) - 2, 0)
            if not self._fill():
                return self._take(len(self.buffer))

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
        head = line + lines.read_to_blank_line(MAX_HEADER_BYTES - len(line))
        size = len(head)
        ended = head.endswith((b"\n\n", b"\n\r\n"))
        if not ended:
            cut = size <= MAX_HEADER_BYTES
            what = "a WARC header cut short" if cut else "a WARC header over 64 KiB"
            yield from flush()
            yield Damage(start, size, f"{what}: {escaped(head)}", at_end=cut)
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
        yield Framed(start, head + block + b"\r\n\r\n", len(head))
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
        # A member's records wait for its end, where zlib checks its CRC: a record whose bytes
        # were damaged is not kept. Only a member larger than any record (a whole file in one
        # gzip stream) lets its records through as they come.
        held: list[Framed | Oversized | Damage] = []
        held_bytes = 0
        try:
            for item in _frame_plain(_Lines(member), max_content_bytes):
                # Offsets are the member's: that is where a reader seeks to in the file.
                item.offset = member.start
                if isinstance(item, Damage):
                    item.at_end = False  # the member ended, not the file
                held.append(item)
                held_bytes += _size(item)
                if held_bytes > member.keep_limit or len(held) >= _MAX_HELD:
                    yield from _released(pending, held)
                    pending, held, held_bytes = None, [], 0
        except _Truncated:
            # Cut short at the end of the file: what inflated before the cut is kept.
            if held:
                yield from _released(pending, held)
                pending = None
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
        else:
            if held:
                yield from _released(pending, held)
                pending = None
    if pending is not None:
        yield pending


def _size(item: Framed | Oversized | Damage) -> int:
    """The bytes of the file an item stands for."""
    if isinstance(item, Framed):
        return len(item.data)
    return len(item.header) if isinstance(item, Oversized) else item.skipped_bytes


def _released(
    pending: Damage | None, held: list[Framed | Oversized | Damage]
) -> Iterator[Framed | Oversized | Damage]:
    """The damage before a member, then the member's records."""
    if pending is not None:
        yield pending
    yield from held


def _skip_to_magic(raw: _RawSource) -> int:
    """Read up to (not including) the next gzip header; how many bytes were skipped."""
    skipped, tail = 0, b""
    while True:
        chunk = raw.read_some(_CHUNK)
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
