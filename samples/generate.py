"""Writes the sample corpora in the real file formats of the six sources.

    python samples/generate.py        # rewrites samples/<source>/...

Deterministic: the same files byte for byte on every run. Contents come from samples/texts.py
and include non-English pages, low-quality pages, and exact and near duplicates, so that every
stage of the pipeline has something to do.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import tarfile
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import registers
import texts
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
CRAWL = "CC-MAIN-2020-05"


def rng(name: str) -> random.Random:
    return random.Random(name)


def record_id(*parts: object) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join(map(str, parts)))}>"


def compose(r: random.Random, topic: str, paragraphs: int) -> str:
    pool = texts.ENGLISH[topic]
    chosen = r.sample(pool, min(paragraphs, len(pool)))
    return "\n\n".join(chosen)


def english_pages(seed: str, count: int) -> list[tuple[str, str]]:
    """(topic, text) pages of three or four paragraphs on one topic, sometimes two."""
    r = rng(seed)
    topics = sorted(texts.ENGLISH)
    pages = []
    for _ in range(count):
        topic = r.choice(topics)
        text = compose(r, topic, r.choice((3, 4)))
        if r.random() < 0.3:
            text += "\n\n" + r.choice(texts.ENGLISH[r.choice(topics)])
        pages.append((topic, text))
    return pages


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# -- CommonCrawl WET and WARC ------------------------------------------------------------------
def commoncrawl_pages() -> list[tuple[str, str]]:
    """(url, text) for the WET file: good pages, foreign pages, junk and duplicates."""
    pages = [
        (f"https://blog.example.org/{topic}/{i}", text)
        for i, (topic, text) in enumerate(english_pages("cc", 36))
    ]
    pages += [
        (f"https://www.beispiel.de/artikel/{i}", "\n\n".join(texts.GERMAN[i : i + 3]))
        for i in range(3)
    ]
    pages += [
        (f"https://www.exemple.fr/page/{i}", "\n\n".join(texts.FRENCH[i : i + 3])) for i in range(2)
    ]
    pages.append(("https://www.ejemplo.es/blog/1", "\n\n".join(texts.SPANISH)))
    pages += [
        (f"https://shop.example.com/{i}", text) for i, text in enumerate(texts.BOILERPLATE_PAGES)
    ]
    pages.append(("https://cheap.example.net/deals", texts.KEYWORD_SPAM))
    pages.append(("https://data.example.com/table.txt", "Measurements\n" + texts.NUMBER_TABLE))
    pages.append(
        (
            "https://template.example.com/about",
            compose(rng("lorem"), "music", 3) + "\n\n" + texts.LOREM_IPSUM,
        )
    )
    # Exact duplicates: mirrors of earlier pages, one with different spacing.
    pages.append(("https://mirror.example.org/copy-1", pages[0][1]))
    pages.append(("https://mirror.example.org/copy-2", pages[1][1]))
    pages.append(("https://mirror.example.org/copy-3", pages[2][1].replace("\n\n", "\n\n\n")))
    pages.append(("https://mirror.example.org/copy-4", pages[1][1]))
    # Near duplicates: an earlier page with a line of boilerplate added.
    pages.append(("https://syndicated.example.com/a", pages[3][1] + "\n\nShare this article"))
    pages.append(("https://syndicated.example.com/b", pages[4][1] + "\n\nRead more posts"))
    # What most of a random crawl is: shops, forums, personal blogs, listings, notices...
    r = rng("cc-web")
    for i in range(72):
        kind, text = registers.web_page(r)
        pages.append((f"https://www.{kind}-{registers.name(r, 2).lower()}.example.com/{i}", text))
    # ...and a few reference-like pages, the kind the reference classifier keeps.
    r = rng("cc-reference")
    for _ in range(10):
        title, text = registers.encyclopedia_article(r)
        pages.append((f"https://encyclopedia.example.net/wiki/{title.replace(' ', '_')}", text))
    return pages


def write_wet(path: Path, pages: list[tuple[str, str]]) -> None:
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    info = (
        f"isPartOf: {CRAWL}\r\npublisher: llama-recipe samples\r\ndescription: Sample WET file\r\n"
    ).encode()
    writer.write_record(
        writer.create_warc_record(
            path.name,
            "warcinfo",
            payload=io.BytesIO(info),
            warc_content_type="application/warc-fields",
            warc_headers_dict={
                "WARC-Record-ID": record_id("warcinfo", path.name),
                "WARC-Date": "2020-01-17T10:00:00Z",
            },
        )
    )
    for i, (url, text) in enumerate(pages):
        writer.write_record(
            writer.create_warc_record(
                url,
                "conversion",
                payload=io.BytesIO(text.encode("utf-8")),
                warc_content_type="text/plain",
                warc_headers_dict={
                    "WARC-Record-ID": record_id("wet", url, i),
                    "WARC-Refers-To": record_id("warc", url, i),
                    "WARC-Date": f"2020-01-17T10:{i // 60:02d}:{i % 60:02d}Z",
                },
            )
        )
    path.write_bytes(buffer.getvalue())


def write_warc(path: Path) -> None:
    """A small WARC with HTML responses (and one image) for the `warc` format."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    from warcio.statusandheaders import StatusAndHeaders

    r = rng("warc")
    for i, topic in enumerate(("rivers", "astronomy", "gardening")):
        body = "".join(f"<p>{escape(p)}</p>" for p in r.sample(texts.ENGLISH[topic], 3))
        html = (
            f"<!doctype html><html><head><title>{topic.title()}</title>"
            "<script>var tracking = 1;</script></head><body>"
            "<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
            f"<main><article><h1>{topic.title()}</h1>{body}</article></main>"
            "<footer>Copyright 2020 Example Media</footer></body></html>"
        ).encode()
        url = f"https://news.example.org/{topic}"
        headers = StatusAndHeaders(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(html)))],
            protocol="HTTP/1.1",
        )
        writer.write_record(
            writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(html),
                http_headers=headers,
                warc_headers_dict={
                    "WARC-Record-ID": record_id("warc-html", url),
                    "WARC-Date": f"2020-01-17T11:00:0{i}Z",
                },
            )
        )
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    headers = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
    writer.write_record(
        writer.create_warc_record(
            "https://news.example.org/logo.png",
            "response",
            payload=io.BytesIO(png),
            http_headers=headers,
            warc_headers_dict={
                "WARC-Record-ID": record_id("warc-png"),
                "WARC-Date": "2020-01-17T11:00:09Z",
            },
        )
    )
    path.write_bytes(buffer.getvalue())


