"""What every reader shares: opening a file by path or URI under size limits, and the result
types. A damaged or hostile file never stops a stage: what was read before the damage is
kept, and the damage itself becomes a recorded rejection naming the file."""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import queue
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.budget import DocumentTimeout, time_budget
from pipelines.document import make_document
from pipelines.errors import InputError
from pipelines.recipe import ExtractConfig


@dataclass
class Rejected:
    """A record that was read but cannot become a document, and why."""

    row: dict[str, Any]
    reason: str
    detail: str | None = None
    skipped_bytes: int = 0  # damaged input bytes this rejection stands for (not a document)
    value: float | None = None  # what was measured, against...
    threshold: float | None = None  # ...the limit it broke


@dataclass
class Partial:
    """A piece of a document that needs other records to be complete (a StackExchange answer
    needs its question): grouped by `key` across files and workers, then assembled."""

    key: str
    value: dict[str, Any] = field(default_factory=dict)


@dataclass
class Raw:
    """What a two-phase reader's scan read of one document, left for its render phase (see
    `register_split`): small, picklable, and renderable on any worker."""

    row: dict[str, Any]  # the document as far as the scan made it: id, title, url...
    size: int  # of what is left to render (characters or bytes): batches are cut by it


Record = dict[str, Any] | Rejected | Partial
Reader = Callable[[str, str, BinaryIO, ExtractConfig], Iterator[Record]]
# A two-phase reader's render: one Raw record in, the Record it becomes out.
Render = Callable[[Any, ExtractConfig], Record]


class InputLimitError(InputError):
    """A file or a member of an archive is over a configured size limit."""


