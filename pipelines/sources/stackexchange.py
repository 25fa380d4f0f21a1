"""StackExchange `Posts.xml` dumps: one document per question with its answers sorted by score
(highest first), HTML tags removed, as the paper describes.

A question and its answers can lie far apart in a dump, so each post is emitted as a Partial
keyed by its thread and the threads are assembled after a GroupByKey, never in one worker's
memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO
from xml.etree.ElementTree import ParseError

import py7zr
from defusedxml.ElementTree import fromstring
from resiliparse.extract.html2text import extract_plain_text

from pipelines.document import make_document
from pipelines.errors import InputError
from pipelines.recipe import ExtractConfig, is_uri
from pipelines.sources.base import (
    InputLimitError,
    Partial,
    Record,
    Rejected,
    base_name,
    cleaned,
    register,
    register_assembler,
)
from pipelines.sources.xml_records import (
    Prolog,
    Skipped,
    check_prolog,
    row_end,
    split_elements,
    xml_damage,
)

QUESTION, ANSWER = "1", "2"


def site_of(path: str) -> str:
    """The site a dump file belongs to: `<site>/Posts.xml`, `<site>-Posts.xml`,
    `<site>.7z` or `<site>-Posts.7z` (the names archive.org uses)."""
    parts = path.rstrip("/").split("/")
    name = parts[-1]
    if name.lower() == "posts.xml" and len(parts) > 1:
        return parts[-2]  # <site>/Posts.xml as the dump unpacks
    return name.removesuffix(".7z").removesuffix(".xml").split("-Posts", 1)[0]


def _tags(raw: str | None) -> list[str]:
    """Tags as the dumps store them: `<a><b>` (older) or `|a|b|` (newer)."""
    if not raw:
        return []
    return [t for t in raw.replace("<", "|").replace(">", "|").split("|") if t]


@contextmanager
def _posts_xml(path: str, fh: BinaryIO, limits: ExtractConfig) -> Iterator[BinaryIO]:
    """The Posts.xml stream of a dump: the file itself, or extracted from a .7z archive to a
    temporary file (7z needs random access; the XML is still parsed as a stream)."""
    if not path.endswith(".7z"):
        yield fh
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = path
        if is_uri(path) and not path.startswith("file://"):
            local = os.path.join(tmp, "archive.7z")
            with open(local, "wb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
        with py7zr.SevenZipFile(local.removeprefix("file://"), mode="r") as archive:
            members = [i for i in archive.list() if base_name(i.filename).lower() == "posts.xml"]
            if not members:
                raise InputError(f"{path}: no Posts.xml in the archive")
            member = members[0]
            if member.uncompressed > limits.max_member_bytes:
                raise InputLimitError(
                    f"{path}: Posts.xml is {member.uncompressed} bytes "
                    f"(limit {limits.max_member_bytes})"
                )
            archive.extract(path=tmp, targets=[member.filename])
        with open(os.path.join(tmp, member.filename), "rb") as xml:
            yield xml


def html_to_text(html: str) -> str:
    return extract_plain_text(html, main_content=False, preserve_formatting=True).strip()


@register("stackexchange")
def read_stackexchange(
    path: str, source: str, fh: BinaryIO, limits: ExtractConfig
) -> Iterator[Record]:
    site = site_of(path)
    name = base_name(path)
    with _posts_xml(path, fh, limits) as xml:
        yield from _rows(xml, source, site, name, limits)


def _rows(
    xml: BinaryIO, source: str, site: str, name: str, limits: ExtractConfig
) -> Iterator[Record]:
    rows = split_elements(xml, b"<row", row_end, (b"</posts>",), 2 * limits.max_document_bytes)
    for piece in rows:
        if isinstance(piece, Prolog):
            check_prolog(piece.data)
            continue
        if isinstance(piece, Skipped):
            yield xml_damage(source, name, piece)
            continue
        try:
            post = dict(fromstring(piece.data).attrib)
        except ParseError as exc:
            what = f"a <row> that does not parse ({exc})"
            yield xml_damage(source, name, Skipped(piece.offset, len(piece.data), what))
            continue
        kind = post.get("PostTypeId")
        post_id = post.get("Id", "")
        if kind == QUESTION:
            yield Partial(f"{site}:{post_id}", {"site": site, **post})
        elif kind == ANSWER and post.get("ParentId"):
            yield Partial(f"{site}:{post['ParentId']}", {"site": site, **post})
        else:
            doc = make_document(source, f"{site}:post:{post_id}", "")
            yield Rejected(doc, "extract:not_question_or_answer", f"{name} PostTypeId={kind}")


def _number(value: Any) -> int:
    """A score or id as the dumps write it; anything else counts as 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@register_assembler("stackexchange")
def assemble_thread(
    source: str, key: str, posts: Iterable[dict[str, Any]], limits: ExtractConfig
) -> Iterator[Record]:
    """One document from a question and its answers."""
    posts = list(posts)
    questions = [p for p in posts if p.get("PostTypeId") == QUESTION]
    answers = sorted(
        (p for p in posts if p.get("PostTypeId") == ANSWER),
        key=lambda p: (-_number(p.get("Score")), _number(p.get("Id"))),
    )
    site = posts[0]["site"]
    if not questions:
        doc = make_document(source, key, "")
        yield Rejected(doc, "extract:answers_without_question", f"{len(answers)} answers")
        return
    question = questions[0]
    bodies = [question.get("Body") or ""] + [a.get("Body") or "" for a in answers]

    def text() -> str:
        parts = [question.get("Title", "")] + [html_to_text(body) for body in bodies]
        return "\n\n".join(p for p in parts if p)

    meta = {
        "site": site,
        "tags": _tags(question.get("Tags")),
        "question_score": question.get("Score"),
        "answers": len(answers),
        "license": question.get("ContentLicense"),
    }
    doc = make_document(
        source,
        key,
        "",
        url=f"https://{site}/questions/{question.get('Id')}",
        title=question.get("Title"),
        timestamp=question.get("CreationDate"),
        meta={k: v for k, v in meta.items() if v is not None},
    )
    yield cleaned(doc, limits, sum(map(len, bodies)) + len(question.get("Title", "")), text)


# A .7z archive is opened by py7zr, which needs the file as it is on disk.
read_stackexchange.decompresses = True  # type: ignore[attr-defined]