# -- C4 ---------------------------------------------------------------------------------------
def write_c4(directory: Path) -> None:
    pages = english_pages("c4", 40)
    for shard in range(2):
        lines = []
        for i, (topic, text) in enumerate(pages[shard::2]):
            lines.append(
                json.dumps(
                    {
                        "text": text,
                        "timestamp": f"2019-04-{(i % 28) + 1:02d}T0{i % 10}:12:30Z",
                        "url": f"https://www.c4-example-{shard}.com/{topic}/{i}",
                    },
                    ensure_ascii=False,
                )
            )
        if shard == 1:
            # The same page crawled twice under two URLs, and a one-line stub.
            lines.append(
                json.dumps(
                    {
                        "text": pages[0][1],
                        "timestamp": "2019-04-20T10:00:00Z",
                        "url": "https://www.c4-example-1.com/again",
                    }
                )
            )
            lines.append(
                json.dumps(
                    {
                        "text": "Click here to continue.",
                        "timestamp": "2019-04-21T10:00:00Z",
                        "url": "https://www.c4-example-1.com/stub",
                    }
                )
            )
        data = ("\n".join(lines) + "\n").encode("utf-8")
        (directory / f"c4-train.{shard:05d}-of-00002.json.gz").write_bytes(gzip_bytes(data))


