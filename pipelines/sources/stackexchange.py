"""StackExchange `Posts.xml` dumps: one document per question with its answers sorted by score
(highest first), HTML tags removed, as the paper describes.

A question and its answers can lie far apart in a dump, so each post is emitted as a Partial
keyed by its thread and the threads are assembled after a GroupByKey, never in one worker's
memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from defusedxml.ElementTree import iterparse
from resiliparse.extract.html2text import extract_plain_text

from pipelines.document import make_document
from pipelines.recipe import ExtractConfig
from pipelines.sources.base import Partial, Record, Rejected, base_name, register

QUESTION, ANSWER = "1", "2"


def _site(path: str) -> str:
    parts = path.rstrip("/").split("/")
    name = parts[-1]
    if name.lower() == "posts.xml" and len(parts) > 1:
        return parts[-2]  # <site>/Posts.xml as the dump unpacks
    return name.split("-Posts", 1)[0].removesuffix(".xml")


def html_to_text(html: str) -> str:
    return extract_plain_text(html, main_content=False, preserve_formatting=True).strip()


@register("stackexchange")
def read_stackexchange(
    path: str, source: str, fh: BinaryIO, limits: ExtractConfig
) -> Iterator[Record]:
    site = _site(path)
    name = base_name(path)
    for _, elem in iterparse(fh, events=("end",)):
        if elem.tag != "row":
            continue
        post = dict(elem.attrib)
        elem.clear()
        kind = post.get("PostTypeId")
        post_id = post.get("Id", "")
        if kind == QUESTION:
            yield Partial(f"{site}:{post_id}", {"site": site, **post})
        elif kind == ANSWER and post.get("ParentId"):
            yield Partial(f"{site}:{post['ParentId']}", {"site": site, **post})
        else:
            doc = make_document(source, f"{site}:post:{post_id}", "")
            yield Rejected(doc, "extract:not_question_or_answer", f"{name} PostTypeId={kind}")


def assemble_thread(source: str, key: str, posts: Iterable[dict[str, Any]]) -> Iterator[Record]:
    """One document from a question and its answers."""
    posts = list(posts)
    questions = [p for p in posts if p.get("PostTypeId") == QUESTION]
    answers = sorted(
        (p for p in posts if p.get("PostTypeId") == ANSWER),
        key=lambda p: (-int(p.get("Score") or 0), int(p.get("Id") or 0)),
    )
    site = posts[0]["site"]
    if not questions:
        doc = make_document(source, key, "")
        yield Rejected(doc, "extract:answers_without_question", f"{len(answers)} answers")
        return
    question = questions[0]
    parts = [question.get("Title", ""), html_to_text(question.get("Body", ""))]
    parts += [html_to_text(a.get("Body", "")) for a in answers]
    meta = {
        "site": site,
        "question_score": question.get("Score"),
        "answers": len(answers),
        "license": question.get("ContentLicense"),
    }
    yield make_document(
        source,
        key,
        "\n\n".join(p for p in parts if p),
        url=f"https://{site}/questions/{question.get('Id')}",
        title=question.get("Title"),
        timestamp=question.get("CreationDate"),
        meta={k: v for k, v in meta.items() if v is not None},
    )
