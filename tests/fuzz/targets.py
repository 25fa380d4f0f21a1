"""What fuzzing checks for each of the ten input formats, and the real files it starts from.

One input is a file of a format, written under the name a real dump has, and read the way
the extract stage reads it. Whatever the bytes, reading must end (no hang), raise nothing,
give at least one record, and give records the stage can store: every document and every
rejection converts to the stage's Arrow schemas, so that kept + rejected accounts for every
record read. A reader's own failure, which the stage would record as extract:reader_error
and go on, counts as a finding too.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
FIXTURES = ROOT.parent / "shared" / "fixtures"
MAX_SEED_BYTES = 200_000  # seeds are cut to this: small inputs mutate and run faster


@dataclass(frozen=True)
class Format:
    name: str  # the reader's format name
    file_name: str  # what the input file is called (readers look at names)
    compress: Callable[[bytes], bytes]  # how a real file of the format is compressed
    seeds: Callable[[], Iterator[bytes]]  # real content, uncompressed


def _plain(data: bytes) -> bytes:
    return data


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _gzip_members(data: bytes) -> bytes:
    """A WARC gzipped record by record, as crawlers write it."""
    records = data.split(b"\r\n\r\nWARC/")
    pieces = [records[0]] + [b"WARC/" + r for r in records[1:]]
    ends = [p + b"\r\n\r\n" for p in pieces[:-1]] + pieces[-1:]
    return b"".join(gzip.compress(p, mtime=0) for p in ends)


def _bz2(data: bytes) -> bytes:
    return bz2.compress(data)


def _files(*patterns: str) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        base, _, glob = pattern.partition(":")
        root = SAMPLES if base == "samples" else FIXTURES
        if root.is_dir():
            found += sorted(root.glob(glob))
    return found


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    return data


def _cut(data: bytes, marker: bytes, closing: bytes = b"") -> bytes:
    """The start of a dump up to a whole element, then its closing tag."""
    if len(data) <= MAX_SEED_BYTES:
        return data
    end = data.rfind(marker, 0, MAX_SEED_BYTES)
    return data[: end + len(marker)] + closing if end > 0 else data[:MAX_SEED_BYTES]


def _warc_seeds(*patterns: str) -> Callable[[], Iterator[bytes]]:
    def seeds() -> Iterator[bytes]:
        for path in _files(*patterns):
            yield _cut(_decompressed(path), b"\r\n\r\n")

    return seeds


def _lines(*patterns: str) -> Callable[[], Iterator[bytes]]:
    def seeds() -> Iterator[bytes]:
        for path in _files(*patterns):
            yield _cut(_decompressed(path), b"\n")

    return seeds


def _xml(marker: bytes, closing: bytes, *patterns: str) -> Callable[[], Iterator[bytes]]:
    def seeds() -> Iterator[bytes]:
        for path in _files(*patterns):
            yield _cut(_decompressed(path), marker, closing)

    return seeds


def _tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _arxiv_seeds() -> Iterator[bytes]:
    for path in _files("samples:arxiv/*", "fixtures:arxiv/*.tar", "fixtures:arxiv/*.gz"):
        data = _decompressed(path)
        if len(data) <= 4 * MAX_SEED_BYTES:
            yield data


def _books_seeds() -> Iterator[bytes]:
    texts = {p.name: p.read_bytes()[:20_000] for p in _files("samples:gutenberg/*.txt")}
    yield _tar_of({f"books/{name}": data for name, data in texts.items()})


def _gutenberg_seeds() -> Iterator[bytes]:
    for path in _files("samples:gutenberg/*.txt", "fixtures:gutenberg/raw/*.txt"):
        data = path.read_bytes()
        yield data[: MAX_SEED_BYTES // 2] + data[-MAX_SEED_BYTES // 2 :]


def _github_seeds() -> Iterator[bytes]:
    sources = ROOT / "pipelines" / "sources"
    members = {f"repo-0123abc/{p.name}": p.read_bytes() for p in sorted(sources.glob("*.py"))[:4]}
    members["repo-0123abc/LICENSE"] = b"MIT License\n\nPermission is hereby granted, free of charge"
    yield _tar_of(members)


def _jsonl_seeds() -> Iterator[bytes]:
    for path in _files("samples:c4/*.json.gz"):
        rows = [json.loads(line) for line in _decompressed(path).splitlines()[:30]]
        yield b"".join(
            json.dumps({"id": f"doc-{i}", "text": r["text"], "meta": {"n": i}}).encode() + b"\n"
            for i, r in enumerate(rows)
        )


FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format(
            "wet",
            "CC-MAIN-2020-05-00000.warc.wet.gz",
            _gzip_members,
            _warc_seeds("samples:commoncrawl/*.wet.gz", "fixtures:commoncrawl/*.wet.gz"),
        ),
        Format(
            "warc",
            "CC-MAIN-2020-34-00000.warc.gz",
            _gzip_members,
            _warc_seeds("fixtures:commoncrawl/*.warc.gz", "samples:commoncrawl/*0.warc.gz"),
        ),
        Format(
            "c4", "c4-train.00000-of-01024.json.gz", _gzip, _lines("samples:c4/*", "fixtures:c4/*")
        ),
        Format("jsonl", "documents.jsonl", _plain, _jsonl_seeds),
        Format(
            "mediawiki",
            "enwiki-20200101-pages-articles.xml.bz2",
            _bz2,
            _xml(
                b"</page>", b"\n</mediawiki>\n", "samples:wikipedia/*.bz2", "fixtures:wikipedia/*"
            ),
        ),
        Format(
            "stackexchange",
            "fuzz.stackexchange.com-Posts.xml",
            _plain,
            _xml(
                b"/>",
                b"\n</posts>\n",
                "samples:stackexchange/*/Posts.xml",
                "fixtures:stackexchange/*.xml",
            ),
        ),
        Format("gutenberg", "12345.txt", _plain, _gutenberg_seeds),
        Format("books-text", "books3-part.tar", _plain, _books_seeds),
        Format("arxiv", "2001.00001.tar.gz", _gzip, _arxiv_seeds),
        Format("github", "repo-0123abc.tar.gz", _gzip, _github_seeds),
    ]
}


def encode(fmt: Format, data: bytes) -> bytes:
    """An input from fuzzed bytes: the first byte says whether the rest is the file as it is
    (compressed or not: readers look at the bytes) or content to compress as real files are
    (so that mutations reach the parsers behind the decompressor)."""
    if not data:
        return b""
    return fmt.compress(data[1:]) if data[0] % 2 else data[1:]


def check(fmt: Format, data: bytes, workdir: str) -> int:
    """Read one input as the extract stage does; raise AssertionError (or whatever escapes a
    reader) on a finding. Returns the number of records."""
    import pyarrow as pa

    from pipelines.document import document_schema, reject_schema
    from pipelines.recipe import ExtractConfig
    from pipelines.sources import ASSEMBLERS, READERS, Partial, Rejected, read_file
    from pipelines.stages.extract import DOCS, REJECTS, route

    path = os.path.join(workdir, fmt.file_name)
    with open(path, "wb") as out:
        out.write(data)
    limits = ExtractConfig(max_document_seconds=30)
    records = list(read_file(path, "s", READERS[fmt.name], limits))
    assert records, "no record at all, not even a rejection of the file"
    groups: dict[str, list] = collections.defaultdict(list)
    for record in records:
        assert isinstance(record, dict | Rejected | Partial), type(record)
        if isinstance(record, Partial):
            groups[record.key].append(record.value)
    # A reader's own failure is caught (it costs the file, not the stage), but it is a bug.
    failed = [
        r.detail for r in records if isinstance(r, Rejected) and r.reason == "extract:reader_error"
    ]
    assert not failed, failed
    final = [r for r in records if not isinstance(r, Partial)]
    for key, parts in groups.items():
        final.extend(ASSEMBLERS[fmt.name]("s", key, parts, limits))
    kept, rejected = [], []
    for output in route(final, limits):
        tag = getattr(output, "tag", DOCS)
        (rejected if tag == REJECTS else kept).append(getattr(output, "value", output))
    assert len(kept) + len(rejected) == len(final)
    # What the stage writes: every row fits the Parquet schemas.
    pa.Table.from_pylist(kept, schema=document_schema("extract"))
    pa.Table.from_pylist(rejected, schema=reject_schema("extract"))
    for row in kept:
        assert isinstance(row["text"], str) and row["text"].strip() and row["id"].startswith("s/")
    return len(final)


def seed_corpus(fmt: Format, directory: str) -> int:
    """Write the format's real seeds (both encodings) into a corpus folder."""
    os.makedirs(directory, exist_ok=True)
    count = 0
    for index, seed in enumerate(fmt.seeds()):
        # As the file is (compressed as real files are), and as content to compress.
        for mode, data in ((0, fmt.compress(seed)), (1, seed)):
            with open(os.path.join(directory, f"seed-{index}-{mode}"), "wb") as out:
                out.write(bytes([mode]) + data)
            count += 1
    return count


def temporary_workdir() -> str:
    return tempfile.mkdtemp(prefix="llama-recipe-fuzz-")