# -- Wikipedia ----------------------------------------------------------------------------------
def wikitext(r: random.Random, title: str, topic: str) -> str:
    paragraphs = r.sample(texts.ENGLISH[topic], 3)
    first = paragraphs[0].split(" ", 3)
    lead = (
        " ".join(first[:3])
        + " [["
        + topic.title()
        + "|"
        + first[3].split(" ", 1)[0]
        + "]] "
        + first[3].split(" ", 1)[1]
    )
    return "\n".join(
        [
            "{{Short description|Article about " + topic + "}}",
            "{{Infobox topic\n| name = " + title + "\n| image = Example.jpg\n}}",
            f"'''{title}''' is a sample article.<ref>{{{{cite book |title=Notes on {topic} "
            "|year=2001}}</ref> " + lead,
            "",
            "== Overview ==",
            paragraphs[1] + '<ref name="n1">Field notes, 1999.</ref>',
            "[[File:Example.jpg|thumb|An illustration of " + topic + ".]]",
            "",
            "== Details ==",
            paragraphs[2],
            "<!-- editors: expand this section -->",
            '{| class="wikitable"\n! Year !! Value\n|-\n| 2001 || 12\n|}',
            "",
            "== References ==",
            "{{Reflist}}",
            "",
            f"[[Category:{topic.title()}]]",
            "[[Category:Sample articles]]",
        ]
    )


def encyclopedia_wikitext(title: str, text: str) -> str:
    """Wiki markup around a generated article: bold title, headings, a reference, categories."""
    blocks = text.split("\n\n")
    lead = blocks[0].replace(title, f"'''{title}'''", 1)
    body = [lead + "<ref>{{cite book |title=Gazetteer |year=1999}}</ref>"]
    for block in blocks[1:]:
        body.append(f"== {block} ==" if len(block.split()) <= 3 else block)
    return "\n\n".join([*body, "== References ==\n{{Reflist}}", "[[Category:Sample articles]]"])


def mediawiki_dump(dbname: str, lang: str, pages: list[tuple[int, str, int, str, bool]]) -> bytes:
    file_ns, category_ns = ("Datei", "Kategorie") if lang == "de" else ("File", "Category")
    out = [
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" '
        f'xml:lang="{lang}">',
        "  <siteinfo>",
        f"    <sitename>Wikipedia</sitename>\n    <dbname>{dbname}</dbname>",
        f"    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>",
        "    <generator>MediaWiki 1.35.0-wmf.15</generator>\n    <case>first-letter</case>",
        "    <namespaces>",
        '      <namespace key="0" case="first-letter" />',
        '      <namespace key="1" case="first-letter">Talk</namespace>',
        f'      <namespace key="6" case="first-letter">{file_ns}</namespace>',
        f'      <namespace key="14" case="first-letter">{category_ns}</namespace>',
        "    </namespaces>",
        "  </siteinfo>",
    ]
    for page_id, title, ns, text, redirect in pages:
        out += [
            "  <page>",
            f"    <title>{escape(title)}</title>",
            f"    <ns>{ns}</ns>",
            f"    <id>{page_id}</id>",
        ]
        if redirect:
            out.append(f"    <redirect title={quoteattr(text.split('[[')[1].rstrip(']'))} />")
        out += [
            "    <revision>",
            f"      <id>{page_id * 10}</id>",
            "      <timestamp>2020-01-01T00:00:00Z</timestamp>",
            "      <model>wikitext</model>\n      <format>text/x-wiki</format>",
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>',
            "    </revision>",
            "  </page>",
        ]
    out.append("</mediawiki>\n")
    return "\n".join(out).encode("utf-8")


