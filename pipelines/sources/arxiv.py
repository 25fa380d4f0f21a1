"""ArXiv LaTeX sources (.tar.gz, .tar, or one gzipped .tex), cleaned as the paper describes:
everything before the first section and the bibliography removed, comments removed."""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from pipelines.document import make_document
from pipelines.sources.base import Record, Rejected, base_name, register

_COMMENT_RE = re.compile(r"(?<!\\)%.*$", re.MULTILINE)
_SECTION_RE = re.compile(r"\\(?:section|chapter)\*?\s*[\[{]")
_BIBLIOGRAPHY_RE = re.compile(
    r"\\begin\{thebibliography\}|\\bibliography\{|\\printbibliography|\\end\{document\}"
)
_TITLE_RE = re.compile(r"\\title\s*(?:\[[^\]]*\])?\s*\{((?:[^{}]|\{[^{}]*\})*)\}", re.DOTALL)


def clean_latex(source: str) -> str:
    """The body of a LaTeX paper from its first section up to the bibliography, no comments."""
    text = _COMMENT_RE.sub("", source)
    section = _SECTION_RE.search(text)
    if section:
        text = text[section.start() :]
    end = _BIBLIOGRAPHY_RE.search(text)
    if end:
        text = text[: end.start()]
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _tex_files(data: bytes) -> dict[str, str]:
    """The .tex members of a submission (a tar) or the single .tex file it is."""
    if len(data) > 262 and data[257:262] == b"ustar":
        files = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name.endswith(".tex") and not name.startswith("._"):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        files[member.name] = extracted.read().decode("utf-8", "replace")
        return files
    return {"main.tex": data.decode("utf-8", "replace")}


@register("arxiv")
def read_arxiv(path: str, source: str, fh: BinaryIO) -> Iterator[Record]:
    name = base_name(path)
    paper_id = re.sub(r"(\.tar)?(\.gz|\.tgz|\.tar)$", "", name)
    files = _tex_files(fh.read())
    doc = make_document(source, f"arxiv:{paper_id}", "", url=f"https://arxiv.org/abs/{paper_id}")
    main = [text for text in files.values() if "\\documentclass" in text]
    if not main:
        yield Rejected(doc, "extract:no_latex_main_file", ",".join(sorted(files)) or "no .tex")
        return
    title = _TITLE_RE.search(main[0])
    doc["title"] = " ".join(title.group(1).split()) if title else None
    doc["text"] = clean_latex(main[0])
    yield doc
