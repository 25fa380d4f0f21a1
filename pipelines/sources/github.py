"""GitHub: files as the public BigQuery dataset exports them (JSON lines with `content`,
`repo_name`, `path`, `license`), or repository archives (.tar/.tar.gz, licence read from the
LICENSE/COPYING file). Licence headers are removed and low-quality files dropped as the
paper describes (filters/code.py); the licence itself is checked against the source's
`licenses` by the extract stage."""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from filters.code import check_code, license_family, license_from_text, strip_license_header
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
from pipelines.sources.jsonl import read_json_lines, string_field, with_text

# Files worth training on: source code and the text that documents it.
CODE_SUFFIXES = frozenset(
    ".c .cc .cpp .cxx .h .hpp .cs .go .java .js .jsx .ts .tsx .py .rb .rs .php .scala .kt "
    ".swift .m .mm .sh .bash .pl .lua .r .jl .hs .ml .ex .exs .erl .clj .sql .html .css "
    ".md .rst .tex .yaml .yml .toml .json .xml .dart .vue .f90 .cmake .mk".split()
)
LICENSE_FILES = ("license", "license.txt", "license.md", "copying", "copying.txt", "licence")


def code_document(
    source: str,
    origin: str,
    repo: str,
    path: str,
    code: str,
    license_name: str | None,
    limits: ExtractConfig,
) -> Record:
    doc = make_document(source, origin, "", title=path)
    meta = {"repo_name": repo, "path": path, "license": license_family(license_name)}
    doc["meta"] = json.dumps({k: v for k, v in meta.items() if v}, sort_keys=True)
    try:
        with time_budget(limits.max_document_seconds):
            body = strip_license_header(code)
            verdict = check_code(body)
    except DocumentTimeout as exc:
        return too_slow(doc, exc)
    if not verdict.keep:
        return Rejected(doc, f"extract:{verdict.rule}", verdict.detail)
    doc["text"] = body
    return doc


def _read_rows(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    def to_document(origin: str, obj: dict[str, Any]) -> Record:
        repo, file_path = string_field(obj, "repo_name") or "", string_field(obj, "path") or ""
        if repo and file_path:
            origin = f"{repo}/{file_path}"
        checked = with_text(make_document(source, origin, "", title=file_path), obj, "content")
        if isinstance(checked, Rejected):
            return checked
        return code_document(
            source, origin, repo, file_path, checked["text"], string_field(obj, "license"), limits
        )

    return read_json_lines(path, source, fh, limits, to_document)


def _relative(name: str) -> str:
    """A member's path in the repository: GitHub archives put everything under one
    <repo>-<sha>/ folder."""
    return name.split("/", 1)[1] if "/" in name else name


def _read_archive(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    repo = base_name(path).removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
    files: list[tuple[str, str]] = []
    license_name = None
    with tarfile.open(fileobj=fh, mode="r|") as tar:
        for member in tar_files(tar, source, lambda name: f"{repo}/{_relative(name)}", limits):
            if isinstance(member, Rejected):
                yield member
                continue
            relative = _relative(member.name)
            lowered = relative.lower()
            is_license = lowered in LICENSE_FILES
            if not is_license and posixpath.splitext(lowered)[1] not in CODE_SUFFIXES:
                continue
            extracted = tar.extractfile(member)
            data = read_capped(extracted, limits.max_document_bytes) if extracted else b""
            if data is None or b"\0" in data[:8000]:
                continue  # too large for a source file, or binary
            text = decode_text(data)
            if is_license:
                license_name = license_from_text(text) or "unknown"
            else:
                files.append((relative, text))
    for relative, text in files:
        yield code_document(
            source, f"{repo}/{relative}", repo, relative, text, license_name, limits
        )


@register("github")
def read_github(path: str, source: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[Record]:
    if base_name(path).endswith((".tar", ".tar.gz", ".tgz")):
        return _read_archive(path, source, fh, limits)
    return _read_rows(path, source, fh, limits)