def write_wikipedia(directory: Path) -> None:
    r = rng("wiki")
    pages = []
    page_id = 10
    for topic in sorted(texts.ENGLISH):
        for variant in ("", " (overview)"):
            title = topic.title() + variant
            pages.append((page_id, title, 0, wikitext(r, title, topic), False))
            page_id += 1
    # Encyclopedia articles on invented towns, species and people.
    r = rng("wiki-articles")
    for _ in range(56):
        title, text = registers.encyclopedia_article(r)
        pages.append((page_id, title, 0, encyclopedia_wikitext(title, text), False))
        page_id += 1
    pages.append((page_id, "Breadmaking", 0, "#REDIRECT [[Bread]]", True))
    pages.append((page_id + 1, "River (geography)", 0, "#REDIRECT [[Rivers]]", True))
    pages.append((page_id + 2, "Talk:Rivers", 1, "Should the delta section be longer? ~~~~", False))
    dump = mediawiki_dump("enwiki", "en", pages)
    (directory / "enwiki-20200101-pages-articles-sample.xml.bz2").write_bytes(bz2.compress(dump))
    german = []
    for i, paragraph in enumerate(texts.GERMAN):
        title = paragraph.split(" ", 2)[1]
        text = (
            f"'''{title}''' ist ein Beispielartikel. {paragraph}\n\n== Weiteres ==\n"
            f"{texts.GERMAN[(i + 1) % len(texts.GERMAN)]}\n\n"
            f"[[Datei:Beispiel.jpg|mini|Ein Bild]]\n[[Kategorie:Beispiel]]"
        )
        german.append((100 + i, title, 0, text, False))
    dump = mediawiki_dump("dewiki", "de", german)
    (directory / "dewiki-20200101-pages-articles-sample.xml.bz2").write_bytes(bz2.compress(dump))


# -- Books (Project Gutenberg) ------------------------------------------------------------------
GUTENBERG_BOOKS = [
    # (ebook number, title, author, header style, line ending)
    (90001, "A Year by the River", "Anna Example", "new", "\r\n"),
    (90002, "Letters on Bread and Gardens", "B. Sample", "old", "\r\n"),
    (90003, "The Clockmaker's Voyage", "C. Placeholder", "older", "\n"),
]


def gutenberg_text(number: int, title: str, author: str, style: str, seed: str) -> str:
    r = rng(seed)
    chapters = []
    topics = sorted(texts.ENGLISH)
    for chapter in range(1, 7):
        paragraphs = []
        for _ in range(5):
            paragraphs.append(r.choice(texts.ENGLISH[r.choice(topics)]))
        chapters.append(f"CHAPTER {chapter}\n\n" + "\n\n".join(paragraphs))
    body = f"{title.upper()}\n\nby {author}\n\n\n" + "\n\n\n".join(chapters)
    if style == "new":
        header = (
            f"The Project Gutenberg eBook of {title}, by {author}\n\n"
            "This eBook is for the use of anyone anywhere at no cost and with almost no "
            "restrictions whatsoever.\n\n"
            f"Title: {title}\n\nAuthor: {author}\n\n"
            f"Release Date: March 1, 2021 [eBook #{number}]\n\nLanguage: English\n\n"
            f"*** START OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n"
        )
        footer = (
            f"\n\n*** END OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n"
            "Updated editions will replace the previous one.\n\n"
            "START: FULL LICENSE\n\nTHE FULL PROJECT GUTENBERG LICENSE\n"
        )
    elif style == "old":
        header = (
            f"The Project Gutenberg EBook of {title}, by {author}\n\n"
            f"Title: {title}\n\nAuthor: {author}\n\n"
            f"Release Date: June, 2004  [EBook #{number}]\n\n"
            f"*** START OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n"
        )
        footer = (
            f"\n\nEnd of the Project Gutenberg EBook of {title}, by {author}\n\n"
            f"*** END OF THIS PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n"
            "***** This file should be named 90002.txt *****\n"
        )
    else:
        header = (
            f"Project Gutenberg's {title}, by {author}\n\n"
            f"Title: {title}\n\nAuthor: {author}\n\n[EBook #{number}]\n\n"
            f"***START OF THE PROJECT GUTENBERG EBOOK {title.upper()}***\n\n"
        )
        footer = (
            f"\n\nEnd of Project Gutenberg's {title}, by {author}\n\n"
            "*** END OF THE PROJECT GUTENBERG EBOOK ***\n"
        )
    return header + body + footer