class _CountingReader(io.RawIOBase):
    """Counts the bytes read through it (the compressed side of a decompressor)."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _BombGuard(_CountingReader):
    """Stops reading when the output outgrows the compressed input by a suspicious ratio."""

    def __init__(
        self, decompressed: BinaryIO, compressed: _CountingReader, path: str, limits: ExtractConfig
    ):
        super().__init__(decompressed)
        self.compressed = compressed
        self.path = path
        self.limits = limits

    def readinto(self, buffer) -> int:
        n = super().readinto(buffer)
        if self.count > self.limits.compression_check_after_bytes:
            ratio = self.count / max(self.compressed.count, 1)
            if ratio > self.limits.max_compression_ratio:
                raise InputLimitError(
                    f"{self.path}: decompresses {ratio:.0f}x its size (limit "
                    f"{self.limits.max_compression_ratio:.0f}x): a decompression bomb?"
                )
        return n


class ReadAhead(io.RawIOBase):
    """A stream read one chunk ahead in a thread, so that decompressing the next chunk (the
    decompressors let go of the GIL) overlaps the work done on this one. Every read must ask
    for the same size: the chunks, and the error that damage raises, are then exactly those
    of reading the stream itself."""

    def __init__(self, fh: BinaryIO, depth: int = 2):
        super().__init__()
        self.fh = fh
        self.size: int | None = None
        self.ahead: queue.Queue[tuple[bytes, Exception | None]] = queue.Queue(depth)
        self.last: tuple[bytes, Exception | None] | None = None  # EOF or the error, once seen
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.thread is None:
            self.size = size
            self.thread = threading.Thread(target=self._fill, name="read-ahead", daemon=True)
            self.thread.start()
        elif size != self.size:
            raise ValueError(f"reads ahead {self.size} bytes at a time, asked for {size}")
        data, error = self.last or self.ahead.get()
        if error is not None or not data:
            self.last = (data, error)
        if error is not None:
            raise error
        return data

    def _fill(self) -> None:
        while not self.stopping.is_set():
            try:
                chunk: tuple[bytes, Exception | None] = (self.fh.read(self.size), None)
            except Exception as exc:  # raised again in the reading thread, in its turn
                chunk = (b"", exc)
            while not self.stopping.is_set():
                try:
                    self.ahead.put(chunk, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if chunk[1] is not None or not chunk[0]:
                return

    def close(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
        super().close()


def _decompressor(path: str, raw: BinaryIO) -> BinaryIO | None:
    if path.endswith((".gz", ".tgz")):
        return gzip.GzipFile(fileobj=raw)
    if path.endswith(".bz2"):
        return bz2.BZ2File(raw)
    if path.endswith(".xz"):
        return lzma.LZMAFile(raw)
    return None


@contextmanager
def open_input(
    path: str, limits: ExtractConfig | None = None, decompress: bool = True
) -> Iterator[BinaryIO]:
    """Open a local path or URI for reading, decompressing .gz/.bz2/.xz by name."""
    limits = limits or ExtractConfig()
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except FileNotFoundError:
        raise InputError(f"{path}: input file not found") from None
    except Exception as exc:  # a Beam filesystem raises its own types
        raise InputError(f"{path}: cannot open input ({exc})") from None
    with raw:
        counted = _CountingReader(raw)
        buffered = io.BufferedReader(counted, 1 << 20)
        decompressed = _decompressor(path, buffered) if decompress else None
        if decompressed is None:
            yield buffered
        else:
            # Small reads: a damaged stream loses at most one buffer of what came before.
            yield io.BufferedReader(_BombGuard(decompressed, counted, path, limits), 1 << 16)


def safe_member_problem(member: tarfile.TarInfo, limits: ExtractConfig) -> str | None:
    """Why a tar member must not be read, or None. Members are only ever read into memory,
    never extracted to disk, but an unsafe one in an archive is worth recording."""
    name = member.name
    if name.startswith("/") or ".." in name.split("/"):
        return f"unsafe path {name!r}"
    if member.issym() or member.islnk():
        return f"link {name!r} -> {member.linkname!r}"
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        return f"device or fifo {name!r}"
    if member.isfile() and member.size > limits.max_member_bytes:
        return f"{name!r} is {member.size} bytes (limit {limits.max_member_bytes})"
    return None


def tar_files(
    tar: tarfile.TarFile, source: str, origin_of: Callable[[str], str], limits: ExtractConfig
) -> Iterator[tarfile.TarInfo | Rejected]:
    """The regular files of a tar, in order, each checked first: an unsafe member is an
    `extract:unsafe_tar_member` rejection with the origin `origin_of(member name)`; folders
    are passed over."""
    for member in tar:
        problem = safe_member_problem(member, limits)
        if problem:
            doc = make_document(source, origin_of(member.name), "")
            yield Rejected(doc, "extract:unsafe_tar_member", problem)
        elif member.isfile():
            yield member


# What a damaged file raises while being read: decompressors, parsers, archives, warcio.
def _damage_errors() -> tuple[type[BaseException], ...]:
    from py7zr.exceptions import ArchiveError, PasswordRequired
    from warcio.recordloader import ArchiveLoadFailed

    return (
        OSError,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        ValueError,
        SyntaxError,
        tarfile.TarError,
        ArchiveLoadFailed,
        ArchiveError,
        PasswordRequired,
        InputError,
    )


def file_rejection(path: str, source: str, reason: str, detail: str) -> Rejected:
    """The record that stands for a damaged file in the rejects."""
    name = base_name(path)
    return Rejected(make_document(source, f"{name}#file", ""), reason, f"{name}: {detail}")


def read_file(
    path: str, source: str, reader: Reader, limits: ExtractConfig | None = None
) -> Iterator[Record]:
    """Run a reader over one file. Records read before any damage are kept; the damage
    becomes one `extract:damaged_file` (or `extract:too_large`) rejection naming the file."""
    limits = limits or ExtractConfig()
    errors = _damage_errors()
    produced = 0
    try:
        # Readers of per-record gzip (WARC) decompress themselves, record by record.
        with open_input(path, limits, not getattr(reader, "decompresses", False)) as fh:
            if not fh.peek(1):
                yield file_rejection(path, source, "extract:empty_file", "empty")
                return
            for record in reader(path, source, fh, limits):
                produced += 1
                yield record
        if not produced:
            yield file_rejection(path, source, "extract:empty_file", "no records in the file")
    except InputLimitError as exc:
        yield file_rejection(path, source, "extract:too_large", str(exc).split(": ", 1)[-1])
    except errors as exc:
        kind = _compression_name(path)
        message = str(exc).split(": ", 1)[-1] if isinstance(exc, InputError) else str(exc)
        message = escaped(message.encode(), 300)
        detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        yield file_rejection(path, source, "extract:damaged_file", f"{kind}{detail}")
    except Exception as exc:  # noqa: BLE001 (a reader's own failure costs the file, not the stage)
        logging.getLogger(__name__).warning("reading %s failed", path, exc_info=True)
        yield file_rejection(path, source, "extract:reader_error", _failure(exc))


def _failure(exc: Exception) -> str:
    """A reader's own failure as a rejection's detail: its type and a printable message."""
    return f"{type(exc).__name__}: {escaped(str(exc).encode(), 300)}"


def _compression_name(path: str) -> str:
    for suffix, name in (
        (".gz", "gzip "),
        (".tgz", "gzip "),
        (".bz2", "bzip2 "),
        (".xz", "xz "),
        (".7z", "7z "),
    ):
        if path.endswith(suffix):
            return name
    return ""


def too_slow(doc: dict[str, Any], exc: DocumentTimeout) -> Rejected:
    """The rejection of a document whose cleaning ran past its time budget."""
    return Rejected(doc, "extract:too_slow", str(exc), value=exc.seconds, threshold=exc.limit_s)


def cleaned(
    doc: dict[str, Any], limits: ExtractConfig, source_size: int, clean: Callable[[], str]
) -> dict[str, Any] | Rejected:
    """The document with its text from `clean()`, or its rejection when cleaning runs past
    the time budget (extract:too_slow) or the text outgrows its source of `source_size`
    characters or bytes more than `max_growth` times (extract:too_much_growth)."""
    try:
        with time_budget(limits.max_document_seconds):
            text = clean()
    except DocumentTimeout as exc:
        return too_slow(doc, exc)
    growth = len(text) / max(source_size, 1)
    if growth > limits.max_growth and len(text) > 1000:
        detail = f"{len(text)} characters from {source_size} ({growth:.1f}x)"
        return Rejected(
            doc, "extract:too_much_growth", detail, value=growth, threshold=limits.max_growth
        )
    doc["text"] = text
    return doc


def document_problem(doc: dict[str, Any], limits: ExtractConfig) -> tuple[str, str] | None:
    """Why an extracted document cannot go on, as (reason, detail), or None."""
    text = doc.get("text") or ""
    if not text.strip():
        return "extract:empty_text", ""
    if (
        len(text) > limits.max_document_bytes // 4
        and len(text.encode("utf-8")) > limits.max_document_bytes
    ):
        return "extract:too_large", f"over {limits.max_document_bytes} bytes"
    replaced = text.count("\ufffd")
    if replaced and replaced / len(text) > limits.max_invalid_char_fraction:
        return "extract:invalid_utf8", f"{replaced} of {len(text)} characters undecodable"
    return None


def escaped(data: bytes, limit: int = 60) -> str:
    """A short printable excerpt of raw bytes: never raw binary in a log line."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    quoted = ascii(text)[1:-1]
    return quoted + ("..." if len(data) > limit else "")


