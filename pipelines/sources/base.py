"""What every reader shares: opening a file by path or URI, and the result types."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.errors import InputError


@dataclass
class Rejected:
    """A record that was read but cannot become a document, and why."""

    row: dict[str, Any]
    reason: str
    detail: str | None = None


@dataclass
class Partial:
    """A piece of a document that needs other records to be complete (a StackExchange answer
    needs its question): grouped by `key` across files and workers, then assembled."""

    key: str
    value: dict[str, Any] = field(default_factory=dict)


Record = dict[str, Any] | Rejected | Partial
Reader = Callable[[str, str, BinaryIO], Iterator[Record]]


@contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open a local path or URI for reading, decompressing .gz/.bz2/.xz by name."""
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except FileNotFoundError:
        raise InputError(f"{path}: input file not found") from None
    except Exception as exc:  # a Beam filesystem raises its own types
        raise InputError(f"{path}: cannot open input ({exc})") from None
    with raw:
        if path.endswith(".gz") or path.endswith(".tgz"):
            yield gzip.GzipFile(fileobj=raw)
        elif path.endswith(".bz2"):
            yield bz2.BZ2File(raw)
        elif path.endswith(".xz"):
            yield lzma.LZMAFile(raw)
        else:
            yield raw


# Errors a damaged compressed or archive file raises while being read.
CORRUPT_INPUT_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


def read_file(path: str, source: str, reader: Reader) -> Iterator[Record]:
    """Run a reader over one file; turn a damaged file into one clear InputError."""
    try:
        with open_input(path) as fh:
            yield from reader(path, source, fh)
    except InputError:
        raise
    except CORRUPT_INPUT_ERRORS as exc:
        kind = _compression_name(path)
        raise InputError(f"{path}: corrupt or truncated {kind}file ({exc})") from None


def _compression_name(path: str) -> str:
    for suffix, name in ((".gz", "gzip "), (".tgz", "gzip "), (".bz2", "bzip2 "), (".xz", "xz ")):
        if path.endswith(suffix):
            return name
    return ""


def base_name(path: str) -> str:
    """The file name without folders: origins must not depend on where the input lives."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def text_lines(fh: BinaryIO) -> Iterator[str]:
    """Lines of a UTF-8 text stream, invalid bytes replaced rather than fatal."""
    yield from io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")


READERS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn

    return wrap