def write_gutenberg(directory: Path) -> None:
    for number, title, author, style, newline in GUTENBERG_BOOKS:
        text = gutenberg_text(number, title, author, style, f"book-{number}")
        (directory / f"{number}.txt").write_bytes(text.replace("\n", newline).encode("utf-8"))


# -- ArXiv -------------------------------------------------------------------------------------
def latex_paper(title: str, topic: str, seed: str) -> str:
    r = rng(seed)
    paragraphs = r.sample(texts.ENGLISH[topic], 4)
    return "\n".join(
        [
            "% Generated sample submission",
            "\\documentclass[11pt]{article}",
            "\\usepackage{amsmath}",
            "\\newcommand{\\R}{\\mathbb{R}}",
            f"\\title{{{title}}}",
            "\\author{A. Author \\and B. Author}",
            "\\begin{document}",
            "\\maketitle",
            "\\begin{abstract}",
            paragraphs[0],
            "\\end{abstract}",
            "",
            "\\section{Introduction}",
            paragraphs[1] + " % TODO: cite the survey",
            "",
            "\\section{Model}",
            "Let $x \\in \\R^n$ and define",
            "\\begin{equation}",
            "  f(x) = \\sum_{i=1}^{n} w_i x_i^2 + b, \\qquad 50\\% \\text{ of the mass near } 0.",
            "\\end{equation}",
            paragraphs[2],
            "",
            "\\subsection{Discussion}",
            paragraphs[3],
            "%\\section{Unused appendix}",
            "% This section was removed before submission.",
            "",
            "\\bibliographystyle{plain}",
            "\\begin{thebibliography}{9}",
            "\\bibitem{a} A. Author. \\emph{An earlier paper}. 2001.",
            "\\end{thebibliography}",
            "\\end{document}",
            "",
        ]
    )


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(buffer.getvalue())


def write_arxiv(directory: Path) -> None:
    papers = [
        ("2001.00001", "Cache-Aware Scheduling of Compiler Passes", "computing"),
        ("2001.00002", "Sediment Transport in Meandering Rivers", "rivers"),
        ("2001.00003", "Tidal Locking of Small Moons", "astronomy"),
    ]
    for paper_id, title, topic in papers[:2]:
        main = latex_paper(title, topic, paper_id).encode()
        members = {
            "main.tex": main,
            "macros.sty": b"\\ProvidesPackage{macros}\n",
            "figures/plot.pdf": b"%PDF-1.4\n%sample\n",
        }
        (directory / f"{paper_id}.tar.gz").write_bytes(tar_gz(members))
    paper_id, title, topic = papers[2]
    (directory / f"{paper_id}.gz").write_bytes(
        gzip_bytes(latex_paper(title, topic, paper_id).encode())
    )