def base_name(path: str) -> str:
    """The file name without folders: origins must not depend on where the input lives."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def bounded_lines(fh: BinaryIO, max_bytes: int) -> Iterator[bytes | None]:
    """Lines of a binary stream; a line longer than `max_bytes` comes out as None, read
    through in chunks so it never has to fit in memory."""
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = fh.readline(1 << 20)
            yield None
            continue
        yield line


def read_capped(stream: BinaryIO, max_bytes: int) -> bytes | None:
    """All of a stream, or None when it holds more than `max_bytes` (the rest is not read)."""
    data = stream.read(max_bytes + 1)
    return None if len(data) > max_bytes else data


def decode_text(data: bytes) -> str:
    """UTF-8 with invalid bytes replaced (U+FFFD); route() rejects documents made mostly of
    replacements."""
    return data.decode("utf-8", "replace")


READERS: dict[str, Reader] = {}
# Formats read in two phases: (scan, render). The scan reads a file cheaply and yields Raw
# records among its Records; each Raw record is rendered on its own, so the expensive part
# of one large file can be spread over workers.
SPLIT_READERS: dict[str, tuple[Reader, Render]] = {}
# Formats whose readers emit Partial records: the function that makes documents of the
# partial records that share a key (e.g. a StackExchange question and its answers).
ASSEMBLERS: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    """Registers a reader under its format name (the recipe's `format`)."""

    def wrap(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn

    return wrap


def register_split(name: str, render: Render) -> Callable[[Reader], Reader]:
    """Registers the scan of a two-phase reader and its `render`; READERS gets the two run
    one after the other, for callers that read a file in one go, with a failing render
    costing its document alone, as it does when the two phases run apart."""

    def wrap(scan: Reader) -> Reader:
        def read(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
            for record in scan(path, source, fh, limits):
                if isinstance(record, Raw):
                    yield from render_batch(render, [record], limits)
                else:
                    yield record

        read.decompresses = getattr(scan, "decompresses", False)  # type: ignore[attr-defined]
        READERS[name] = read
        SPLIT_READERS[name] = (scan, render)
        return scan

    return wrap


# A two-phase reader's raw records are rendered in batches of at most this many, or about
# this much text: small enough to spread one large file evenly over the workers.
RENDER_BATCH_RECORDS, RENDER_BATCH_SIZE = 256, 1 << 20


def read_or_scan(
    path: str, source: str, fmt: str, limits: ExtractConfig, split: bool = True
) -> Iterator[Record | list[Raw]]:
    """The records of one file in its format's reader; for a format read in two phases (and
    `split`), only its scan's, with the Raw records gathered in lists for `render_batch`."""
    if fmt not in SPLIT_READERS or not split:
        return read_file(path, source, READERS[fmt], limits)
    records = read_file(path, source, SPLIT_READERS[fmt][0], limits)
    return batched(records, RENDER_BATCH_RECORDS, RENDER_BATCH_SIZE)


def batched(records: Iterable[Any], max_records: int, max_size: int) -> Iterator[Any]:
    """Records as they come, except Raw ones: those are gathered into lists of at most
    `max_records` records and `max_size` in all (a larger record goes alone), each list
    passed on as soon as it is full, so that a scan never holds more than one."""
    batch: list[Raw] = []
    size = 0
    for record in records:
        if not isinstance(record, Raw):
            yield record
            continue
        if batch and (len(batch) == max_records or size + record.size > max_size):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record.size
    if batch:
        yield batch


def render_batch(render: Render, batch: list[Raw], limits: ExtractConfig) -> Iterator[Record]:
    """The records a batch of Raw records becomes. A render that fails costs its document
    (extract:reader_error), not the rest of the batch."""
    for raw in batch:
        try:
            yield render(raw, limits)
        except Exception as exc:  # noqa: BLE001 (as in read_file: a reader's bug costs its input)
            logging.getLogger(__name__).warning(
                "rendering %s failed", raw.row["origin"], exc_info=True
            )
            yield Rejected(raw.row, "extract:reader_error", _failure(exc))


def register_assembler(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers how a format's Partial records are assembled into documents."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        ASSEMBLERS[name] = fn
        return fn

    return wrap
