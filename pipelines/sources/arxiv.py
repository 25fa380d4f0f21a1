"""ArXiv LaTeX sources in every form arXiv ships them: its bulk source tars (a tar of
per-paper `.gz` members), a per-paper `.tar.gz` or `.tar`, or one gzipped `.tex`. Each paper
is cleaned by pipelines.sources.latex as the paper describes."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import (
    Record,
    Rejected,
    _CountingReader,
    base_name,
    cleaned,
    decode_text,
    read_capped,
    register,
    tar_files,
)
from pipelines.sources.latex import clean_paper, find_main_file

_SUFFIX_RE = re.compile(r"(\.tar)?(\.gz|\.tgz|\.tar)$")
_TEX_SUFFIXES = (".tex", ".ltx", ".latex")
# In a bulk tar, a paper with no source is `<yymm>/<arXiv id>.pdf`.
_ARXIV_PDF_RE = re.compile(r"^(\d{4}\.\d{4,5}(v\d+)?|[a-z][a-z.\-]*\d{7}(v\d+)?)\.pdf$")


def _is_tar(head: bytes) -> bool:
    return len(head) > 262 and head[257:262] == b"ustar"


def _paper(source: str, paper_id: str, files: dict[str, str], limits: ExtractConfig) -> Record:
    doc = make_document(source, f"arxiv:{paper_id}", "", url=f"https://arxiv.org/abs/{paper_id}")
    main = find_main_file(files)
    if main is None:
        listing = ",".join(sorted(files)) or "no .tex file"
        return Rejected(doc, "extract:no_latex_main_file", listing[:500])
    doc["meta"] = json.dumps({"main_file": main, "tex_files": len(files)})

    size = sum(len(text) for text in files.values())

    def clean() -> str:
        text, doc["title"] = clean_paper(files, main, max_chars=int(limits.max_growth * size))
        return text

    return cleaned(doc, limits, size, clean)


def _tex_members(
    tar: tarfile.TarFile, source: str, paper_id: str, limits: ExtractConfig
) -> Iterator[tuple[str, str] | Rejected]:
    for member in tar_files(tar, source, lambda name: f"arxiv:{paper_id}:{name}", limits):
        if isinstance(member, Rejected):
            yield member
        elif member.name.endswith(_TEX_SUFFIXES) and not base_name(member.name).startswith("._"):
            extracted = tar.extractfile(member)
            if extracted is not None:
                yield member.name.lstrip("./"), decode_text(extracted.read())


def _paper_from_bytes(
    source: str, paper_id: str, data: bytes, limits: ExtractConfig
) -> Iterator[Record]:
    """One paper from its source as arXiv stores it: a tar, a single .tex, or a PDF."""
    if _is_tar(data):
        files: dict[str, str] = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for item in _tex_members(tar, source, paper_id, limits):
                if isinstance(item, Rejected):
                    yield item
                else:
                    files[item[0]] = item[1]
        yield _paper(source, paper_id, files, limits)
    elif data.startswith(b"%PDF"):
        doc = make_document(source, f"arxiv:{paper_id}", "")
        yield Rejected(doc, "extract:no_latex_source", "the submission is a PDF")
    else:
        yield _paper(source, paper_id, {"main.tex": decode_text(data)}, limits)


@register("arxiv")
def read_arxiv(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    name = base_name(path)
    paper_id = _SUFFIX_RE.sub("", name)
    stream = io.BufferedReader(_CountingReader(fh), 1 << 20)
    if not _is_tar(stream.peek(512)[:512]):
        data = read_capped(stream, limits.max_member_bytes)
        if data is None:
            doc = make_document(source, f"arxiv:{paper_id}", "")
            yield Rejected(doc, "extract:too_large", f"over {limits.max_member_bytes} bytes")
            return
        yield from _paper_from_bytes(source, paper_id, data, limits)
        return
    # A tar: either one paper's files, or arXiv's bulk tar of per-paper .gz members.
    files: dict[str, str] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar_files(tar, source, lambda name: f"arxiv:{paper_id}:{name}", limits):
            if isinstance(member, Rejected):
                yield member
                continue
            member_id = _SUFFIX_RE.sub("", base_name(member.name))
            if base_name(member.name).startswith("._"):
                pass  # macOS metadata beside each file
            elif member.name.endswith(".gz"):
                extracted = tar.extractfile(member)
                data = read_capped(gzip.GzipFile(fileobj=extracted), limits.max_member_bytes)
                if data is None:
                    doc = make_document(source, f"arxiv:{member_id}", "")
                    yield Rejected(
                        doc,
                        "extract:too_large",
                        f"{member.name} over {limits.max_member_bytes} bytes",
                    )
                else:
                    yield from _paper_from_bytes(source, member_id, data, limits)
            elif _ARXIV_PDF_RE.match(base_name(member.name)):
                doc = make_document(source, f"arxiv:{member_id}", "")
                yield Rejected(doc, "extract:no_latex_source", "the submission is a PDF")
            elif member.name.endswith(_TEX_SUFFIXES):
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[member.name.lstrip("./")] = decode_text(extracted.read())
    if files:
        yield _paper(source, paper_id, files, limits)