# -- StackExchange ------------------------------------------------------------------------------
def write_stackexchange(directory: Path) -> None:
    rows = []
    post_id = 1
    for q_index, (title, body, answers) in enumerate(texts.STACKEXCHANGE_THREADS):
        question_id = post_id
        rows.append(
            {
                "Id": question_id,
                "PostTypeId": 1,
                "AcceptedAnswerId": question_id + 1,
                "CreationDate": f"2015-03-{q_index + 1:02d}T12:00:00.000",
                "Score": 5 + q_index,
                "ViewCount": 100 * (q_index + 1),
                "Body": body,
                "OwnerUserId": 10 + q_index,
                "Title": title,
                "Tags": "<sample><questions>",
                "AnswerCount": len(answers),
                "CommentCount": 0,
                "ContentLicense": "CC BY-SA 3.0",
            }
        )
        post_id += 1
        for a_index, (score, answer) in enumerate(answers):
            rows.append(
                {
                    "Id": post_id,
                    "PostTypeId": 2,
                    "ParentId": question_id,
                    "CreationDate": f"2015-03-{q_index + 1:02d}T13:{a_index:02d}:00.000",
                    "Score": score,
                    "Body": answer,
                    "OwnerUserId": 50 + a_index,
                    "CommentCount": 0,
                    "ContentLicense": "CC BY-SA 3.0",
                }
            )
            post_id += 1
    # A tag wiki excerpt (not Q&A) and an answer whose question is not in this dump.
    rows.append(
        {
            "Id": post_id,
            "PostTypeId": 4,
            "CreationDate": "2015-04-01T00:00:00.000",
            "Score": 0,
            "Body": "<p>Questions about baking.</p>",
            "CommentCount": 0,
        }
    )
    rows.append(
        {
            "Id": post_id + 1,
            "PostTypeId": 2,
            "ParentId": texts.ORPHAN_ANSWER_PARENT,
            "CreationDate": "2015-04-02T00:00:00.000",
            "Score": 1,
            "Body": "<p>This answer lost its question.</p>",
            "CommentCount": 0,
        }
    )
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
    for row in rows:
        attributes = " ".join(f"{k}={quoteattr(str(v))}" for k, v in row.items())
        lines.append(f"  <row {attributes} />")
    lines.append("</posts>\n")
    site = directory / "sample.stackexchange.com"
    site.mkdir(parents=True, exist_ok=True)
    (site / "Posts.xml").write_text("\n".join(lines), encoding="utf-8")


# -- A CCNet-style language model for the perplexity filter ------------------------------------
def write_language_model(directory: Path) -> None:
    """A SentencePiece model and a 3-gram ARPA model of the sample Wikipedia's articles, the
    pair CCNet's perplexity filter needs (CCNet publishes one per language, trained on
    Wikipedia)."""
    import os
    import sys
    import tempfile

    import sentencepiece as spm

    sys.path.insert(0, str(HERE.parent))
    from filters.arpa import write_arpa
    from filters.perplexity import normalize_line

    r = rng("wiki-articles")  # the same articles as the Wikipedia sample
    lines = []
    for _ in range(56):
        _, text = registers.encyclopedia_article(r)
        lines += [normalize_line(line) for line in text.split("\n") if line.strip()]
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # relative names: the model file records them
        try:
            Path("text.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            spm.SentencePieceTrainer.train(
                input="text.txt",
                model_prefix="wikipedia.sp",
                vocab_size=400,
                model_type="bpe",
                normalization_rule_name="identity",  # normalize_line has done it
                num_threads=1,
                minloglevel=2,
            )
            model = Path("wikipedia.sp.model").read_bytes()
        finally:
            os.chdir(cwd)
    (directory / "wikipedia.sp.model").write_bytes(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    with open(directory / "wikipedia.arpa", "w", encoding="utf-8") as out:
        write_arpa([sp.encode(line, out_type=str) for line in lines], out, order=3)


def main() -> None:
    for name in ("commoncrawl", "c4", "wikipedia", "gutenberg", "arxiv", "stackexchange", "lm"):
        (HERE / name).mkdir(parents=True, exist_ok=True)
    write_wet(HERE / "commoncrawl" / f"{CRAWL}-sample-00000.warc.wet.gz", commoncrawl_pages())
    write_warc(HERE / "commoncrawl" / f"{CRAWL}-sample-00000.warc.gz")
    write_c4(HERE / "c4")
    write_wikipedia(HERE / "wikipedia")
    write_gutenberg(HERE / "gutenberg")
    write_arxiv(HERE / "arxiv")
    write_stackexchange(HERE / "stackexchange")
    write_language_model(HERE / "lm")


if __name__ == "__main__":
    main()
